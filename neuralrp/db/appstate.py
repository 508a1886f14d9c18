"""The app's own state tables: `settings` (UI overrides, remembered values) and `job_runs` (maintenance jobs)."""

from __future__ import annotations

import json
from typing import Any

from neuralrp.clock import iso
from neuralrp.db.connection import Connection


def get_value(conn: Connection, key: str) -> Any | None:
    """The stored value of a setting (decoded JSON), or None when none is stored."""
    row = conn.execute("SELECT value_json FROM settings WHERE key = ?", (key,)).fetchone()
    return None if row is None else json.loads(row["value_json"])


def values_with_prefix(conn: Connection, prefix: str) -> list[tuple[str, Any]]:
    """(key, decoded value) of every stored setting whose key starts with prefix."""
    like = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    rows = conn.execute("SELECT key, value_json FROM settings WHERE key LIKE ? ESCAPE '\\'", (like,)).fetchall()
    return [(r["key"], json.loads(r["value_json"])) for r in rows]


def set_value(conn: Connection, key: str, value: Any) -> None:
    """Store (or replace) a setting's value as JSON."""
    conn.execute("INSERT INTO settings (key, value_json, updated_at) VALUES (?, ?, ?)"
                 " ON CONFLICT (key) DO UPDATE SET value_json = excluded.value_json, updated_at = excluded.updated_at",
                 (key, json.dumps(value, ensure_ascii=False), iso()))


def delete_value(conn: Connection, key: str) -> None:
    """Forget a stored setting."""
    conn.execute("DELETE FROM settings WHERE key = ?", (key,))


def job_runs(conn: Connection) -> dict[str, dict[str, Any]]:
    """The job_runs table keyed by job name."""
    return {r["job"]: r for r in conn.execute("SELECT * FROM job_runs")}


def record_job(conn: Connection, job: str, **fields: str) -> None:
    """Insert or update a job's columns (last_started_at, last_finished_at, last_status, last_detail; from code)."""
    cols = ", ".join(fields)
    marks = ", ".join("?" for _ in fields)
    updates = ", ".join(f"{c} = excluded.{c}" for c in fields)
    conn.execute(f"INSERT INTO job_runs (job, {cols}) VALUES (?, {marks}) "
                 f"ON CONFLICT(job) DO UPDATE SET {updates}", (job, *fields.values()))
