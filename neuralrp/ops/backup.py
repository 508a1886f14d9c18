"""Online, compressed, verified backups of the SQLite DB, and a restore that never copies over an open file.

A backup is made with SQLite's online backup API into a temp file in the backups folder, gzip-compressed,
fsynced, atomically renamed to ``neuralrp-YYYYmmdd-HHMMSS[-label].db.gz`` and verified before it counts.

A restore verifies the chosen backup into a staged file first (``stage_backup``: a bad backup changes
nothing), then ``restore_staged`` takes the pre-restore backup, archives the mirror folders (characters/,
worlds/) beside it as ``<same stem>.files.tar.gz``, and swaps the staged file in. A backup's files archive is
listed with it and deleted or pruned with it.
"""

from __future__ import annotations

import contextlib
import gzip
import logging
import os
import re
import shutil
import tarfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from neuralrp.db import maintenance
from neuralrp.db.connection import Connection, Database, connect, driver
from neuralrp.db.migrations import bundled_migrations, migrate, schema_version
from neuralrp.errors import Conflict, DatabaseError, InvalidInput, NotFound
from neuralrp.library.files import stored_path_problem

log = logging.getLogger(__name__)

NAME_RE = re.compile(r"^neuralrp-(\d{8}-\d{6})(?:-([a-z0-9][a-z0-9_-]{0,39}))?\.db\.gz$")
TMP_PREFIX = ".tmp-"
FILES_SUFFIX = ".files.tar.gz"  # a pre-restore backup's copy of characters/ and worlds/
# Tests only: seconds to sleep after each copied page, so a backup can be killed mid-way.
SLOW_ENV = "NRP_TEST_BACKUP_PAGE_DELAY_S"
# Backups, restores and VACUUM never overlap (scheduler jobs, API and CLI in one process).
MAINTENANCE_LOCK = threading.RLock()

Opener = Callable[[Path], IO[bytes]]
SQLITE_MAGIC = b"SQLite format 3\x00"
MAX_INFLATE_RATIO = 200  # a backup whose header gives no size may inflate to this many times its gzip size
INFLATE_SLACK = 64 * 1024 * 1024


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
        """JSON-ready form (`files`: the archive of the mirror folders kept with it, if any)."""
        files = files_archive(self.path)
        return {"name": self.name, "size_bytes": self.size_bytes, "label": self.label,
                "created_at": self.created_at.isoformat(timespec="seconds"),
                "files": files.name if files.is_file() else None}


def files_archive(backup: Path) -> Path:
    """Where a backup's archive of the mirror folders lives: beside it, with the same stem."""
    return backup.with_name(backup.name[: -len(".db.gz")] + FILES_SUFFIX)


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
    """Delete one backup by name (with its files archive)."""
    path = backup_path(backups_dir, name)
    path.unlink()
    _remove(files_archive(path))
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
    src: Any = db.connect()  # the driver's connection: backup() is not part of the Connection protocol
    dst = driver().connect(str(target), isolation_level=None)
    try:
        if progress is None:
            src.backup(dst)
        else:
            src.backup(dst, pages=1, progress=progress)
        maintenance.use_rollback_journal(dst)
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
            verify_backup(final, check_paths=False)  # a live DB's own paths are checked where they are used
        except BackupError:
            _remove(final)
            raise
    info = _info(final)
    log.info("backup %s written (%d bytes)", info.name, info.size_bytes)
    return info


def declared_db_bytes(header: bytes) -> int | None:
    """The size a SQLite file's 100-byte header declares (page size x page count), None when it gives none,
    -1 when it is not a SQLite header at all."""
    if len(header) < 100 or not header.startswith(SQLITE_MAGIC):
        return -1
    page = int.from_bytes(header[16:18], "big")
    pages = int.from_bytes(header[28:32], "big")
    valid = header[24:28] == header[92:96]  # the page count is current only when these two counters agree
    return (65536 if page == 1 else page) * pages if valid and pages else None


def _inflate_limit(path: Path, header: bytes) -> int:
    """How many bytes a backup may inflate to: its header's declared size, else a ratio of its gzip size."""
    declared = declared_db_bytes(header)
    if declared == -1:
        raise BackupError(f"backup {path.name} is not a usable SQLite database (it has no SQLite header)")
    return declared if declared is not None else path.stat().st_size * MAX_INFLATE_RATIO + INFLATE_SLACK


def _decompress(path: Path, target: Path) -> None:
    """Inflate a backup into target, stopping as soon as it goes past the size it may have (no gzip bombs)."""
    try:
        with gzip.open(path, "rb") as src, open(target, "wb") as out:
            chunk = src.read(100)
            limit = _inflate_limit(path, chunk)
            written = 0
            while chunk:
                written += len(chunk)
                if written > limit:
                    raise BackupError(f"backup {path.name} inflates past the {limit} bytes its SQLite header "
                                      "allows; it is damaged or hostile and was not used")
                out.write(chunk)
                chunk = src.read(1024 * 1024)
            out.flush()
            os.fsync(out.fileno())
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise BackupError(f"backup {path.name} is damaged and cannot be used: {e}") from e


