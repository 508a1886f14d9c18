"""Chat operations over the store: each public function is one transaction."""

from __future__ import annotations

import contextlib
from typing import Any

from neuralrp.chats import store, worldlinks
from neuralrp.chats.personas import persona_for_new_chat
from neuralrp.chats.presence import fold, mark_present, mentions, name_forms
from neuralrp.chats.records import Chat
from neuralrp.chats.store import Message
from neuralrp.clock import iso
from neuralrp.db.connection import Connection, transaction
from neuralrp.errors import Conflict, InvalidInput, NotFound
from neuralrp.library.characters import Character, get_character, insert_character
from neuralrp.library.macros import substitute
from neuralrp.library.worlds import get_world
from neuralrp.llm.tokens import LOCAL_COUNTER, estimate_tokens

MAX_MESSAGE_CHARS = 100_000


def chat_public(conn: Connection, chat_id: int) -> dict[str, Any]:
    """A chat with its cast, for the API."""
    chat = store.get_chat(conn, chat_id)
    cast = [{"character_id": c.character_id, "name": c.name, "is_active": c.is_active, "is_npc": c.is_npc,
             "has_avatar": c.has_avatar, "avatar_url": c.avatar_url} for c in store.cast_members(conn, chat_id)]
    return {"id": chat.id, "uid": chat.uid, "title": chat.title, "mode": chat.mode, "turn": chat.turn,
            "focus_character_id": chat.focus_character_id, "cast": cast, "created_at": chat.created_at,
            "last_activity_at": chat.last_activity_at, "persona": {**chat.persona, "name": chat.user_name},
            "world_ids": worldlinks.chat_world_choice(conn, chat_id), "deleted_at": chat.deleted_at}


def chat_name(conn: Connection, chat: Chat) -> str:
    """The name the UI shows for a chat: its title, else its cast's names, else "Chat N"."""
    if chat.title and chat.title.strip():
        return chat.title.strip()
    names = ", ".join(m.name for m in store.cast_members(conn, chat.id))
    return names or f"Chat {chat.id}"


def create_chat(conn: Connection, *, character_ids: list[int], card: dict[str, Any] | None = None,
                title: str | None = None, persona: dict[str, Any] | None = None, persona_id: int | None = None,
                world_ids: list[int] | tuple[int, ...] = (), greetings: str = "all") -> int:
    """A new chat with these characters (or a card to store first), its persona (else the default one) and its
    own worlds; greets with every member's first_mes in cast order (greetings="first": only the first's)."""
    with transaction(conn):
        ids = list(dict.fromkeys(character_ids))
        if card is not None:
            ids.append(insert_character(conn, card))
        if not ids:
            raise InvalidInput("a chat needs at least one character: give character_ids or a card")
        characters = [get_character(conn, cid) for cid in ids]
        mode = "focus" if len(characters) == 1 else "auto"
        playing = persona_for_new_chat(conn, persona_id, persona)
        chat_id = store.insert_chat(conn, title=(title or "").strip() or None, mode=mode, persona=playing)
        store.set_focus(conn, chat_id, characters[0].id)
        for char in characters:
            store.add_cast_member(conn, chat_id, char.id)
        set_chat_worlds(conn, chat_id, list(world_ids), own_transaction=False)
        for char in characters if greetings == "all" else characters[:1]:
            _greet(conn, chat_id, char, playing.get("name") or "User")
    return chat_id


def set_chat_worlds(conn: Connection, chat_id: int, world_ids: list[int], *, own_transaction: bool = True) -> None:
    """Make the chat's own worlds exactly these; an unknown world changes nothing and is named."""
    with transaction(conn) if own_transaction else contextlib.nullcontext():
        store.get_chat(conn, chat_id)
        for wid in dict.fromkeys(world_ids):
            get_world(conn, wid)
        worldlinks.set_chat_worlds(conn, chat_id, list(dict.fromkeys(world_ids)))


def delete_chat(conn: Connection, chat_id: int) -> None:
    """Delete a chat softly: it leaves the lists, and can be restored until retention purges it."""
    with transaction(conn):
        chat = store.get_chat(conn, chat_id)
        if chat.deleted_at is None:
            store.set_deleted(conn, chat_id, iso())


def restore_chat(conn: Connection, chat_id: int) -> None:
    """Bring a deleted chat back."""
    with transaction(conn):
        store.get_chat(conn, chat_id)
        store.set_deleted(conn, chat_id, None)


def delete_chats_of(conn: Connection, character_id: int) -> int:
    """Delete (restorably) every live chat the character is in; returns how many. The caller owns the
    transaction (a character's delete)."""
    chat_ids = store.chats_of_character(conn, character_id)
    now = iso()
    for chat_id in chat_ids:
        store.set_deleted(conn, chat_id, now)
    return len(chat_ids)


def ensure_live(conn: Connection, chat_id: int) -> None:
    """Conflict when the chat is deleted (it must be restored before anything is written to it)."""
    if store.get_chat(conn, chat_id).deleted_at is not None:
        raise Conflict(f"chat {chat_id} is deleted; restore it first")


def _greet(conn: Connection, chat_id: int, char: Character, user: str) -> None:
    greeting = char.field("first_mes").strip()
    if greeting:
        text = substitute(greeting, char.name, user)
        store.insert_message(conn, chat_id, role="assistant", content=text, turn=0, character_id=char.id,
                             speaker_name=char.name, token_count=estimate_tokens(text), token_counter=LOCAL_COUNTER)


