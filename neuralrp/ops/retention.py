"""Retention: prune what the user did not name, after the configured days of inactivity. 0 days = off.

Named chats and their messages are never deleted here, whatever the settings say.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from neuralrp.clock import iso
from neuralrp.config import RetentionSettings
from neuralrp.db.connection import transaction

log = logging.getLogger(__name__)

UNNAMED = "(title IS NULL OR trim(title) = '')"


@dataclass
class PruneReport:
    """Rows removed by one prune run."""

    unnamed_chats: int = 0
    autosave_chats: int = 0
    archived_messages: int = 0
    metrics: int = 0

    def as_dict(self) -> dict[str, int]:
        """JSON-ready form."""
        return asdict(self)

    def line(self) -> str:
        """One log line."""
        return ", ".join(f"{k}={v}" for k, v in asdict(self).items())


def _cutoff(now: datetime, days: int) -> str:
    return iso(now - timedelta(days=days))


def _delete_chats(conn: Any, where: str, cutoff: str) -> int:
    """Delete inactive unnamed chats matching `where` (cascades to their messages)."""
    cur = conn.execute(f"DELETE FROM chats WHERE {UNNAMED} AND ({where}) AND last_activity_at < ?", (cutoff,))
    return int(cur.rowcount)


def _has_table(conn: Any, name: str) -> bool:
    row = conn.execute("SELECT 1 AS x FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone()
    return row is not None


def prune(conn: Any, policy: RetentionSettings, now: datetime) -> PruneReport:
    """Apply the retention policy in one transaction; returns what was removed."""
    report = PruneReport()
    with transaction(conn):
        if policy.unnamed_chat_days:
            report.unnamed_chats = _delete_chats(conn, "autosave = 0", _cutoff(now, policy.unnamed_chat_days))
        if policy.autosave_days:
            report.autosave_chats = _delete_chats(conn, "autosave = 1", _cutoff(now, policy.autosave_days))
        if policy.archived_message_days:
            cur = conn.execute(
                f"DELETE FROM messages WHERE archived = 1 AND updated_at < ? "
                f"AND chat_id IN (SELECT id FROM chats WHERE {UNNAMED})",
                (_cutoff(now, policy.archived_message_days),))
            report.archived_messages = int(cur.rowcount)
        if policy.metrics_days and _has_table(conn, "metrics"):
            cur = conn.execute("DELETE FROM metrics WHERE created_at < ?", (_cutoff(now, policy.metrics_days),))
            report.metrics = int(cur.rowcount)
    return report


def vacuum(conn: Any) -> dict[str, int]:
    """Checkpoint the WAL and VACUUM; returns page counts before and after."""
    before = int(conn.execute("PRAGMA page_count").fetchone()["page_count"])
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("VACUUM")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    after = int(conn.execute("PRAGMA page_count").fetchone()["page_count"])
    return {"pages_before": before, "pages_after": after}
