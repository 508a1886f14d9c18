"""Backups: online copy, compression, atomic rename, verification, pruning, restore."""

from __future__ import annotations

import errno
import gzip
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO

import pytest
from click.testing import CliRunner

from neuralrp.cli import cli
from neuralrp.config import Settings
from neuralrp.db.connection import Database, connect
from neuralrp.errors import InvalidInput, NotFound
from neuralrp.ops.backup import (
    BackupError,
    create_backup,
    delete_backup,
    list_backups,
    prune_backups,
    restore_backup,
    verify_backup,
)
from tests.ops.helpers import fingerprint, seed

NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)


@pytest.fixture
def folder(settings: Settings) -> Path:
    return settings.data_dir / "backups"


@pytest.fixture
def seeded(db: Database) -> Database:
    with db.session() as conn:
        seed(conn)
    return db


def test_backup_is_compressed_verified_and_named(seeded: Database, folder: Path) -> None:
    info = create_backup(seeded, folder, now=NOW, label="manual")
    assert info.name == "neuralrp-20250301-120000-manual.db.gz"
    assert info.path.read_bytes()[:2] == b"\x1f\x8b"
    assert verify_backup(info.path) >= 3
    assert [b.name for b in list_backups(folder)] == [info.name]
    assert [p.name for p in folder.iterdir()] == [info.name]  # no temp file left behind


def test_restore_round_trips_rows_and_keeps_pre_restore(seeded: Database, folder: Path) -> None:
    before = fingerprint(seeded.path)
    info = create_backup(seeded, folder, now=NOW)
    with seeded.session() as conn:
        conn.execute("DELETE FROM messages WHERE seq > 1")
        seed(conn, chats=1, title="After")
    report = restore_backup(seeded, folder, info.name, now=NOW + timedelta(minutes=1))
    assert fingerprint(seeded.path) == before
    assert report.pre_restore == "neuralrp-20250301-120100-pre-restore.db.gz"
    assert verify_backup(folder / report.pre_restore)


def test_cli_backup_create_then_restore_round_trips(settings: Settings, seeded: Database, tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(f"paths:\n  data_dir: {settings.data_dir}\n", encoding="utf-8")
    before = fingerprint(seeded.path)
    runner = CliRunner()
    made = runner.invoke(cli, ["--config", str(config), "backup", "create"])
    assert made.exit_code == 0, made.output
    name = list_backups(settings.data_dir / "backups")[0].name
    with seeded.session() as conn:
        conn.execute("DELETE FROM chats")
    listed = runner.invoke(cli, ["--config", str(config), "backup", "list"])
    assert name in listed.output
    restored = runner.invoke(cli, ["--config", str(config), "backup", "restore", name, "--yes"])
    assert restored.exit_code == 0, restored.output
    assert fingerprint(seeded.path) == before
    assert "pre-restore" in restored.output


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage"])
def test_corrupted_backup_is_refused(seeded: Database, folder: Path, damage: str) -> None:
    info = create_backup(seeded, folder, now=NOW)
    data = info.path.read_bytes()
    if damage == "truncate":
        info.path.write_bytes(data[: len(data) // 2])
    elif damage == "flip":
        raw = bytearray(gzip.decompress(data))
        for start in range(4096, len(raw), 4096):
            raw[start: start + 8] = b"\x0d\xff\xff\xff\xff\x00\x00\x00"  # bad b-tree page headers
        info.path.write_bytes(gzip.compress(bytes(raw)))
    else:
        info.path.write_bytes(b"not a backup at all")
    live = fingerprint(seeded.path)
    with pytest.raises(BackupError, match=info.name):
        verify_backup(info.path)
    with pytest.raises(BackupError):
        restore_backup(seeded, folder, info.name, now=NOW + timedelta(minutes=1))
    assert fingerprint(seeded.path) == live
    assert not list(seeded.path.parent.glob("*.restore-tmp"))


def test_disk_full_leaves_live_db_untouched_and_no_partial_file(seeded: Database, folder: Path) -> None:
    before = fingerprint(seeded.path)
    db_bytes = seeded.path.read_bytes()

    class FullDisk:
        def __init__(self, path: Path) -> None:
            self.inner: IO[bytes] = open(path, "xb")  # noqa: SIM115

        def write(self, data: bytes) -> int:
            self.inner.write(data[:10])
            raise OSError(errno.ENOSPC, "No space left on device")

        def __getattr__(self, name: str) -> object:
            return getattr(self.inner, name)

        def __enter__(self) -> FullDisk:
            return self

        def __exit__(self, *exc: object) -> None:
            self.inner.close()

    with pytest.raises(BackupError, match="No space left"):
        create_backup(seeded, folder, now=NOW, opener=FullDisk)  # type: ignore[arg-type]
    assert list(folder.iterdir()) == []
    assert fingerprint(seeded.path) == before
    assert seeded.path.read_bytes() == db_bytes


def test_names_are_validated(seeded: Database, folder: Path) -> None:
    create_backup(seeded, folder, now=NOW)
    (folder.parent / "secret.db.gz").write_bytes(b"x")
    for bad in ["../secret.db.gz", "neuralrp-20250301-120000.db.gz/../../x", "/etc/passwd", "x.db.gz"]:
        with pytest.raises(InvalidInput):
            delete_backup(folder, bad)
    with pytest.raises(NotFound):
        delete_backup(folder, "neuralrp-20990101-000000.db.gz")
    with pytest.raises(InvalidInput):
        create_backup(seeded, folder, now=NOW, label="../evil")
    delete_backup(folder, "neuralrp-20250301-120000.db.gz")
    assert list_backups(folder) == []


def test_prune_keeps_recent_and_at_least_n(seeded: Database, folder: Path) -> None:
    for days in (40, 35, 31, 10, 0):
        create_backup(seeded, folder, now=NOW - timedelta(days=days))
    gone = prune_backups(folder, retention_days=30, keep_at_least=3, now=NOW)
    assert len(gone) == 2 and all(name.startswith(("neuralrp-20250120", "neuralrp-20250125")) for name in gone)
    assert len(list_backups(folder)) == 3
    gone = prune_backups(folder, retention_days=1, keep_at_least=3, now=NOW)
    assert gone == [] and len(list_backups(folder)) == 3


def test_backup_of_live_db_while_writing(seeded: Database, folder: Path) -> None:
    writer = connect(seeded.path)
    writer.execute("BEGIN IMMEDIATE")
    seed(writer, chats=1, title="uncommitted")
    info = create_backup(seeded, folder, now=NOW)  # the open write transaction does not block a backup
    writer.execute("ROLLBACK")
    writer.close()
    assert verify_backup(info.path)
