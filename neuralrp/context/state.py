"""Everything the prompt builder reads, as plain data (loaded from the DB beforehand)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from neuralrp.chats.store import Message
from neuralrp.context.layout import Layout
from neuralrp.library.characters import Character
from neuralrp.retrieval.types import LoreEntry, LoreHit

STICKY_TURNS = 3  # a reset point and the 2 turns after it get the full card


@dataclass
class CastState:
    """One cast member and their scene bookkeeping."""

    character: Character
    active: bool = True
    first_turn: int | None = None
    reset_turn: int | None = None
    last_present_turn: int | None = None
    left_turn: int | None = None

    @property
    def id(self) -> int:
        """The character's id."""
        return self.character.id


@dataclass(frozen=True)
class Note:
    """Material attached to a turn (lore that fired, a reminder), shown before that turn's user message."""

    kind: str
    text: str
    source: dict[str, Any] = field(default_factory=dict)


@dataclass
class SummaryItem:
    """A live scene summary and the messages it replaced."""

    id: int
    text: str
    start_turn: int
    end_turn: int
    first_message_id: int
    last_message_id: int


@dataclass
class Limits:
    """The settings the builder applies."""

    absence_turns: int = 20
    canon_law_every: int = 3
    lore_token_budget: int = 800


@dataclass
class ChatState:
    """A chat at the moment a reply is about to be written."""

    chat_id: int
    turn: int
    mode: str
    speaker: Character | None
    cast: list[CastState]
    history: list[Message]
    persona: dict[str, Any] = field(default_factory=dict)
    summaries: list[SummaryItem] = field(default_factory=list)
    lore: list[LoreHit] = field(default_factory=list)
    canon_law: list[LoreEntry] = field(default_factory=list)
    limits: Limits = field(default_factory=Limits)
    system_prompt: str = ""
    notes: dict[int, list[Note]] = field(default_factory=dict)
    continuing: bool = False  # the reply being written is a Continue of the last message
    layout: Layout | None = None  # the last reply's prompt (context/layout.py)

    @property
    def user_name(self) -> str:
        """The persona's name, 'User' by default."""
        name = self.persona.get("name")
        return name if isinstance(name, str) and name.strip() else "User"

    @property
    def active_cast(self) -> list[CastState]:
        """Active cast members in cast order."""
        return [c for c in self.cast if c.active]
