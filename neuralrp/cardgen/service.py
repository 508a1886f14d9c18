"""Card and world generation: ask the LLM for JSON, validate it (one repair retry), build drafts; save from chat."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, TypeVar

from neuralrp.cardgen import prompts
from neuralrp.cardgen.plist import normalize_plist, plist_problem
from neuralrp.chats import store
from neuralrp.chats.npcs import promote_npc
from neuralrp.context.loader import live_summaries
from neuralrp.db.connection import Connection, transaction
from neuralrp.db.history import record_change
from neuralrp.errors import BackendUnavailable, InvalidInput, NotFound
from neuralrp.library import characters as chars
from neuralrp.library import worlds
from neuralrp.library.cardfile import card_from_object
from neuralrp.library.service import Library
from neuralrp.llm.answers import AnswerError, ask_json
from neuralrp.llm.types import LLMBackend

log = logging.getLogger(__name__)
T = TypeVar("T")

NO_BACKEND = ("No LLM server is configured, and card generation needs one: set llm.base_url in config.yaml "
              "(or on the Settings page), or start NeuralRP with --model PATH.gguf")
PLIST_FIELDS = ("description", "personality")
TEXT_FIELDS = ("name", "scenario", "first_mes", "mes_example")
LIST_FIELDS = ("tags", "visual_tags")
FIELDS = (*PLIST_FIELDS, *TEXT_FIELDS[1:], *LIST_FIELDS)
CHAT_LINES = 40
MAX_WORLD_ENTRIES = 30


def require_backend(backend: LLMBackend | None) -> LLMBackend:
    """The backend, or a 503 explaining how to configure one."""
    if backend is None:
        raise BackendUnavailable(NO_BACKEND)
    return backend


def _text(obj: dict[str, Any], key: str, *, required: bool = True) -> str:
    value = obj.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise AnswerError(f"'{key}' must be a non-empty string")
    return value.strip()


def _string_list(obj: dict[str, Any], key: str) -> list[str]:
    value = obj.get(key)
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise AnswerError(f"'{key}' must be a list of strings")
    out: list[str] = []
    for item in (" ".join(v.split()) for v in value):
        if item and item not in out:
            out.append(item)
    return out


def _plist(obj: dict[str, Any], key: str) -> str:
    value = normalize_plist(_text(obj, key))
    problem = plist_problem(value)
    if problem:
        raise AnswerError(f"'{key}' is not PList ({problem}); write it like [Name: trait, trait; Likes: a, b]")
    return value


def check_field(obj: dict[str, Any], field: str) -> Any:
    """One field of an answer, validated (PList shape, string, or list of strings)."""
    if field in PLIST_FIELDS:
        return _plist(obj, field)
    if field in LIST_FIELDS:
        return _string_list(obj, field)
    return _text(obj, field, required=field != "mes_example")


def check_card_answer(obj: dict[str, Any]) -> dict[str, Any]:
    """Every card field of an answer, validated; the first problem raises AnswerError."""
    out = {"name": _text(obj, "name")}
    for field in FIELDS:
        out[field] = check_field(obj, field)
    return out


# --- asking ---------------------------------------------------------------------------------------


# --- cards ----------------------------------------------------------------------------------------


def card_visual_tags(card: dict[str, Any]) -> list[str]:
    """The card's suggested Danbooru tags (extensions.neuralrp.visual_tags, a comma-separated string)."""
    ext = card_from_object(card).data["extensions"].get("neuralrp")
    value = ext.get("visual_tags") if isinstance(ext, dict) else None
    return _string_list({"v": value}, "v") if isinstance(value, str | list) else []


def build_card(fields: dict[str, Any], base: dict[str, Any] | None = None, *, source: str | None = "description"
               ) -> dict[str, Any]:
    """A validated SillyTavern V2 card: `base` (if any) with the generated fields written over it."""
    parsed = card_from_object(base) if base is not None else card_from_object({"name": fields["name"]})
    data = parsed.data
    for key in ("name", *FIELDS[:-1]):
        if key in fields:
            data[key] = fields[key]
    extensions = dict(data["extensions"])
    ours = dict(extensions.get("neuralrp") or {}) if isinstance(extensions.get("neuralrp"), dict) else {}
    if "visual_tags" in fields:
        ours["visual_tags"] = ", ".join(fields["visual_tags"])
    if source is not None:
        ours["generated_from"] = source
    extensions["neuralrp"] = ours
    data["extensions"] = extensions
    return card_from_object(parsed.to_card("v2")).to_card("v2")


async def generate_character(backend: LLMBackend | None, description: str, name: str | None = None
                             ) -> dict[str, Any]:
    """A draft V2 card (not stored) from a plain description."""
    if not description.strip():
        raise InvalidInput("describe the character first (a few sentences)")
    messages = prompts.character_request(description, name)
    fields = await ask_json(require_backend(backend), messages, prompts.CARD_PARAMS, check_card_answer,
                            "character card")
    if name and name.strip():
        fields["name"] = name.strip()
    return build_card(fields)


