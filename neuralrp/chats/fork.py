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

from neuralrp.chats import copies, store, summaries
from neuralrp.chats.service import chat_name
from neuralrp.clock import iso
from neuralrp.db.connection import Connection, transaction
from neuralrp.errors import NotFound
from neuralrp.library.characters import copy_npcs


def fork_chat(conn: Connection, chat_id: int, message_id: int, *, title: str | None = None) -> int:
    """A new chat holding the chat up to this message; returns the new chat's id."""
    with transaction(conn):
        chat = store.get_chat(conn, chat_id)
        cut = store.get_message(conn, message_id)
        if cut.chat_id != chat_id:
            raise NotFound(f"message {message_id} is not in chat {chat_id}")
        name = (title or "").strip() or f"{chat_name(conn, chat)} (fork)"
        now = iso()
        new_id = copies.copy_chat(conn, chat_id, {
            "uid": uuid.uuid4().hex, "title": name, "turn": cut.turn, "next_seq": cut.seq + 1,
            "forked_from_chat_id": chat_id, "forked_from_message_id": message_id,
            "created_at": now, "updated_at": now, "last_activity_at": now})
        people = copies.copy_cast(conn, chat_id, new_id, copy_npcs(conn, chat_id, new_id))
        if chat.focus_character_id in people:
            store.set_focus(conn, new_id, people[chat.focus_character_id])
        copies.copy_chat_worlds(conn, chat_id, new_id)
        messages = copies.copy_messages(conn, chat_id, new_id, cut.seq, people)
        copied = summaries.copy_summaries(conn, chat_id, new_id, messages)
        copies.link_copied_messages(conn, messages, copied)
    return new_id
