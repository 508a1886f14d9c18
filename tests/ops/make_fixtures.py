"""Build tests/ops/fixtures/schema-vN.db: a small DB made by each released schema version, with rows.

Run once per release that adds a migration: `.venv/bin/python -m tests.ops.make_fixtures`.
Existing fixtures are never rebuilt (they stand for DBs already on users' disks).
"""

from __future__ import annotations

import logging
from pathlib import Path

from neuralrp.db.connection import connect
from neuralrp.db.migrations import bundled_migrations, migrate
from tests.ops.helpers import seed

FIXTURES = Path(__file__).parent / "fixtures"
RELEASED = (1, 2)  # schema versions shipped in a release

log = logging.getLogger(__name__)


def make_fixture(version: int, target: Path) -> None:
    """Apply migrations 1..version to a new DB at target and add chats, messages and characters."""
    conn = connect(target)
    try:
        migrate(conn, bundled_migrations()[:version])
        seed(conn, chats=2, messages=5, title="Upgrade story")
        seed(conn, chats=1, messages=3, title=None)
        conn.execute("INSERT INTO change_history (entity_type, entity_id, operation, new_json, created_at) "
                     "VALUES ('message', 1, 'update', '{}', '2025-01-01T00:00:00.000+00:00')")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("PRAGMA journal_mode=DELETE")
    finally:
        conn.close()


def main() -> None:
    """Write the missing fixtures."""
    FIXTURES.mkdir(exist_ok=True)
    for version in RELEASED:
        target = FIXTURES / f"schema-v{version}.db"
        if not target.exists():
            make_fixture(version, target)
            log.warning("wrote %s", target)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    main()
