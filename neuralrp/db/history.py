"""Change history: before/after snapshots of edits, deletes and sync conflicts."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from neuralrp.clock import iso
from neuralrp.db.connection import Connection


@dataclass(frozen=True)
class Change:
    """One recorded change (old/new decoded); chat_id and seq are set for message changes read with their chat."""

    id: int
    entity_type: str
    entity_id: int
    operation: str
    old: Any
    new: Any
    note: str
    created_at: str
    chat_id: int | None = None
    seq: int | None = None


def record_change(conn: Connection, entity: str, entity_id: int, op: str, old: Any, new: Any,
                  note: str = "") -> None:
    """Keep a before/after snapshot in change history."""
    conn.execute("INSERT INTO change_history (entity_type, entity_id, operation, old_json, new_json, note,"
                 " created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                 (entity, entity_id, op, None if old is None else json.dumps(old, ensure_ascii=False),
                  None if new is None else json.dumps(new, ensure_ascii=False), note, iso()))


def _change(row: dict[str, Any]) -> Change:
    return Change(
        id=row["id"], entity_type=row["entity_type"], entity_id=row["entity_id"], operation=row["operation"],
        old=json.loads(row["old_json"]) if row["old_json"] else None,
        new=json.loads(row["new_json"]) if row["new_json"] else None,
        note=row["note"], created_at=row["created_at"], chat_id=row.get("chat_id"), seq=row.get("seq"))


def get_change(conn: Connection, change_id: int) -> Change | None:
    """One recorded change, or None."""
    row = conn.execute("SELECT * FROM change_history WHERE id = ?", (change_id,)).fetchone()
    return None if row is None else _change(row)


_MESSAGE_CHANGES = ("SELECT h.*, m.chat_id, m.seq FROM change_history h LEFT JOIN messages m ON m.id = h.entity_id"
                    " WHERE h.entity_type = 'message'")


def message_changes(conn: Connection, message_id: int) -> list[Change]:
    """A message's changes, newest first."""
    rows = conn.execute(f"{_MESSAGE_CHANGES} AND h.entity_id = ? ORDER BY h.created_at DESC, h.id DESC",
                        (message_id,))
    return [_change(r) for r in rows]


def chat_message_changes(conn: Connection, chat_id: int, limit: int) -> list[Change]:
    """Changes to any message of a chat, newest first, at most `limit`."""
    rows = conn.execute(f"{_MESSAGE_CHANGES} AND m.chat_id = ? ORDER BY h.created_at DESC, h.id DESC LIMIT ?",
                        (chat_id, limit))
    return [_change(r) for r in rows]


def prune_changes(conn: Connection, entity: str, cutoff: str) -> int:
    """Drop an entity type's changes recorded before cutoff; returns rows removed."""
    cur = conn.execute("DELETE FROM change_history WHERE entity_type = ? AND created_at < ?", (entity, cutoff))
    return int(cur.rowcount)
