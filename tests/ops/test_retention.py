"""Retention: only unnamed/autosave chats inactive for the configured days; named chats are never touched."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from neuralrp.clock import iso
from neuralrp.config import RetentionSettings
from neuralrp.db.connection import Database
from neuralrp.ops.retention import prune, vacuum
from tests.ops.helpers import seed

NOW = datetime(2025, 3, 1, tzinfo=UTC)
OLD = iso(NOW - timedelta(days=400))
RECENT = iso(NOW - timedelta(days=2))


def _counts(db: Database) -> tuple[int, int]:
    with db.session() as conn:
        chats = conn.execute("SELECT count(*) AS n FROM chats").fetchone()["n"]
        msgs = conn.execute("SELECT count(*) AS n FROM messages").fetchone()["n"]
    return chats, msgs


def _seed_mix(db: Database) -> None:
    with db.session() as conn:
        seed(conn, chats=2, title="My story", stamp=OLD, archived=1)  # named, old, archived messages
        seed(conn, chats=1, title=None, stamp=OLD)  # unnamed, old
        seed(conn, chats=1, title=None, stamp=RECENT)  # unnamed, active
        old_autosave = seed(conn, chats=1, title=None, stamp=OLD)
        named_autosave = seed(conn, chats=1, title="Saved", stamp=OLD)
        conn.execute("UPDATE chats SET autosave = 1 WHERE id IN (?, ?)", (old_autosave[0], named_autosave[0]))


def test_defaults_delete_nothing(db: Database) -> None:
    _seed_mix(db)
    before = _counts(db)
    with db.session() as conn:
        report = prune(conn, RetentionSettings(), NOW)
    assert report.unnamed_chats == report.autosave_chats == report.archived_messages == 0
    assert _counts(db) == before


def test_everything_on_never_touches_named_chats(db: Database) -> None:
    _seed_mix(db)
    policy = RetentionSettings(unnamed_chat_days=30, autosave_days=7, archived_message_days=1, metrics_days=1)
    with db.session() as conn:
        report = prune(conn, policy, NOW)
        titles = sorted(r["title"] or "" for r in conn.execute("SELECT title FROM chats"))
        named_msgs = conn.execute("SELECT count(*) AS n FROM messages m JOIN chats c ON c.id = m.chat_id "
                                  "WHERE c.title IS NOT NULL").fetchone()["n"]
    assert (report.unnamed_chats, report.autosave_chats) == (1, 1)
    assert titles == ["", "My story", "My story", "Saved"]  # the active unnamed chat stays
    assert named_msgs == 3 * 4


def test_vacuum_reports_pages(db: Database) -> None:
    with db.session() as conn:
        seed(conn, chats=20, messages=20)
        conn.execute("DELETE FROM chats")
        pages = vacuum(conn)
    assert pages["pages_after"] < pages["pages_before"]
