"""The prompt as an ordered list of sections, each with its source and token cost.

`head` sections form the first system message: the same for every speaker and turn of a chat, so a local
server reuses its KV cache. `turn` sections are the conversation: history messages, and the notes (lore,
reminders) attached to a turn, which are put in front of the user message that follows them. `tail` sections
(who speaks next, the reply instruction, the speaker's post-history instructions) come after the history: at
the end of the newest user message, or as a last user message when the conversation ends with a reply; a
Continue keeps them on the user message before the reply it continues.
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
    """A built prompt: sections in order, the budget, per-character decisions and this turn's notes."""

    budget: int
    sections: list[Section]
    decisions: dict[int, dict[str, Any]] = field(default_factory=dict)
    turn: int = 0
    notes: dict[str, Any] = field(default_factory=dict)
    continuing: bool = False  # the last message is a reply being continued
    prefix: dict[str, Any] = field(default_factory=dict)  # where the cached prefix breaks (context/layout.py)
    lore_budget: int | None = None
    capsules: dict[int, tuple[str, str, str]] = field(default_factory=dict)  # id -> (card digest, text, origin)

    @property
    def total_tokens(self) -> int:
        """Sum of the sections' token counts."""
        return sum(s.tokens for s in self.sections)

    def messages(self) -> list[ChatMessage]:
        """Chat form: head as one system message, notes in front of their user message, the tail last."""
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
        tail = "\n\n".join(s.text for s in self.sections if s.placement == "tail" and s.text)
        if tail and not _attach_tail(turns, tail, self.continuing):
            head.append(tail)
        return ([ChatMessage("system", "\n\n".join(head))] if head else []) + turns

    @property
    def lore_tokens(self) -> int:
        """Tokens of all lore in the prompt (old notes and this turn's)."""
        return sum(s.tokens for s in self.sections if s.kind == "lore")

    def public(self) -> dict[str, Any]:
        """JSON form: {budget, total_tokens, turn, sections, prefix, lore}."""
        return {"budget": self.budget, "total_tokens": self.total_tokens, "turn": self.turn,
                "sections": [s.public() for s in self.sections], "prefix": self.prefix,
                "lore": {"tokens": self.lore_tokens, "budget": self.lore_budget}}


def _attach_tail(turns: list[ChatMessage], tail: str, continuing: bool) -> bool:
    """Put the tail after the history; False when there is no place for it in the conversation."""
    last = len(turns) - 1
    if continuing and last >= 0 and turns[last].role == "assistant":
        last = next((i for i in range(last - 1, -1, -1) if turns[i].role == "user"), -1)
        if last < 0:
            return False
    if last >= 0 and turns[last].role == "user":
        turns[last] = ChatMessage("user", turns[last].content + "\n\n" + tail)
    else:
        turns.append(ChatMessage("user", tail))
    return True
