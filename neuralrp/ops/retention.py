"""Retention: prune what the user did not name, after the configured days of inactivity. 0 days = off.

Named chats and their messages are never deleted here, whatever the settings say, unless the user deleted the
chat: a deleted chat is purged retention.deleted_chat_days after it was deleted.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from neuralrp.chats import store
from neuralrp.clock import iso
from neuralrp.config import RetentionSettings
from neuralrp.db import maintenance
from neuralrp.db.connection import Connection, transaction

log = logging.getLogger(__name__)

@dataclass
class PruneReport:
    """Rows removed by one prune run."""

    unnamed_chats: int = 0
    autosave_chats: int = 0
    archived_messages: int = 0
    metrics: int = 0
    deleted_chats: int = 0

    def as_dict(self) -> dict[str, int]:
        """JSON-ready form."""
        return asdict(self)

    def line(self) -> str:
        """One log line."""
        return ", ".join(f"{k}={v}" for k, v in asdict(self).items())


def _cutoff(now: datetime, days: int) -> str:
    return iso(now - timedelta(days=days))


def prune(conn: Connection, policy: RetentionSettings, now: datetime) -> PruneReport:
    """Apply the retention policy in one transaction; returns what was removed."""
    report = PruneReport()
    with transaction(conn):
        if policy.unnamed_chat_days:
            report.unnamed_chats = store.delete_idle_unnamed_chats(
                conn, autosave=False, cutoff=_cutoff(now, policy.unnamed_chat_days))
        if policy.autosave_days:
            report.autosave_chats = store.delete_idle_unnamed_chats(
                conn, autosave=True, cutoff=_cutoff(now, policy.autosave_days))
        if policy.archived_message_days:
            report.archived_messages = store.delete_archived_unnamed_messages(
                conn, _cutoff(now, policy.archived_message_days))
        if policy.metrics_days:
            report.metrics = maintenance.delete_metrics_before(conn, _cutoff(now, policy.metrics_days))
        if policy.deleted_chat_days:
            report.deleted_chats = store.purge_deleted_chats(conn, _cutoff(now, policy.deleted_chat_days))
    return report


def vacuum(conn: Connection) -> dict[str, int]:
    """Checkpoint the WAL and VACUUM; returns page counts before and after."""
    before = maintenance.page_count(conn)
    maintenance.checkpoint(conn)
    maintenance.vacuum(conn)
    maintenance.checkpoint(conn)
    return {"pages_before": before, "pages_after": maintenance.page_count(conn)}
