"""The chat store's row types: chats, cast members, messages and swipes (plain dataclasses; no SQL here)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import quote


def _object(text: str | None) -> dict[str, Any]:
    value = json.loads(text or "{}")
    return value if isinstance(value, dict) else {}


@dataclass
class Chat:
    """One stored chat (persona and settings decoded)."""

    id: int
    uid: str
    title: str | None
    mode: str
    turn: int
    focus_character_id: int | None
    persona: dict[str, Any]
    settings: dict[str, Any]
    created_at: str
    updated_at: str
    last_activity_at: str
    deleted_at: str | None = None  # set while the chat is deleted (restorable until retention purges it)

    @property
    def user_name(self) -> str:
        """The persona's name, 'User' when none is set."""
        return self.persona.get("name") or "User"


def chat_from_row(row: dict[str, Any]) -> Chat:
    """A Chat from a `chats` row."""
    return Chat(
        id=row["id"], uid=row["uid"], title=row["title"], mode=row["mode"], turn=row["turn"],
        focus_character_id=row["focus_character_id"], persona=_object(row["persona_json"]),
        settings=_object(row["settings_json"]), created_at=row["created_at"],
        updated_at=row["updated_at"], last_activity_at=row["last_activity_at"],
        deleted_at=row.get("deleted_at"))


@dataclass
class ChatListing:
    """A chat as the chat list shows it."""

    id: int
    title: str | None
    mode: str
    turn: int
    message_count: int
    cast_names: str
    last_activity_at: str
    created_at: str = ""
    avatar: dict[str, Any] | None = None  # the first cast member's {character_id, has_avatar, avatar_url}
    deleted_at: str | None = None

    def public(self) -> dict[str, Any]:
        """JSON form for the API."""
        return asdict(self)


@dataclass
class CastMember:
    """A character in a chat's cast, with the presence bookkeeping the prompt builder keeps."""

    character_id: int
    name: str
    is_active: bool
    is_npc: bool
    first_turn: int | None = None
    reset_turn: int | None = None
    last_present_turn: int | None = None
    left_turn: int | None = None
    has_avatar: bool = False
    avatar_version: str = ""

    @property
    def avatar_url(self) -> str:
        """Where the UI loads this member's picture (the version changes when the card or its art does)."""
        return avatar_url(self.character_id, self.avatar_version)


def avatar_url(character_id: int, version: str = "") -> str:
    """The avatar address of a character, with a cache-busting version when known."""
    base = f"/api/characters/{character_id}/avatar"
    return f"{base}?v={quote(version)}" if version else base


def cast_member_from_row(row: dict[str, Any]) -> CastMember:
    """A CastMember from a `chat_cast` row joined with its character's name and scope_chat_id."""
    return CastMember(
        character_id=row["character_id"], name=row["name"], is_active=bool(row["is_active"]),
        is_npc=row["scope_chat_id"] is not None, first_turn=row["first_turn"], reset_turn=row["reset_turn"],
        last_present_turn=row["last_present_turn"], left_turn=row["left_turn"],
        has_avatar=bool(row["avatar_path"]), avatar_version=row["char_updated_at"] or "")


@dataclass
class Message:
    """One stored chat message."""

    id: int
    chat_id: int
    seq: int
    turn: int
    role: str
    character_id: int | None
    speaker_name: str
    content: str
    status: str
    swipe_index: int = 0
    archived: bool = False
    token_count: int | None = None
    token_counter: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    created_at: str = ""
    updated_at: str = ""
    swipe_count: int = 0
    archived_reason: str | None = None

    def public(self) -> dict[str, Any]:
        """JSON form for the API."""
        return {
            "id": self.id, "chat_id": self.chat_id, "seq": self.seq, "turn": self.turn, "role": self.role,
            "character_id": self.character_id, "speaker_name": self.speaker_name, "content": self.content,
            "status": self.status, "swipe_index": self.swipe_index, "swipe_count": self.swipe_count,
            "archived": self.archived, "created_at": self.created_at, "updated_at": self.updated_at,
        }


def message_from_row(row: dict[str, Any]) -> Message:
    """A Message from a `messages` row (MESSAGE_COLUMNS, optionally with swipe_count)."""
    return Message(
        id=row["id"], chat_id=row["chat_id"], seq=row["seq"], turn=row["turn"], role=row["role"],
        character_id=row["character_id"], speaker_name=row["speaker_name"], content=row["content"],
        status=row["status"], swipe_index=row["swipe_index"], archived=bool(row["archived"]),
        token_count=row["token_count"], token_counter=row["token_counter"],
        extra=json.loads(row["extra_json"] or "{}"), created_at=row["created_at"], updated_at=row["updated_at"],
        swipe_count=row.get("swipe_count", 0) or 0, archived_reason=row["archived_reason"],
    )


@dataclass
class Swipe:
    """One alternative reply of a message."""

    idx: int
    content: str
    status: str
    created_at: str

    def public(self) -> dict[str, Any]:
        """JSON form for the API."""
        return asdict(self)
