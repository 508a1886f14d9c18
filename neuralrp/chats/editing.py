"""Edit, delete (archive) and restore messages, with every change kept in change history.

History rows use entity_type 'message'. An edit is operation 'update' with old/new
``{"content"}``; a delete is 'delete' and its undo 'restore' with ``{"archived",
"archived_reason"}``; restoring an older text is 'restore' with old/new ``{"content"}``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from neuralrp.chats import store
from neuralrp.chats.service import MAX_MESSAGE_CHARS
from neuralrp.chats.store import Message
from neuralrp.clock import iso, utcnow
from neuralrp.db import history
from neuralrp.db.connection import Connection, transaction
from neuralrp.db.history import Change, record_change
from neuralrp.errors import Conflict, InvalidInput, NotFound
from neuralrp.llm.tokens import LOCAL_COUNTER, estimate_tokens

ENTITY = "message"
DELETED = "deleted"


def _editable(conn: Connection, message_id: int) -> Message:
    msg = store.get_message(conn, message_id)
    if msg.status == "streaming":
        raise Conflict(f"message {message_id} is still being written; stop the reply first")
    return msg


def _write_text(conn: Connection, msg: Message, content: str) -> None:
    store.set_message_text(conn, msg.id, content)
    store.set_token_count(conn, msg.id, estimate_tokens(content), LOCAL_COUNTER)
    store.set_swipe_text(conn, msg.id, msg.swipe_index, content)


def edit_message(conn: Connection, message_id: int, content: str, *, note: str = "") -> Message:
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


def delete_message(conn: Connection, message_id: int) -> Message:
    """Soft-delete: archive the message as 'deleted' (still searchable, restorable)."""
    with transaction(conn):
        msg = _editable(conn, message_id)
        reason = msg.archived_reason
        if msg.archived:
            raise Conflict(f"message {message_id} is already archived ({reason})")
        record_change(conn, ENTITY, msg.id, "delete", {"archived": False, "archived_reason": None},
                      {"archived": True, "archived_reason": DELETED})
        store.archive_message(conn, msg.id, DELETED)
    return store.get_message(conn, message_id)


def undelete_message(conn: Connection, message_id: int) -> Message:
    """Undo a soft delete: the message is live again."""
    with transaction(conn):
        msg = _editable(conn, message_id)
        reason = msg.archived_reason
        if not msg.archived or reason != DELETED:
            raise Conflict(f"message {message_id} is not deleted" + (f" (archived: {reason})" if reason else ""))
        record_change(conn, ENTITY, msg.id, "restore", {"archived": True, "archived_reason": DELETED},
                      {"archived": False, "archived_reason": None})
        store.unarchive_message(conn, msg.id)
    return store.get_message(conn, message_id)


def _change(change: Change) -> dict[str, Any]:
    return {"id": change.id, "message_id": change.entity_id, "operation": change.operation, "old": change.old,
            "new": change.new, "note": change.note, "created_at": change.created_at,
            "chat_id": change.chat_id, "seq": change.seq}


def message_history(conn: Connection, message_id: int) -> list[dict[str, Any]]:
    """A message's changes, newest first."""
    store.get_message(conn, message_id)
    return [_change(c) for c in history.message_changes(conn, message_id)]


def chat_history(conn: Connection, chat_id: int, *, limit: int = 500) -> list[dict[str, Any]]:
    """Changes to any message of a chat, newest first."""
    store.get_chat(conn, chat_id)
    return [_change(c) for c in history.chat_message_changes(conn, chat_id, max(1, min(limit, 5000)))]


def message_change(conn: Connection, change_id: int) -> Change | None:
    """A recorded change to a message, or None (no such change, or it is not about a message)."""
    change = history.get_change(conn, change_id)
    return change if change is not None and change.entity_type == ENTITY else None


def restore_change(conn: Connection, change_id: int) -> Message:
    """Undo one recorded change: put back the text before an edit, or un-delete a deleted message."""
    change = message_change(conn, change_id)
    if change is None:
        raise NotFound(f"message change {change_id} does not exist (it may be older than the history kept)")
    old = change.old or {}
    if change.operation == "delete":
        return undelete_message(conn, change.entity_id)
    if "content" not in old:
        raise InvalidInput(f"change {change_id} ({change.operation}) has no earlier text to restore")
    with transaction(conn):
        msg = _editable(conn, change.entity_id)
        if msg.content != old["content"]:
            record_change(conn, ENTITY, msg.id, "restore", {"content": msg.content}, {"content": old["content"]},
                          f"restored change {change_id}")
            _write_text(conn, msg, old["content"])
    return store.get_message(conn, msg.id)


def prune_history(conn: Connection, days: int) -> int:
    """Drop message change history older than `days` days; never touches messages. Returns rows removed."""
    if days < 1:
        raise InvalidInput("history must be kept at least 1 day")
    cutoff = iso(utcnow() - timedelta(days=days))
    with transaction(conn):
        return history.prune_changes(conn, ENTITY, cutoff)
