"""Online, compressed, verified backups of the SQLite DB, and a restore that never copies over an open file.

A backup is made with SQLite's online backup API into a temp file in the backups folder, gzip-compressed,
fsynced, atomically renamed to ``neuralrp-YYYYmmdd-HHMMSS[-label].db.gz`` and verified before it counts.
"""

from __future__ import annotations

import contextlib
import gzip
import logging
import os
import re
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from neuralrp.db.connection import Database, connect, driver
from neuralrp.db.migrations import bundled_migrations, migrate, schema_version
from neuralrp.errors import Conflict, DatabaseError, InvalidInput, NotFound

log = logging.getLogger(__name__)

NAME_RE = re.compile(r"^neuralrp-(\d{8}-\d{6})(?:-([a-z0-9][a-z0-9_-]{0,39}))?\.db\.gz$")
TMP_PREFIX = ".tmp-"
# Tests only: seconds to sleep after each copied page, so a backup can be killed mid-way.
SLOW_ENV = "NRP_TEST_BACKUP_PAGE_DELAY_S"
# Backups, restores and VACUUM never overlap (scheduler jobs, API and CLI in one process).
MAINTENANCE_LOCK = threading.RLock()

Opener = Callable[[Path], IO[bytes]]


class BackupError(DatabaseError):
    """A backup could not be made, verified or restored."""


@dataclass(frozen=True)
class BackupInfo:
    """One backup file."""

    name: str
    path: Path
    size_bytes: int
    created_at: datetime
    label: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"name": self.name, "size_bytes": self.size_bytes, "label": self.label,
                "created_at": self.created_at.isoformat(timespec="seconds")}


def _open_for_write(path: Path) -> IO[bytes]:
    return open(path, "xb")  # noqa: SIM115 - closed by the caller


def backup_name(now: datetime, label: str = "") -> str:
    """The file name for a backup made at `now` (UTC)."""
    stamp = now.astimezone(UTC).strftime("%Y%m%d-%H%M%S")
    name = f"neuralrp-{stamp}-{label}.db.gz" if label else f"neuralrp-{stamp}.db.gz"
    if not NAME_RE.match(name):
        raise InvalidInput(f"invalid backup label {label!r}: use lowercase letters, digits, '-' and '_'")
    return name


def _info(path: Path) -> BackupInfo:
    match = NAME_RE.match(path.name)
    assert match is not None
    created = datetime.strptime(match.group(1), "%Y%m%d-%H%M%S").replace(tzinfo=UTC)
    return BackupInfo(path.name, path, path.stat().st_size, created, match.group(2) or "")


def backup_path(backups_dir: Path, name: str) -> Path:
    """The path of a named backup; refuses names that are not ours (no traversal) and missing files."""
    if not NAME_RE.match(name) or Path(name).name != name:
        raise InvalidInput(f"{name!r} is not a backup name (expected neuralrp-YYYYmmdd-HHMMSS[-label].db.gz)")
    path = backups_dir / name
    if not path.is_file():
        raise NotFound(f"no backup named {name} in {backups_dir}")
    return path


def list_backups(backups_dir: Path) -> list[BackupInfo]:
    """Backups in the folder, newest first."""
    if not backups_dir.is_dir():
        return []
    found = [_info(p) for p in backups_dir.iterdir() if NAME_RE.match(p.name) and p.is_file()]
    return sorted(found, key=lambda b: (b.created_at, b.name), reverse=True)


def delete_backup(backups_dir: Path, name: str) -> None:
    """Delete one backup by name."""
    backup_path(backups_dir, name).unlink()
    log.info("deleted backup %s", name)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _slow_progress() -> Callable[[int, int, int], None] | None:
    delay = float(os.environ.get(SLOW_ENV) or 0)
    return (lambda status, remaining, total: time.sleep(delay)) if delay > 0 else None


def _online_copy(db: Database, target: Path) -> None:
    """Copy the live DB page by page with the SQLite backup API; readers and writers carry on."""
    progress = _slow_progress()
    src = db.connect()
    dst = driver().connect(str(target), isolation_level=None)
    try:
        if progress is None:
            src.backup(dst)
        else:
            src.backup(dst, pages=1, progress=progress)
        dst.execute("PRAGMA journal_mode=DELETE")
    finally:
        dst.close()
        src.close()


def _compress(raw: Path, target: Path, opener: Opener) -> None:
    """gzip raw into target (a new file) and fsync it."""
    with open(raw, "rb") as src, opener(target) as out:
        with gzip.GzipFile(filename="neuralrp.db", mode="wb", fileobj=out, mtime=0) as gz:
            shutil.copyfileobj(src, gz, 1024 * 1024)
        out.flush()
        os.fsync(out.fileno())


def _remove(*paths: Path) -> None:
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def clean_temp_files(backups_dir: Path) -> int:
    """Remove temp files left by a backup or restore that was killed; returns how many."""
    stale = [p for p in backups_dir.glob(f"{TMP_PREFIX}*") if p.is_file()] if backups_dir.is_dir() else []
    _remove(*stale)
    return len(stale)


