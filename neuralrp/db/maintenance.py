"""Database-wide SQL: integrity checks, WAL checkpoints, VACUUM, row counts and the data_versions counters."""

from __future__ import annotations

from neuralrp.db.connection import Connection
from neuralrp.errors import DatabaseError


def integrity_check(conn: Connection) -> list[str]:
    """What PRAGMA integrity_check reports (["ok"] for a sound file)."""
    return [str(next(iter(r.values()))) for r in conn.execute("PRAGMA integrity_check")]


def table_names(conn: Connection) -> set[str]:
    """Names of the database's tables."""
    return {r["name"] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def has_table(conn: Connection, name: str) -> bool:
    """Whether a table of this name exists."""
    row = conn.execute("SELECT 1 AS x FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone()
    return row is not None


def recorded_schema_version(conn: Connection) -> int:
    """The newest migration number recorded in _migrations (read-only; 0 when none is)."""
    return int(conn.execute("SELECT max(number) AS v FROM _migrations").fetchone()["v"] or 0)


def checkpoint(conn: Connection) -> None:
    """Write the WAL back into the database file and truncate it."""
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def use_rollback_journal(conn: Connection) -> None:
    """Switch a (copied) database file out of WAL mode, so it is one self-contained file."""
    conn.execute("PRAGMA journal_mode=DELETE")


def page_count(conn: Connection) -> int:
    """Pages in the database file."""
    return int(conn.execute("PRAGMA page_count").fetchone()["page_count"])


def vacuum(conn: Connection) -> None:
    """Rebuild the database file without its free pages."""
    conn.execute("VACUUM")


def row_counts(conn: Connection, tables: tuple[str, ...]) -> dict[str, int]:
    """Rows per table (the names come from code, never from a request)."""
    return {t: int(conn.execute(f"SELECT count(*) AS n FROM {t}").fetchone()["n"]) for t in tables}


def delete_metrics_before(conn: Connection, cutoff: str) -> int:
    """Drop metrics rows older than cutoff, where a metrics table exists; returns rows removed."""
    if not has_table(conn, "metrics"):
        return 0
    return int(conn.execute("DELETE FROM metrics WHERE created_at < ?", (cutoff,)).rowcount)


def db_file(conn: Connection) -> str:
    """Path of the connection's main database ('' for an in-memory one)."""
    return str(conn.execute("PRAGMA database_list").fetchone()["file"] or "")


def data_version(conn: Connection, name: str) -> tuple[int, int]:
    """(version, token) of a table's change counter; any write to the table changes it (migration 0005)."""
    row = conn.execute("SELECT version, token FROM data_versions WHERE name = ?", (name,)).fetchone()
    if row is None:
        raise DatabaseError(f"the database has no change counter for {name}; run `neuralrp migrate`")
    return int(row["version"]), int(row["token"])


def column_values(conn: Connection, table: str, column: str) -> list[str]:
    """The distinct non-empty text values of one column ([] when the table or column does not exist); the
    names come from code, never from a request."""
    if column not in {r["name"] for r in conn.execute(f"PRAGMA table_info({table})")}:
        return []
    rows = conn.execute(f"SELECT DISTINCT {column} AS v FROM {table} WHERE {column} IS NOT NULL AND {column} != ''")
    return [str(r["v"]) for r in rows]
