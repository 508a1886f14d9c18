"""Chat operations over the store: each public function is one transaction."""

from __future__ import annotations

import json
from typing import Any

from neuralrp.chats import store
from neuralrp.chats.presence import fold, mark_present, mentions, name_forms
from neuralrp.chats.store import Message
from neuralrp.context.text import substitute
from neuralrp.db.connection import transaction
from neuralrp.errors import Conflict, InvalidInput, NotFound
from neuralrp.library.characters import Character, get_character, insert_character
from neuralrp.llm.tokens import LOCAL_COUNTER, estimate_tokens

MAX_MESSAGE_CHARS = 100_000


def chat_public(conn: Any, chat_id: int) -> dict[str, Any]:
    """A chat with its cast, for the API."""
    row = store.get_chat_row(conn, chat_id)
    cast = [{"character_id": c["character_id"], "name": c["name"], "is_active": bool(c["is_active"]),
             "is_npc": c["scope_chat_id"] is not None} for c in store.cast_rows(conn, chat_id)]
    return {"id": row["id"], "uid": row["uid"], "title": row["title"], "mode": row["mode"], "turn": row["turn"],
            "focus_character_id": row["focus_character_id"], "cast": cast, "created_at": row["created_at"],
            "last_activity_at": row["last_activity_at"]}


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
        mode = "focus" if len(characters) == 1 else "auto"
        chat_id = store.insert_chat(conn, title=(title or "").strip() or None, mode=mode, persona=persona)
        conn.execute("UPDATE chats SET focus_character_id = ? WHERE id = ?", (characters[0].id, chat_id))
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


def post_user_message(conn: Any, chat_id: int, content: str, *, absence_turns: int = 20) -> Message:
    """Save the user's message as a new turn (and who it addresses), before any generation starts."""
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
        mark_present(conn, chat_id, turn, text, absence_turns=absence_turns)
    return store.get_message(conn, mid)


def _persona(conn: Any, chat_id: int) -> dict[str, Any]:
    persona = json.loads(store.get_chat_row(conn, chat_id)["persona_json"] or "{}")
    return persona if isinstance(persona, dict) else {}


def active_cast(conn: Any, chat_id: int) -> list[Character]:
    """The chat's active characters in cast order."""
    return [get_character(conn, r["character_id"]) for r in store.cast_rows(conn, chat_id) if r["is_active"]]


def pick_speaker(conn: Any, chat_id: int) -> Character | None:
    """Who replies next: nobody in Narrator mode (the narrator), the focus character, or Auto's choice."""
    row = store.get_chat_row(conn, chat_id)
    cast = active_cast(conn, chat_id)
    if not cast:
        raise Conflict("nobody in this chat's cast is active; activate a character first")
    if row["mode"] == "narrator":
        return None
    if row["mode"] == "focus":
        return next((c for c in cast if c.id == row["focus_character_id"]), cast[0])
    return auto_speaker(conn, chat_id, cast)


def auto_speaker(conn: Any, chat_id: int, cast: list[Character]) -> Character:
    """Auto mode: the character the user addressed, else the most recently active, else the most talkative."""
    recent = store.list_messages(conn, chat_id, limit=12)
    last_user = next((m for m in reversed(recent) if m.role == "user"), None)
    if last_user is not None:
        named = [c for c in cast if mentions(last_user.content, c.name)]
        if named:
            return min(named, key=lambda c: _first_mention(last_user.content, c.name))
    last_speaker = next((m.character_id for m in reversed(recent) if m.role == "assistant"), None)
    for msg in reversed(recent):
        if msg.role == "assistant" and msg.character_id not in (None, last_speaker):
            match = next((c for c in cast if c.id == msg.character_id), None)
            if match is not None:
                return match
    return max(cast, key=lambda c: (c.talkativeness, -c.id))


def _first_mention(text: str, name: str) -> int:
    folded = fold(text)
    spots = [folded.find(form) for form in name_forms(name) if folded.find(form) >= 0]
    return min(spots) if spots else len(folded)


def last_reply(conn: Any, chat_id: int) -> Message:
    """The newest live message, which must be an assistant reply (for regenerate/continue)."""
    recent = store.list_messages(conn, chat_id, limit=1)
    if not recent or recent[0].role != "assistant":
        raise Conflict("the last message is not a reply; send a message first")
    return recent[0]


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


def update_chat(conn: Any, chat_id: int, changes: dict[str, Any]) -> None:
    """Apply title / mode / focus changes; focus must be an active cast member."""
    with transaction(conn):
        store.get_chat_row(conn, chat_id)
        if "title" in changes:
            title = (changes["title"] or "").strip() or None
            conn.execute("UPDATE chats SET title = ? WHERE id = ?", (title, chat_id))
        if changes.get("focus_character_id") is not None:
            if changes["focus_character_id"] not in {c.id for c in active_cast(conn, chat_id)}:
                raise InvalidInput("the focus character must be an active member of the cast")
            conn.execute("UPDATE chats SET focus_character_id = ? WHERE id = ?",
                         (changes["focus_character_id"], chat_id))
        if changes.get("mode"):
            conn.execute("UPDATE chats SET mode = ? WHERE id = ?", (changes["mode"], chat_id))


def set_cast_member(conn: Any, chat_id: int, character_id: int, *, active: bool) -> None:
    """Add a character to the cast or toggle them; leaving records the turn for a scene reminder."""
    with transaction(conn):
        turn = store.get_chat_row(conn, chat_id)["turn"]
        get_character(conn, character_id)
        before = conn.execute("SELECT is_active FROM chat_cast WHERE chat_id = ? AND character_id = ?",
                              (chat_id, character_id)).fetchone()
        store.add_cast_member(conn, chat_id, character_id, active=active)
        conn.execute("UPDATE chat_cast SET left_turn = ? WHERE chat_id = ? AND character_id = ?",
                     (None if active else turn, chat_id, character_id))
        if active and before is not None and not before["is_active"]:
            # coming back on stage is a reset point: the builder gives the full card again
            conn.execute("UPDATE chat_cast SET reset_turn = NULL WHERE chat_id = ? AND character_id = ?",
                         (chat_id, character_id))
