"""The prompt as an ordered list of sections, each with its source and token cost.

Placement decides where a section lands in chat form: `head` sections form the first
system message (stable, so local servers reuse their KV cache), `turn` sections are the
conversation, `tail` sections (per-turn lore, capsules, reminders) are put in front of
the last user message, where they change without disturbing the cached prefix.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from neuralrp.llm.types import ChatMessage

SectionRole = Literal["system", "user", "assistant"]
Placement = Literal["head", "turn", "tail"]


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
    """A built prompt: sections in order, the budget they had to fit, and per-character decisions."""

    budget: int
    sections: list[Section]
    decisions: dict[int, dict[str, Any]] = field(default_factory=dict)
    turn: int = 0

    @property
    def total_tokens(self) -> int:
        """Sum of the sections' token counts."""
        return sum(s.tokens for s in self.sections)

    def messages(self) -> list[ChatMessage]:
        """Chat form: head as one system message, the turns, the tail block before the last user text."""
        head = [s.text for s in self.sections if s.placement == "head" and s.text]
        tail = [s.text for s in self.sections if s.placement == "tail" and s.text]
        turns = [ChatMessage(s.role, s.text) for s in self.sections if s.placement == "turn"]
        last_user = max((i for i, m in enumerate(turns) if m.role == "user"), default=None)
        if tail and last_user is not None:
            turns[last_user] = ChatMessage("user", "\n".join(tail) + "\n\n" + turns[last_user].content)
        elif tail:
            head.extend(tail)
        return ([ChatMessage("system", "\n\n".join(head))] if head else []) + turns

    def public(self) -> dict[str, Any]:
        """JSON form: {budget, total_tokens, turn, sections}."""
        return {"budget": self.budget, "total_tokens": self.total_tokens, "turn": self.turn,
                "sections": [s.public() for s in self.sections]}
