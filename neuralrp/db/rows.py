"""Row copying for the stores (a fork copies rows of several tables with a few columns changed)."""

from __future__ import annotations

from typing import Any

from neuralrp.db.connection import Connection


def table_columns(conn: Connection, table: str) -> list[str]:
    """The table's column names in schema order."""
    return [r["name"] for r in conn.execute(f"PRAGMA table_info({table})")]


def copy_row(conn: Connection, table: str, row: dict[str, Any], changes: dict[str, Any]) -> int:
    """Insert a copy of a row (a new id) with some columns changed; returns the new id."""
    cols = [c for c in table_columns(conn, table) if c != "id"]
    values = [changes.get(c, row.get(c)) for c in cols]
    marks = ", ".join("?" for _ in cols)
    cur = conn.execute(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({marks})", values)
    return int(cur.lastrowid or 0)
