"""The prompt as an ordered list of sections, each with its source and token cost."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from neuralrp.llm.types import ChatMessage

SectionRole = Literal["system", "user", "assistant"]


@dataclass
class Section:
    """One piece of the prompt: what it is, where it came from, what it costs."""

    kind: str
    text: str
    tokens: int
    role: SectionRole = "system"
    source: dict[str, Any] = field(default_factory=dict)

    def public(self) -> dict[str, Any]:
        """JSON form for the prompt inspector."""
        return {"kind": self.kind, "role": self.role, "source": self.source, "tokens": self.tokens, "text": self.text}


@dataclass
class Prompt:
    """A built prompt: the sections in order plus the budget they had to fit."""

    budget: int
    sections: list[Section]

    @property
    def total_tokens(self) -> int:
        """Sum of the sections' token counts."""
        return sum(s.tokens for s in self.sections)

    def messages(self) -> list[ChatMessage]:
        """Chat form: leading system sections merged into one system message, then the turns."""
        head = [s.text for s in self.sections if s.role == "system" and s.text]
        out = [ChatMessage("system", "\n\n".join(head))] if head else []
        out.extend(ChatMessage(s.role, s.text) for s in self.sections if s.role != "system")
        return out

    def public(self) -> dict[str, Any]:
        """JSON form: {budget, total_tokens, sections}."""
        return {"budget": self.budget, "total_tokens": self.total_tokens,
                "sections": [s.public() for s in self.sections]}
