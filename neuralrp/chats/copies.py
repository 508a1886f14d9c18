"""SQL that copies a chat's rows into a fork (chats/fork.py): the chat row, cast, worlds, messages with their
swipes, and the links of copied messages to copied summaries. Callers own transactions."""

from __future__ import annotations

from typing import Any

from neuralrp.db.connection import Connection
from neuralrp.db.rows import copy_row
from neuralrp.errors import NotFound


def copy_chat(conn: Connection, chat_id: int, changes: dict[str, Any]) -> int:
    """A copy of the chat's row with some columns changed; returns the new chat's id."""
    row = conn.execute("SELECT * FROM chats WHERE id = ?", (chat_id,)).fetchone()
    if row is None:
        raise NotFound(f"chat {chat_id} does not exist")
    return copy_row(conn, "chats", row, changes)


def copy_cast(conn: Connection, chat_id: int, new_id: int, people: dict[int, int]) -> dict[int, int]:
    """Copy the cast into another chat, characters mapped through `people`; returns old -> new for all of them."""
    people = dict(people)
    for row in conn.execute("SELECT * FROM chat_cast WHERE chat_id = ? ORDER BY position, id", (chat_id,)).fetchall():
        character = people.get(row["character_id"], row["character_id"])
        people.setdefault(row["character_id"], character)
        copy_row(conn, "chat_cast", row, {"chat_id": new_id, "character_id": character})
    return people


def copy_chat_worlds(conn: Connection, chat_id: int, new_id: int) -> None:
    """Give another chat the same chosen worlds."""
    conn.execute("INSERT INTO chat_worlds (chat_id, world_id) SELECT ?, world_id FROM chat_worlds WHERE chat_id = ?",
                 (new_id, chat_id))


def copy_messages(conn: Connection, chat_id: int, new_id: int, last_seq: int,
                  people: dict[int, int]) -> dict[int, int]:
    """Copy messages with seq <= last_seq and their swipes (not linked to summaries); returns old -> new ids."""
    ids: dict[int, int] = {}
    rows = conn.execute("SELECT * FROM messages WHERE chat_id = ? AND seq <= ? ORDER BY seq",
                        (chat_id, last_seq)).fetchall()
    for row in rows:
        character = people.get(row["character_id"], row["character_id"])
        ids[row["id"]] = copy_row(conn, "messages", row, {"chat_id": new_id, "character_id": character,
                                                           "summary_id": None})
        for swipe in conn.execute("SELECT * FROM message_swipes WHERE message_id = ?", (row["id"],)).fetchall():
            copy_row(conn, "message_swipes", swipe, {"message_id": ids[row["id"]]})
    return ids


def link_copied_messages(conn: Connection, messages: dict[int, int], summaries: dict[int, int]) -> None:
    """Copied messages point at their summary's copy; ones folded into a summary not copied are live again."""
    for old, new in messages.items():
        source = conn.execute("SELECT summary_id, archived_reason FROM messages WHERE id = ?", (old,)).fetchone()
        if source["summary_id"] in summaries:
            conn.execute("UPDATE messages SET summary_id = ? WHERE id = ?", (summaries[source["summary_id"]], new))
        elif source["summary_id"] is not None and source["archived_reason"] == "summarized":
            conn.execute("UPDATE messages SET archived = 0, archived_reason = NULL WHERE id = ?", (new,))
