"""The prompt as an ordered list of sections, each with its source and token cost.

`head` sections form the first system message. `turn` sections are the conversation:
history messages, and the notes (lore, reminders) attached to a turn, which are put in
front of the user message that follows them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from neuralrp.llm.types import ChatMessage

SectionRole = Literal["system", "user", "assistant"]
Placement = Literal["head", "turn"]


@dataclass
class Section:
    """One piece of the prompt: what it is, where it came from, what it costs."""

    kind: str
    text: str
    tokens: int
    role: SectionRole = "system"
    source: dict[str, Any] = field(default_factory=dict)
    placement: Placement = "head"

    def public(self) -> dict[str, Any]:
        """JSON form for the prompt inspector."""
        return {"kind": self.kind, "role": self.role, "placement": self.placement, "source": self.source,
                "tokens": self.tokens, "text": self.text}


@dataclass
class Prompt:
    """A built prompt: sections in order, the budget, per-character decisions and this turn's notes."""

    budget: int
    sections: list[Section]
    decisions: dict[int, dict[str, Any]] = field(default_factory=dict)
    turn: int = 0
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def total_tokens(self) -> int:
        """Sum of the sections' token counts."""
        return sum(s.tokens for s in self.sections)

    def messages(self) -> list[ChatMessage]:
        """Chat form: head as one system message; notes go in front of the user message they precede."""
        head = [s.text for s in self.sections if s.placement == "head" and s.text]
        turns: list[ChatMessage] = []
        pending: list[str] = []
        for s in self.sections:
            if s.placement != "turn":
                continue
            if s.kind != "history":
                pending.append(s.text)
            elif s.role == "user" and pending:
                turns.append(ChatMessage("user", "\n".join(pending) + "\n\n" + s.text))
                pending = []
            else:
                turns.append(ChatMessage(s.role, s.text))
        head.extend(pending)  # notes with no user message after them (a chat with no user turn yet)
        return ([ChatMessage("system", "\n\n".join(head))] if head else []) + turns

    def public(self) -> dict[str, Any]:
        """JSON form: {budget, total_tokens, turn, sections}."""
        return {"budget": self.budget, "total_tokens": self.total_tokens, "turn": self.turn,
                "sections": [s.public() for s in self.sections]}
