"""Open SQLite connections that can load extensions, with sqlite-vec and sane pragmas."""

from __future__ import annotations

import asyncio
import functools
import importlib
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

import sqlite_vec

from neuralrp.errors import DatabaseError

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")
Row = dict[str, Any]
_CANDIDATES = ("sqlean", "pysqlite3.dbapi2", "sqlite3")


class Cursor(Protocol):
    """What NeuralRP reads from a cursor (rows are dicts, see _row_factory)."""

    lastrowid: int | None
    rowcount: int

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    """An open SQLite connection (sqlean, pysqlite3 or sqlite3, all the same DB-API shape)."""

    def execute(self, sql: str, parameters: Sequence[Any] | dict[str, Any] = ..., /) -> Cursor: ...

    def executemany(self, sql: str, parameters: Any, /) -> Cursor: ...

    def executescript(self, sql: str, /) -> Cursor: ...

    def close(self) -> None: ...

    @property
    def in_transaction(self) -> bool: ...

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


def connect(path: Path | str, *, readonly: bool = False) -> Any:  # the driver's own connection type
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
def transaction(conn: Connection, *, immediate: bool = True) -> Iterator[Connection]:
    """Run a block in BEGIN IMMEDIATE ... COMMIT, rolling back on any error."""
    conn.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def vec_version(conn: Connection) -> str:
    """The loaded sqlite-vec version string."""
    return str(conn.execute("SELECT vec_version() AS v").fetchone()["v"])


class Database:
    """Where the DB lives and how to open it; async code reaches it only through run()."""

    def __init__(self, path: Path, *, workers: int = 4) -> None:
        self.path = path
        self._workers = workers
        self._pool: ThreadPoolExecutor | None = None
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: list[tuple[Any, threading.Lock]] = []  # each worker connection with the lock held while in use
        self._epoch = 0

    def connect(self) -> Connection:
        """A new connection to this database."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn: Connection = connect(self.path)
        return conn

    @contextmanager
    def session(self) -> Iterator[Connection]:
        """A connection closed when the block ends (for threads and the CLI; never on the event loop)."""
        conn = self.connect()
        try:
            yield conn
        finally:
            conn.close()

    async def run(self, fn: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run fn(conn, ...) on a DB worker thread with that thread's connection; the event loop never blocks."""
        loop = asyncio.get_running_loop()
        call = functools.partial(self._call, fn, *args, **kwargs)
        return await loop.run_in_executor(self._executor(), call)

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="neuralrp-db")
            return self._pool

    def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        busy = getattr(self._local, "busy", None)
        if busy is None:
            busy = self._local.busy = threading.Lock()
        with busy:  # close_connections() waits for a call in flight on this thread's connection
            conn = getattr(self._local, "conn", None)
            if conn is None or getattr(self._local, "epoch", -1) != self._epoch:
                conn = self.connect()
                with self._lock:
                    self._open.append((conn, busy))
                self._local.conn, self._local.epoch = conn, self._epoch
            if conn.in_transaction:  # a previous call died inside a transaction: never leak it into this one
                conn.execute("ROLLBACK")
            return fn(conn, *args, **kwargs)

    def close_connections(self) -> None:
        """Close the worker threads' connections, each once its call in flight ends (before a restore swaps the
        file, and at shutdown); later calls open new ones."""
        with self._lock:
            self._epoch += 1
            conns, self._open = self._open, []
        for conn, busy in conns:
            with busy:
                try:
                    conn.close()
                except driver().Error as e:
                    log.warning("closing a DB connection failed: %s", e)

    def shutdown(self) -> None:
        """Stop the worker threads and close their connections."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)
        self.close_connections()

    def size_bytes(self) -> dict[str, int]:
        """Sizes of the DB file and its WAL (0 for a file that is absent, even one removed while we look)."""
        wal = self.path.with_name(self.path.name + "-wal")
        return {"db": _file_size(self.path), "wal": _file_size(wal)}


def _file_size(path: Path) -> int:
    """The size of `path` in bytes, 0 when it does not exist (SQLite removes the WAL at a checkpoint or close)."""
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0
    except OSError as e:  # a status report must not fail on it: say so in the log instead
        log.warning("could not read the size of %s: %s", path, e)
        return 0
