"""Open SQLite connections that can load extensions, with sqlite-vec and sane pragmas."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import sqlite_vec

from neuralrp.errors import DatabaseError

log = logging.getLogger(__name__)

_CANDIDATES = ("sqlean", "pysqlite3.dbapi2", "sqlite3")
_driver: ModuleType | None = None


def driver() -> ModuleType:
    """The DB-API module in use: sqlean.py, else pysqlite3-binary, else stdlib if it loads extensions."""
    global _driver
    if _driver is not None:
        return _driver
    for name in _CANDIDATES:
        try:
            mod = importlib.import_module(name)
        except ImportError:
            continue
        if hasattr(mod.Connection, "enable_load_extension"):
            _driver = mod
            log.debug("sqlite driver: %s (SQLite %s)", name, mod.sqlite_version)
            return mod
    raise DatabaseError(
        "no SQLite module that can load extensions was found; install 'sqlean.py' "
        "(pip install sqlean.py) so sqlite-vec can be loaded"
    )


def _row_factory(cursor: Any, row: tuple[Any, ...]) -> dict[str, Any]:
    return {col[0]: value for col, value in zip(cursor.description, row, strict=True)}


def connect(path: Path | str, *, readonly: bool = False) -> Any:
    """Open a connection with sqlite-vec loaded, WAL, foreign keys and a busy timeout."""
    mod = driver()
    target = f"file:{path}?mode=ro" if readonly else str(path)
    try:
        conn = mod.connect(target, uri=readonly, check_same_thread=False, isolation_level=None, timeout=10)
    except mod.Error as e:
        raise DatabaseError(f"cannot open database {path}: {e}") from e
    try:
        conn.enable_load_extension(True)
        sqlite_vec.load(conn)
        conn.enable_load_extension(False)
    except (mod.Error, AttributeError) as e:
        conn.close()
        raise DatabaseError(f"cannot load sqlite-vec into {path}: {e}") from e
    conn.row_factory = _row_factory
    if not readonly:
        conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=10000")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


@contextmanager
def transaction(conn: Any, *, immediate: bool = True) -> Iterator[Any]:
    """Run a block in BEGIN IMMEDIATE ... COMMIT, rolling back on any error."""
    conn.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def vec_version(conn: Any) -> str:
    """The loaded sqlite-vec version string."""
    return str(conn.execute("SELECT vec_version() AS v").fetchone()["v"])


class Database:
    """Where the DB lives and how to open it; holds no connection itself."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def connect(self) -> Any:
        """A new connection to this database."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return connect(self.path)

    @contextmanager
    def session(self) -> Iterator[Any]:
        """A connection closed when the block ends."""
        conn = self.connect()
        try:
            yield conn
        finally:
            conn.close()

    def size_bytes(self) -> dict[str, int]:
        """Sizes of the DB file and its WAL."""
        wal = self.path.with_name(self.path.name + "-wal")
        return {
            "db": self.path.stat().st_size if self.path.exists() else 0,
            "wal": wal.stat().st_size if wal.exists() else 0,
        }
