"""Edit, delete (archive) and restore messages, with every change kept in change history.

History rows use entity_type 'message'. An edit is operation 'update' with old/new
``{"content"}``; a delete is 'delete' and its undo 'restore' with ``{"archived",
"archived_reason"}``; restoring an older text is 'restore' with old/new ``{"content"}``.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from neuralrp.chats import store
from neuralrp.chats.service import MAX_MESSAGE_CHARS
from neuralrp.chats.store import Message
from neuralrp.clock import iso, utcnow
from neuralrp.db.connection import transaction
from neuralrp.errors import Conflict, InvalidInput, NotFound
from neuralrp.library.service import record_change
from neuralrp.llm.tokens import LOCAL_COUNTER, estimate_tokens

ENTITY = "message"
DELETED = "deleted"


def _editable(conn: Any, message_id: int) -> Message:
    msg = store.get_message(conn, message_id)
    if msg.status == "streaming":
        raise Conflict(f"message {message_id} is still being written; stop the reply first")
    return msg


def _write_text(conn: Any, msg: Message, content: str) -> None:
    store.set_message_text(conn, msg.id, content)
    store.set_token_count(conn, msg.id, estimate_tokens(content), LOCAL_COUNTER)
    conn.execute("UPDATE message_swipes SET content = ? WHERE message_id = ? AND idx = ?",
                 (content, msg.id, msg.swipe_index))


def edit_message(conn: Any, message_id: int, content: str, *, note: str = "") -> Message:
    """Replace a message's text; the old text is kept in change history."""
    if not content.strip():
        raise InvalidInput("the message is empty; delete it instead")
    if len(content) > MAX_MESSAGE_CHARS:
        raise InvalidInput(f"the message is {len(content)} characters long; the limit is {MAX_MESSAGE_CHARS}")
    with transaction(conn):
        msg = _editable(conn, message_id)
        if msg.content != content:
            record_change(conn, ENTITY, msg.id, "update", {"content": msg.content}, {"content": content}, note)
            _write_text(conn, msg, content)
    return store.get_message(conn, message_id)


def delete_message(conn: Any, message_id: int) -> Message:
    """Soft-delete: archive the message as 'deleted' (still searchable, restorable)."""
    with transaction(conn):
        msg = _editable(conn, message_id)
        reason = _reason(conn, msg.id)
        if msg.archived:
            raise Conflict(f"message {message_id} is already archived ({reason})")
        record_change(conn, ENTITY, msg.id, "delete", {"archived": False, "archived_reason": None},
                      {"archived": True, "archived_reason": DELETED})
        store.archive_message(conn, msg.id, DELETED)
    return store.get_message(conn, message_id)


def undelete_message(conn: Any, message_id: int) -> Message:
    """Undo a soft delete: the message is live again."""
    with transaction(conn):
        msg = _editable(conn, message_id)
        reason = _reason(conn, msg.id)
        if not msg.archived or reason != DELETED:
            raise Conflict(f"message {message_id} is not deleted" + (f" (archived: {reason})" if reason else ""))
        record_change(conn, ENTITY, msg.id, "restore", {"archived": True, "archived_reason": DELETED},
                      {"archived": False, "archived_reason": None})
        conn.execute("UPDATE messages SET archived = 0, archived_reason = NULL, updated_at = ? WHERE id = ?",
                     (iso(), msg.id))
    return store.get_message(conn, message_id)


def _reason(conn: Any, message_id: int) -> str | None:
    row = conn.execute("SELECT archived_reason FROM messages WHERE id = ?", (message_id,)).fetchone()
    return None if row is None else row["archived_reason"]


def _change(row: dict[str, Any]) -> dict[str, Any]:
    old = json.loads(row["old_json"]) if row["old_json"] else None
    new = json.loads(row["new_json"]) if row["new_json"] else None
    return {"id": row["id"], "message_id": row["entity_id"], "operation": row["operation"], "old": old,
            "new": new, "note": row["note"], "created_at": row["created_at"],
            "chat_id": row.get("chat_id"), "seq": row.get("seq")}


_HISTORY = ("SELECT h.*, m.chat_id, m.seq FROM change_history h LEFT JOIN messages m ON m.id = h.entity_id"
            " WHERE h.entity_type = 'message'")


def message_history(conn: Any, message_id: int) -> list[dict[str, Any]]:
    """A message's changes, newest first."""
    store.get_message(conn, message_id)
    rows = conn.execute(f"{_HISTORY} AND h.entity_id = ? ORDER BY h.created_at DESC, h.id DESC", (message_id,))
    return [_change(r) for r in rows]


def chat_history(conn: Any, chat_id: int, *, limit: int = 500) -> list[dict[str, Any]]:
    """Changes to any message of a chat, newest first."""
    store.get_chat_row(conn, chat_id)
    rows = conn.execute(f"{_HISTORY} AND m.chat_id = ? ORDER BY h.created_at DESC, h.id DESC LIMIT ?",
                        (chat_id, max(1, min(limit, 5000))))
    return [_change(r) for r in rows]


def restore_change(conn: Any, change_id: int) -> Message:
    """Undo one recorded change: put back the text before an edit, or un-delete a deleted message."""
    row = conn.execute("SELECT * FROM change_history WHERE id = ?", (change_id,)).fetchone()
    if row is None or row["entity_type"] != ENTITY:
        raise NotFound(f"message change {change_id} does not exist (it may be older than the history kept)")
    old = json.loads(row["old_json"]) if row["old_json"] else {}
    if row["operation"] == "delete":
        return undelete_message(conn, row["entity_id"])
    if "content" not in old:
        raise InvalidInput(f"change {change_id} ({row['operation']}) has no earlier text to restore")
    with transaction(conn):
        msg = _editable(conn, row["entity_id"])
        if msg.content != old["content"]:
            record_change(conn, ENTITY, msg.id, "restore", {"content": msg.content}, {"content": old["content"]},
                          f"restored change {change_id}")
            _write_text(conn, msg, old["content"])
    return store.get_message(conn, msg.id)


def prune_history(conn: Any, days: int) -> int:
    """Drop message change history older than `days` days; never touches messages. Returns rows removed."""
    if days < 1:
        raise InvalidInput("history must be kept at least 1 day")
    cutoff = iso(utcnow() - timedelta(days=days))
    with transaction(conn):
        cur = conn.execute("DELETE FROM change_history WHERE entity_type = ? AND created_at < ?", (ENTITY, cutoff))
    return int(cur.rowcount)
