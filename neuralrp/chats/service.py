"""Chat operations over the store: each public function is one transaction."""

from __future__ import annotations

import json
from typing import Any

from neuralrp.chats import store
from neuralrp.chats.store import Message
from neuralrp.context.builder import ChatState, substitute
from neuralrp.db.connection import transaction
from neuralrp.errors import Conflict, InvalidInput, NotFound
from neuralrp.library.characters import Character, get_character, insert_character
from neuralrp.llm.tokens import LOCAL_COUNTER, estimate_tokens

MAX_MESSAGE_CHARS = 100_000


def chat_public(conn: Any, chat_id: int) -> dict[str, Any]:
    """A chat with its cast, for the API."""
    row = store.get_chat_row(conn, chat_id)
    cast = [{"character_id": c["character_id"], "name": c["name"], "is_active": bool(c["is_active"])}
            for c in store.cast_rows(conn, chat_id)]
    return {"id": row["id"], "uid": row["uid"], "title": row["title"], "mode": row["mode"], "turn": row["turn"],
            "cast": cast, "created_at": row["created_at"], "last_activity_at": row["last_activity_at"]}


def create_chat(conn: Any, *, character_ids: list[int], card: dict[str, Any] | None = None,
                title: str | None = None, persona: dict[str, Any] | None = None) -> int:
    """A new chat with these characters (or a card to store first); greets with the first character's first_mes."""
    with transaction(conn):
        ids = list(character_ids)
        if card is not None:
            ids.append(insert_character(conn, card))
        if not ids:
            raise InvalidInput("a chat needs at least one character: give character_ids or a card")
        characters = [get_character(conn, cid) for cid in ids]
        chat_id = store.insert_chat(conn, title=(title or "").strip() or None, persona=persona)
        for char in characters:
            store.add_cast_member(conn, chat_id, char.id)
        _greet(conn, chat_id, characters[0], (persona or {}).get("name") or "User")
    return chat_id


def _greet(conn: Any, chat_id: int, char: Character, user: str) -> None:
    greeting = char.field("first_mes").strip()
    if greeting:
        text = substitute(greeting, char.name, user)
        store.insert_message(conn, chat_id, role="assistant", content=text, turn=0, character_id=char.id,
                             speaker_name=char.name, token_count=estimate_tokens(text), token_counter=LOCAL_COUNTER)


def post_user_message(conn: Any, chat_id: int, content: str) -> Message:
    """Save the user's message as a new turn, before any generation starts."""
    text = content.strip()
    if not text:
        raise InvalidInput("the message is empty")
    if len(text) > MAX_MESSAGE_CHARS:
        raise InvalidInput(f"the message is {len(text)} characters long; the limit is {MAX_MESSAGE_CHARS}")
    with transaction(conn):
        persona = _persona(conn, chat_id)
        turn = store.bump_turn(conn, chat_id)
        mid = store.insert_message(conn, chat_id, role="user", content=text, turn=turn,
                                   speaker_name=persona.get("name") or "User",
                                   token_count=estimate_tokens(text), token_counter=LOCAL_COUNTER)
    return store.get_message(conn, mid)


def _persona(conn: Any, chat_id: int) -> dict[str, Any]:
    persona = json.loads(store.get_chat_row(conn, chat_id)["persona_json"] or "{}")
    return persona if isinstance(persona, dict) else {}


def active_cast(conn: Any, chat_id: int) -> list[Character]:
    """The chat's active characters in cast order."""
    return [get_character(conn, r["character_id"]) for r in store.cast_rows(conn, chat_id) if r["is_active"]]


def pick_speaker(conn: Any, chat_id: int) -> Character:
    """Who replies next: the focus character, else the first active cast member."""
    row = store.get_chat_row(conn, chat_id)
    cast = active_cast(conn, chat_id)
    if not cast:
        raise Conflict("nobody in this chat's cast is active; activate a character first")
    focus = row["focus_character_id"]
    return next((c for c in cast if c.id == focus), cast[0])


def last_reply(conn: Any, chat_id: int) -> Message:
    """The newest live message, which must be an assistant reply (for regenerate/continue)."""
    recent = store.list_messages(conn, chat_id, limit=1)
    if not recent or recent[0].role != "assistant":
        raise Conflict("the last message is not a reply; send a message first")
    return recent[0]


def load_state(conn: Any, chat_id: int, speaker: Character, *, exclude_message_id: int | None = None,
               continue_message_id: int | None = None) -> ChatState:
    """Everything the prompt builder needs (a reply being continued stays in, other unfinished ones not)."""
    row = store.get_chat_row(conn, chat_id)
    history = [m for m in store.list_messages(conn, chat_id, limit=2000)
               if m.id != exclude_message_id and (m.status != "streaming" or m.id == continue_message_id)]
    return ChatState(chat_id=chat_id, turn=row["turn"], mode=row["mode"], speaker=speaker,
                     cast=active_cast(conn, chat_id), history=history, persona=_persona(conn, chat_id))


def select_swipe(conn: Any, message_id: int, index: int) -> Message:
    """Show swipe `index` of a reply."""
    with transaction(conn):
        msg = store.get_message(conn, message_id)
        alternatives = store.swipes(conn, message_id)
        chosen = next((s for s in alternatives if s["idx"] == index), None)
        if chosen is None:
            raise NotFound(f"message {message_id} has no swipe {index} (it has {len(alternatives)})")
        store.set_message_text(conn, msg.id, chosen["content"], status=chosen["status"])
        store.set_swipe_index(conn, msg.id, index)
    return store.get_message(conn, message_id)


def message_in_chat(conn: Any, chat_id: int, message_id: int) -> Message:
    """A message, checked to belong to the chat."""
    msg = store.get_message(conn, message_id)
    if msg.chat_id != chat_id:
        raise NotFound(f"message {message_id} is not in chat {chat_id}")
    return msg