def create_backup(db: Database, backups_dir: Path, *, now: datetime, label: str = "",
                  opener: Opener = _open_for_write) -> BackupInfo:
    """Back up the live DB into backups_dir (compressed, atomic, verified); the live DB is only read."""
    name = backup_name(now, label)
    backups_dir.mkdir(parents=True, exist_ok=True)
    raw = backups_dir / f"{TMP_PREFIX}{name[:-3]}"
    packed = backups_dir / f"{TMP_PREFIX}{name}"
    final = backups_dir / name
    with MAINTENANCE_LOCK:
        if final.exists():
            raise Conflict(f"a backup named {name} already exists; try again in a second")
        try:
            _remove(raw, packed)
            _online_copy(db, raw)
            _compress(raw, packed, opener)
            os.replace(packed, final)
            _fsync_dir(backups_dir)
        except (OSError, driver().Error) as e:
            _remove(raw, packed)
            raise BackupError(f"backup failed, nothing was written and the live DB is untouched: {e}") from e
        finally:
            _remove(raw)
        try:
            verify_backup(final)
        except BackupError:
            _remove(final)
            raise
    info = _info(final)
    log.info("backup %s written (%d bytes)", info.name, info.size_bytes)
    return info


def _decompress(path: Path, target: Path) -> None:
    try:
        with gzip.open(path, "rb") as src, open(target, "wb") as out:
            shutil.copyfileobj(src, out, 1024 * 1024)
            out.flush()
            os.fsync(out.fileno())
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise BackupError(f"backup {path.name} is damaged and cannot be used: {e}") from e


def check_database_file(path: Path, label: str) -> int:
    """integrity_check a plain DB file and return its schema version; BackupError when it is not sound."""
    try:
        conn = connect(path, readonly=True)
    except DatabaseError as e:
        raise BackupError(f"{label} is not a usable SQLite database: {e.message}") from e
    except driver().Error as e:
        raise BackupError(f"{label} is not a usable SQLite database: {e}") from e
    try:
        rows = [next(iter(r.values())) for r in conn.execute("PRAGMA integrity_check")]
        if rows != ["ok"]:
            raise BackupError(f"{label} failed the integrity check: {'; '.join(map(str, rows[:5]))}")
        tables = {r["name"] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "_migrations" not in tables:
            raise BackupError(f"{label} is not a NeuralRP database (no _migrations table)")
        return int(conn.execute("SELECT max(number) AS v FROM _migrations").fetchone()["v"] or 0)
    except driver().Error as e:
        raise BackupError(f"{label} is not a usable SQLite database: {e}") from e
    finally:
        conn.close()


def verify_backup(path: Path, *, keep_as: Path | None = None) -> int:
    """Decompress and check a backup (integrity, known schema); returns its schema version.

    With keep_as the decompressed DB is left there (for a restore); otherwise it is removed.
    """
    target = keep_as or path.with_name(f"{TMP_PREFIX}verify-{path.name[:-3]}")
    try:
        _decompress(path, target)
        version = check_database_file(target, f"backup {path.name}")
        latest = len(bundled_migrations())
        if not 1 <= version <= latest:
            raise BackupError(f"backup {path.name} has schema version {version}; this NeuralRP knows 1..{latest}")
    except BaseException:
        _remove(target)
        raise
    if keep_as is None:
        _remove(target)
    return version


def prune_backups(backups_dir: Path, *, retention_days: int, keep_at_least: int, now: datetime) -> list[str]:
    """Delete backups older than retention_days, always keeping the newest keep_at_least; returns names."""
    cutoff = now - timedelta(days=retention_days)
    doomed = [b for b in list_backups(backups_dir)[keep_at_least:] if b.created_at < cutoff]
    for backup in doomed:
        _remove(backup.path)
    if doomed:
        log.info("pruned %d backup(s) older than %d days", len(doomed), retention_days)
    return [b.name for b in doomed]


def _sidecars(path: Path) -> tuple[Path, Path]:
    return path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")


def _swap_in(db: Database, staged: Path) -> None:
    """Replace the live DB file by staged: checkpoint, rename over it, drop the old WAL/SHM, fsync."""
    if db.path.exists():
        with db.session() as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    os.replace(staged, db.path)
    _remove(*_sidecars(db.path))
    _fsync_dir(db.path.parent)


@dataclass(frozen=True)
class RestoreReport:
    """What a restore did."""

    restored: str
    pre_restore: str | None
    migrations: list[str]
    schema_version: int

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"restored": self.restored, "pre_restore": self.pre_restore, "migrations": self.migrations,
                "schema_version": self.schema_version}


def restore_backup(db: Database, backups_dir: Path, name: str, *, now: datetime) -> RestoreReport:
    """Restore a backup over the live DB; the caller has stopped every writer first.

    Order: verify the chosen backup into a staged file beside the DB, take a pre-restore backup of the live
    DB, swap the files (never copying over an open file), then reopen, check and migrate.
    """
    source = backup_path(backups_dir, name)
    staged = db.path.with_name(f"{db.path.name}.restore-tmp")
    with MAINTENANCE_LOCK:
        verify_backup(source, keep_as=staged)
        try:
            pre = create_backup(db, backups_dir, now=now, label="pre-restore") if db.path.exists() else None
            _swap_in(db, staged)
        except BaseException:
            _remove(staged)
            raise
        with db.session() as conn:
            applied = migrate(conn)
            version = schema_version(conn)
    check_database_file(db.path, "the restored database")
    log.warning("restored %s (pre-restore backup: %s)", name, pre.name if pre else "none")
    return RestoreReport(name, pre.name if pre else None, applied, version)