def post_user_message(conn: Connection, chat_id: int, content: str, *, absence_turns: int = 20) -> Message:
    """Save the user's message as a new turn (and who it addresses), before any generation starts."""
    text = content.strip()
    if not text:
        raise InvalidInput("the message is empty")
    if len(text) > MAX_MESSAGE_CHARS:
        raise InvalidInput(f"the message is {len(text)} characters long; the limit is {MAX_MESSAGE_CHARS}")
    with transaction(conn):
        user = store.get_chat(conn, chat_id).user_name
        turn = store.bump_turn(conn, chat_id)
        mid = store.insert_message(conn, chat_id, role="user", content=text, turn=turn, speaker_name=user,
                                   token_count=estimate_tokens(text), token_counter=LOCAL_COUNTER)
        mark_present(conn, chat_id, turn, text, absence_turns=absence_turns)
    return store.get_message(conn, mid)


def active_cast(conn: Connection, chat_id: int) -> list[Character]:
    """The chat's active characters in cast order."""
    return [get_character(conn, m.character_id) for m in store.cast_members(conn, chat_id) if m.is_active]


def pick_speaker(conn: Connection, chat_id: int, speaker_id: int | None = None) -> Character | None:
    """Who replies next: the character asked for ("speak next"), else nobody in Narrator mode (the narrator),
    the focus character, or Auto's choice."""
    chat = store.get_chat(conn, chat_id)
    cast = active_cast(conn, chat_id)
    if not cast:
        raise Conflict("nobody in this chat's cast is active; activate a character first")
    if speaker_id is not None:
        chosen = next((c for c in cast if c.id == speaker_id), None)
        if chosen is None:
            raise InvalidInput(f"character {speaker_id} is not an active member of this chat's cast")
        return chosen
    if chat.mode == "narrator":
        return None
    if chat.mode == "focus":
        return next((c for c in cast if c.id == chat.focus_character_id), cast[0])
    return auto_speaker(conn, chat_id, cast)


def auto_speaker(conn: Connection, chat_id: int, cast: list[Character]) -> Character:
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


def addressed(cast: list[Character], text: str) -> list[Character]:
    """The cast members a message names, in the order it first names them."""
    named = [c for c in cast if mentions(text, c.name)]
    return sorted(named, key=lambda c: _first_mention(text, c.name))


def next_addressed(conn: Connection, chat_id: int, limit: int) -> Character | None:
    """Auto mode, after a reply: the next character the newest user message named who has not answered it yet,
    while fewer than `limit` characters have (None: the turn is over)."""
    if store.get_chat(conn, chat_id).mode != "auto":
        return None
    recent = store.list_messages(conn, chat_id, limit=4 * limit + 8)
    last_user = next((i for i in range(len(recent) - 1, -1, -1) if recent[i].role == "user"), None)
    if last_user is None:
        return None
    answered = {m.character_id for m in recent[last_user + 1:] if m.role == "assistant"}
    if len(answered) >= limit:
        return None
    waiting = [c for c in addressed(active_cast(conn, chat_id), recent[last_user].content) if c.id not in answered]
    return waiting[0] if waiting else None


def _first_mention(text: str, name: str) -> int:
    folded = fold(text)
    spots = [folded.find(form) for form in name_forms(name) if folded.find(form) >= 0]
    return min(spots) if spots else len(folded)


def last_reply(conn: Connection, chat_id: int) -> Message:
    """The newest live message, which must be an assistant reply (for regenerate/continue)."""
    recent = store.list_messages(conn, chat_id, limit=1)
    if not recent or recent[0].role != "assistant":
        raise Conflict("the last message is not a reply; send a message first")
    return recent[0]


def select_swipe(conn: Connection, message_id: int, index: int) -> Message:
    """Show swipe `index` of a reply."""
    with transaction(conn):
        msg = store.get_message(conn, message_id)
        alternatives = store.swipes(conn, message_id)
        chosen = next((s for s in alternatives if s.idx == index), None)
        if chosen is None:
            raise NotFound(f"message {message_id} has no swipe {index} (it has {len(alternatives)})")
        store.set_message_text(conn, msg.id, chosen.content, status=chosen.status)
        store.set_swipe_index(conn, msg.id, index)
    return store.get_message(conn, message_id)


def message_in_chat(conn: Connection, chat_id: int, message_id: int) -> Message:
    """A message, checked to belong to the chat."""
    msg = store.get_message(conn, message_id)
    if msg.chat_id != chat_id:
        raise NotFound(f"message {message_id} is not in chat {chat_id}")
    return msg


def update_chat(conn: Connection, chat_id: int, changes: dict[str, Any]) -> None:
    """Apply title / mode / focus changes; focus must be an active cast member."""
    with transaction(conn):
        store.get_chat(conn, chat_id)
        if "title" in changes:
            store.set_title(conn, chat_id, (changes["title"] or "").strip() or None)
        if changes.get("focus_character_id") is not None:
            if changes["focus_character_id"] not in {c.id for c in active_cast(conn, chat_id)}:
                raise InvalidInput("the focus character must be an active member of the cast")
            store.set_focus(conn, chat_id, changes["focus_character_id"])
        if changes.get("mode"):
            store.set_mode(conn, chat_id, changes["mode"])


def set_cast_member(conn: Connection, chat_id: int, character_id: int, *, active: bool) -> None:
    """Add a character to the cast or toggle them; leaving records the turn for a scene reminder."""
    with transaction(conn):
        turn = store.get_chat(conn, chat_id).turn
        get_character(conn, character_id)
        before = store.cast_member(conn, chat_id, character_id)
        store.add_cast_member(conn, chat_id, character_id, active=active)
        store.set_left_turn(conn, chat_id, character_id, None if active else turn)
        if active and before is not None and not before.is_active:
            # coming back on stage is a reset point: the builder gives the full card again
            store.clear_reset_turn(conn, chat_id, character_id)