async def regenerate_field(backend: LLMBackend | None, card: Any, field: str) -> dict[str, Any]:
    """The card with one field written anew (not stored); returns {"card", "field", "value"}."""
    if field not in FIELDS:
        raise InvalidInput(f"field '{field}' cannot be generated; use one of {', '.join(FIELDS)}")
    parsed = card_from_object(card)
    messages = prompts.field_request(parsed.data, card_visual_tags(card), field)
    value = await ask_json(require_backend(backend), messages, prompts.FIELD_PARAMS,
                           lambda obj: check_field(obj, field), f"'{field}' field")
    updated = build_card({field: value}, parsed.to_card("v2"), source=None)
    shown = ", ".join(value) if field == "visual_tags" else value
    return {"card": updated, "field": field, "value": shown}


# --- from a chat ----------------------------------------------------------------------------------


@dataclass
class ChatContext:
    """What a chat tells about one cast member."""

    character: chars.Character
    lines: list[str]
    summaries: list[str]


def chat_context(conn: Connection, chat_id: int, character_id: int, *, limit: int = CHAT_LINES) -> ChatContext:
    """The character's recent messages in the chat and the chat's live summaries."""
    chat_context_member(conn, chat_id, character_id)
    character = chars.get_character(conn, character_id)
    ids = store.recent_message_ids(conn, chat_id, character_id, limit)
    lines = [f"{character.name}: {store.get_message(conn, i).content.strip()}" for i in ids]
    if not lines:
        raise InvalidInput(f"{character.name} has not said anything in this chat yet, so there is nothing to "
                           "build a card from")
    return ChatContext(character, lines, [s.text for s in live_summaries(conn, chat_id)])


def _current_card_text(character: chars.Character) -> str:
    parts = [(k, character.field(k).strip()) for k in ("description", "personality")]
    return "\n".join(f"{k}: {v}" for k, v in parts if v)


async def generate_from_chat(backend: LLMBackend | None, ctx: ChatContext) -> dict[str, Any]:
    """A draft card (not stored) for a cast member, built from the chat; the stored card is its base."""
    char = ctx.character
    messages = prompts.from_chat_request(char.name, ctx.lines, ctx.summaries, _current_card_text(char))
    fields = await ask_json(require_backend(backend), messages, prompts.CARD_PARAMS, check_card_answer,
                            "character card")
    fields["name"] = char.name
    return build_card(fields, chars.as_v2(char.card), source="chat")


def save_from_chat(library: Library, chat_id: int, character_id: int, card: Any) -> chars.Character:
    """Store an edited draft for a cast member: an NPC is updated and promoted, a library character updated."""
    with library.db.session() as conn:
        chat_context_member(conn, chat_id, character_id)
        character = chars.get_character(conn, character_id)
    if character.scope_chat_id is None:
        return library.update_card(character_id, card)
    stored = chars.as_v2(card)
    tags = [t for t in stored["data"].get("tags", []) if t != "npc"]
    stored["data"]["tags"] = tags
    with library.lock, library.db.session() as conn, transaction(conn):
        old = chars.update_card(conn, character_id, stored)
        visual = card_visual_tags(stored)
        if visual:
            chars.set_visual(conn, character_id, visual_tags=", ".join(visual))
        record_change(conn, "character", character_id, "update", old, stored, "card generated from chat")
    return promote_npc(library, character_id)


def chat_context_member(conn: Connection, chat_id: int, character_id: int) -> None:
    """NotFound unless the chat exists and the character is in its cast."""
    store.get_chat(conn, chat_id)
    if store.cast_member(conn, chat_id, character_id) is None:
        raise NotFound(f"character {character_id} is not in chat {chat_id}'s cast")


# --- worlds ---------------------------------------------------------------------------------------


def world_name_taken(conn: Connection, name: str) -> bool:
    """Whether a world of this name (ignoring case) exists."""
    return any(w["name"].casefold() == name.casefold() for w in worlds.list_worlds(conn))


def _check_entry(raw: Any, index: int) -> dict[str, Any]:
    where = f"entry {index + 1}"
    if not isinstance(raw, dict):
        raise AnswerError(f"{where} must be an object")
    keys = _string_list(raw, "keys") if "keys" in raw else []
    if not keys:
        raise AnswerError(f"{where} needs 'keys', a non-empty list of trigger words")
    content = raw.get("content")
    if not isinstance(content, str) or not content.strip():
        raise AnswerError(f"{where} needs 'content', a non-empty string")
    canon = raw.get("canon_law", False)
    if not isinstance(canon, bool):
        raise AnswerError(f"{where}: 'canon_law' must be true or false")
    return {"keys": keys, "content": " ".join(content.split()), "canon_law": canon}


def check_world_answer(obj: dict[str, Any]) -> list[dict[str, Any]]:
    """The entries of a world answer, validated."""
    entries = obj.get("entries")
    if not isinstance(entries, list) or not entries:
        raise AnswerError("'entries' must be a non-empty list")
    return [_check_entry(raw, i) for i, raw in enumerate(entries[:MAX_WORLD_ENTRIES])]


async def generate_world(backend: LLMBackend | None, description: str, name: str | None = None,
                         count: int = 8) -> dict[str, Any]:
    """Draft world entries (not stored) from a short description of a setting."""
    if not description.strip():
        raise InvalidInput("describe the setting first (a few sentences)")
    if not 1 <= count <= MAX_WORLD_ENTRIES:
        raise InvalidInput(f"'count' must be between 1 and {MAX_WORLD_ENTRIES}")
    messages = prompts.world_request(description, name, count)
    entries = await ask_json(require_backend(backend), messages, prompts.WORLD_PARAMS, check_world_answer,
                             "list of lore entries")
    return {"name": (name or "").strip() or "Generated world", "entries": entries}