# (table, column, the folder its files must be directly inside, the prefix that makes a stored value a path
# relative to the data dir: avatar paths are stored that way already, the others as bare file names)
STORED_PATHS = (("characters", "avatar_path", "images/avatars", ""),
                ("personas", "avatar_path", "images/avatars", ""),
                ("characters", "source_file", "characters", "characters/"),
                ("worlds", "source_file", "worlds", "worlds/"),
                ("images", "file_name", "images", "images/"))


def stored_path_problems(conn: Connection) -> list[str]:
    """Every stored file path of a DB that would lead out of its folder, as sentences."""
    problems = []
    for table, column, folder, prefix in STORED_PATHS:
        for value in maintenance.column_values(conn, table, column):
            problem = stored_path_problem(folder, prefix + value)
            if problem:
                problems.append(f"{table}.{column}: {problem}")
    return problems


def check_database_file(path: Path, label: str, *, check_paths: bool = False) -> int:
    """integrity_check a plain DB file and return its schema version; BackupError when it is not sound."""
    try:
        conn = connect(path, readonly=True)
    except DatabaseError as e:
        raise BackupError(f"{label} is not a usable SQLite database: {e.message}") from e
    except driver().Error as e:
        raise BackupError(f"{label} is not a usable SQLite database: {e}") from e
    try:
        rows = maintenance.integrity_check(conn)
        if rows != ["ok"]:
            raise BackupError(f"{label} failed the integrity check: {'; '.join(rows[:5])}")
        if "_migrations" not in maintenance.table_names(conn):
            raise BackupError(f"{label} is not a NeuralRP database (no _migrations table)")
        bad = stored_path_problems(conn) if check_paths else []
        if bad:
            raise BackupError(f"{label} stores file paths that leave their folders: {'; '.join(bad[:5])}")
        return maintenance.recorded_schema_version(conn)
    except driver().Error as e:
        raise BackupError(f"{label} is not a usable SQLite database: {e}") from e
    finally:
        conn.close()


def verify_backup(path: Path, *, keep_as: Path | None = None, check_paths: bool = True) -> int:
    """Decompress and check a backup (integrity, known schema); returns its schema version.

    With keep_as the decompressed DB is left there (for a restore); otherwise it is removed.
    """
    target = keep_as or path.with_name(f"{TMP_PREFIX}verify-{path.name[:-3]}")
    try:
        _decompress(path, target)
        version = check_database_file(target, f"backup {path.name}", check_paths=check_paths)
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
        _remove(backup.path, files_archive(backup.path))
    if doomed:
        log.info("pruned %d backup(s) older than %d days", len(doomed), retention_days)
    return [b.name for b in doomed]


def _sidecars(path: Path) -> tuple[Path, Path]:
    return path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")


def _swap_in(db: Database, staged: Path) -> None:
    """Replace the live DB file by staged: checkpoint, rename over it, drop the old WAL/SHM, fsync."""
    if db.path.exists():
        with db.session() as conn:
            maintenance.checkpoint(conn)
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


def stage_backup(db: Database, backups_dir: Path, name: str) -> Path:
    """Verify a backup into a staged DB file beside the live one and return it; nothing else is touched.

    NotFound/InvalidInput for a bad name, BackupError for a damaged or unknown backup."""
    source = backup_path(backups_dir, name)
    staged = db.path.with_name(f"{db.path.name}.restore-tmp")
    with MAINTENANCE_LOCK:
        verify_backup(source, keep_as=staged)
    return staged


def archive_folders(target: Path, folders: Sequence[Path]) -> None:
    """Write the folders' files into a new tar.gz (temp file, fsync, rename), each under its folder's name."""
    tmp = target.with_name(TMP_PREFIX + target.name)
    try:
        with open(tmp, "xb") as out:
            with tarfile.open(fileobj=out, mode="w:gz") as tar:
                for folder in folders:
                    if folder.is_dir():
                        tar.add(folder, arcname=folder.name)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
        _fsync_dir(target.parent)
    except OSError as e:
        _remove(tmp)
        raise BackupError(f"could not archive {', '.join(f.name for f in folders)}/ into {target.name}: {e}") from e


def restore_staged(db: Database, backups_dir: Path, name: str, staged: Path, *, now: datetime,
                   folders: Sequence[Path] = ()) -> RestoreReport:
    """Swap a staged (verified) backup in; the caller has stopped every writer first.

    Order: a pre-restore backup of the live DB, the mirror folders archived beside it, the files swapped
    (never copying over an open file), then the restored DB checked and migrated.
    """
    with MAINTENANCE_LOCK:
        try:
            pre = create_backup(db, backups_dir, now=now, label="pre-restore") if db.path.exists() else None
            if pre is not None and folders:
                archive_folders(files_archive(pre.path), folders)
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


def restore_backup(db: Database, backups_dir: Path, name: str, *, now: datetime,
                   folders: Sequence[Path] = ()) -> RestoreReport:
    """Verify a backup, then restore it over the live DB (stage_backup + restore_staged); writers are stopped."""
    staged = stage_backup(db, backups_dir, name)
    return restore_staged(db, backups_dir, name, staged, now=now, folders=folders)
