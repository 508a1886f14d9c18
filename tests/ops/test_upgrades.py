"""Upgrades: a DB made by every released schema version migrates to the current one and loses nothing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from neuralrp.db.connection import connect
from neuralrp.db.migrations import bundled_migrations, migrate, schema_version
from neuralrp.ops.backup import check_database_file
from tests.ops.helpers import columns_of, fingerprint
from tests.ops.make_fixtures import FIXTURES, RELEASED

FTS_VERSION = 3


@pytest.mark.parametrize("version", RELEASED)
def test_released_db_upgrades_without_loss(version: int, tmp_path: Path) -> None:
    source = FIXTURES / f"schema-v{version}.db"
    assert source.exists(), "run: .venv/bin/python -m tests.ops.make_fixtures"
    db = tmp_path / "neuralrp.db"
    shutil.copy(source, db)
    old_columns = columns_of(db)
    before = fingerprint(db)
    conn = connect(db)
    try:
        assert schema_version(conn) == version
        applied = migrate(conn)
        assert schema_version(conn) == len(bundled_migrations())
        assert len(applied) == len(bundled_migrations()) - version
        found = conn.execute("SELECT count(*) AS n FROM messages_fts WHERE messages_fts MATCH 'chat'").fetchone()
    finally:
        conn.close()
    assert fingerprint(db, columns=old_columns) == before
    assert found["n"] == before["messages"][0]  # old messages are searchable after the upgrade
    assert check_database_file(db, "upgraded") == len(bundled_migrations())


def test_every_released_version_has_a_fixture() -> None:
    assert {f"schema-v{v}.db" for v in RELEASED} <= {p.name for p in FIXTURES.glob("*.db")}
    assert max(RELEASED) < FTS_VERSION <= len(bundled_migrations())
