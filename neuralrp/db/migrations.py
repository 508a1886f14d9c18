"""Numbered schema migrations, each applied with its record in one transaction.

A migration is a file ``db/migrations/NNNN_name.sql``. Applied names are kept in the
``_migrations`` table. Never edit an applied migration: add a new file. Because
SQLite DDL is transactional, a failing migration leaves no table, row or record behind.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import Any

from neuralrp.db.connection import driver
from neuralrp.errors import MigrationError

log = logging.getLogger(__name__)

_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
_BOOKKEEPING = """
CREATE TABLE IF NOT EXISTS _migrations (
    number INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    applied_at TEXT NOT NULL
)
"""


@dataclass(frozen=True)
class Migration:
    """One numbered schema step."""

    number: int
    name: str
    sql: str


def bundled_migrations() -> list[Migration]:
    """The migrations shipped in the package, in number order."""
    folder = resources.files("neuralrp.db") / "migrations"
    found = []
    for entry in folder.iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), entry.name[:-4], entry.read_text("utf-8")))
    found.sort(key=lambda m: m.number)
    numbers = [m.number for m in found]
    if numbers != list(range(1, len(found) + 1)):
        raise MigrationError(f"migration numbers must run 1..N without gaps, found {numbers}")
    return found


def applied(conn: Any) -> dict[int, str]:
    """Applied migration numbers mapped to their names."""
    conn.execute(_BOOKKEEPING)
    return {r["number"]: r["name"] for r in conn.execute("SELECT number, name FROM _migrations")}


def pending(conn: Any, migrations: list[Migration] | None = None) -> list[Migration]:
    """Migrations not yet applied to this database."""
    done = applied(conn)
    return [m for m in (migrations or bundled_migrations()) if m.number not in done]


def schema_version(conn: Any) -> int:
    """Highest applied migration number (0 for a blank DB)."""
    return max(applied(conn), default=0)


def _apply(conn: Any, migration: Migration) -> None:
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    values = f"({migration.number}, '{migration.name}', '{stamp}')"
    record = f"INSERT INTO _migrations (number, name, applied_at) VALUES {values};"
    try:
        conn.executescript(f"BEGIN IMMEDIATE;\n{migration.sql}\n;{record}\nCOMMIT;")
    except driver().Error as e:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise MigrationError(f"migration {migration.name} failed and was rolled back: {e}") from e


def migrate(conn: Any, migrations: list[Migration] | None = None) -> list[str]:
    """Apply every pending migration in order; return the names applied."""
    todo = pending(conn, migrations)
    latest = max((m.number for m in (migrations or bundled_migrations())), default=0)
    if schema_version(conn) > latest:
        raise MigrationError(
            f"this database has schema version {schema_version(conn)}, newer than this NeuralRP "
            f"knows ({latest}); upgrade NeuralRP instead of downgrading the database"
        )
    for migration in todo:
        _apply(conn, migration)
        log.info("applied migration %s", migration.name)
    return [m.name for m in todo]
