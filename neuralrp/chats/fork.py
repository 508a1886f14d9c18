"""Save As / fork: copy a chat up to (and including) one message into a new chat.

The fork gets the same cast (active flags and presence bookkeeping), persona, mode, focus
and worlds; every message up to the chosen one (archived ones too) with its swipes, keeping
seq and turn numbers; and the summaries whose whole range lies inside the copy. Messages or
summaries folded into a summary that was not copied are unfolded, so nothing is lost from
the fork's prompt. NPCs (scoped to the old chat) are copied as NPCs of the fork. Images and
embeddings are not copied. The original chat is not changed.
"""

from __future__ import annotations

import uuid
from typing import Any

from neuralrp.chats import store
from neuralrp.clock import iso
from neuralrp.db.connection import transaction
from neuralrp.errors import NotFound


def _columns(conn: Any, table: str) -> list[str]:
    return [r["name"] for r in conn.execute(f"PRAGMA table_info({table})")]


def _copy(conn: Any, table: str, row: dict[str, Any], changes: dict[str, Any]) -> int:
    """Insert a copy of a row (a new id) with some columns changed; returns the new id."""
    cols = [c for c in _columns(conn, table) if c != "id"]
    values = [changes.get(c, row.get(c)) for c in cols]
    marks = ", ".join("?" for _ in cols)
    cur = conn.execute(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({marks})", values)
    return int(cur.lastrowid)


def fork_chat(conn: Any, chat_id: int, message_id: int, *, title: str | None = None) -> int:
    """A new chat holding the chat up to this message; returns the new chat's id."""
    with transaction(conn):
        chat = store.get_chat_row(conn, chat_id)
        cut = store.get_message(conn, message_id)
        if cut.chat_id != chat_id:
            raise NotFound(f"message {message_id} is not in chat {chat_id}")
        name = (title or "").strip() or f"{chat['title'] or 'Unnamed chat'} (fork)"
        now = iso()
        new_id = _copy(conn, "chats", chat, {
            "uid": uuid.uuid4().hex, "title": name, "turn": cut.turn, "next_seq": cut.seq + 1,
            "forked_from_chat_id": chat_id, "forked_from_message_id": message_id,
            "created_at": now, "updated_at": now, "last_activity_at": now})
        people = _copy_cast(conn, chat_id, new_id)
        if chat["focus_character_id"] in people:
            conn.execute("UPDATE chats SET focus_character_id = ? WHERE id = ?",
                         (people[chat["focus_character_id"]], new_id))
        conn.execute("INSERT INTO chat_worlds (chat_id, world_id) SELECT ?, world_id FROM chat_worlds"
                     " WHERE chat_id = ?", (new_id, chat_id))
        messages = _copy_messages(conn, chat_id, new_id, cut.seq, people)
        _copy_summaries(conn, chat_id, new_id, messages)
    return new_id


def _copy_cast(conn: Any, chat_id: int, new_id: int) -> dict[int, int]:
    """Copy the cast (NPCs become the fork's own NPCs); returns old -> new character ids."""
    people: dict[int, int] = {}
    npcs = conn.execute("SELECT * FROM characters WHERE scope_chat_id = ? ORDER BY id", (chat_id,)).fetchall()
    for npc in npcs:
        people[npc["id"]] = _copy(conn, "characters", npc, {"uid": uuid.uuid4().hex, "scope_chat_id": new_id,
                                                            "source_file": None, "source_mtime": None})
    for row in conn.execute("SELECT * FROM chat_cast WHERE chat_id = ? ORDER BY position, id", (chat_id,)).fetchall():
        character = people.get(row["character_id"], row["character_id"])
        people.setdefault(row["character_id"], character)
        _copy(conn, "chat_cast", row, {"chat_id": new_id, "character_id": character})
    return people


def _copy_messages(conn: Any, chat_id: int, new_id: int, last_seq: int, people: dict[int, int]) -> dict[int, int]:
    """Copy messages with seq <= last_seq and their swipes; returns old -> new message ids."""
    ids: dict[int, int] = {}
    rows = conn.execute("SELECT * FROM messages WHERE chat_id = ? AND seq <= ? ORDER BY seq",
                        (chat_id, last_seq)).fetchall()
    for row in rows:
        character = people.get(row["character_id"], row["character_id"])
        ids[row["id"]] = _copy(conn, "messages", row, {"chat_id": new_id, "character_id": character,
                                                        "summary_id": None})
        for swipe in conn.execute("SELECT * FROM message_swipes WHERE message_id = ?", (row["id"],)).fetchall():
            _copy(conn, "message_swipes", swipe, {"message_id": ids[row["id"]]})
    return ids


def _copy_summaries(conn: Any, chat_id: int, new_id: int, messages: dict[int, int]) -> None:
    """Copy summaries wholly inside the copied messages; unfold what a missing summary covered."""
    rows = conn.execute("SELECT * FROM summaries WHERE chat_id = ? ORDER BY level, id", (chat_id,)).fetchall()
    kept = [r for r in rows if r["first_message_id"] in messages and r["last_message_id"] in messages]
    ids: dict[int, int] = {}
    for row in kept:
        ids[row["id"]] = _copy(conn, "summaries", row, {
            "chat_id": new_id, "first_message_id": messages[row["first_message_id"]],
            "last_message_id": messages[row["last_message_id"]], "parent_id": None})
    for row in kept:
        if row["parent_id"] in ids:
            conn.execute("UPDATE summaries SET parent_id = ? WHERE id = ?", (ids[row["parent_id"]], ids[row["id"]]))
        elif row["parent_id"] is not None:
            conn.execute("UPDATE summaries SET archived = 0 WHERE id = ?", (ids[row["id"]],))
    for old, new in messages.items():
        source = conn.execute("SELECT summary_id, archived_reason FROM messages WHERE id = ?", (old,)).fetchone()
        if source["summary_id"] in ids:
            conn.execute("UPDATE messages SET summary_id = ? WHERE id = ?", (ids[source["summary_id"]], new))
        elif source["summary_id"] is not None and source["archived_reason"] == "summarized":
            conn.execute("UPDATE messages SET archived = 0, archived_reason = NULL WHERE id = ?", (new,))
