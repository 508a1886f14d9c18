"""Checks on what background LLM calls wrote, before it is stored (capsules, scene summaries).

Small models answer with chat-template debris (`{END}`, `<|im_end|>`, `[INST]`), brackets in the wrong
places, the same line over and over, or a capsule about someone else. Such an answer is rejected with a
reason: nothing is stored (the previous capsule or summary stays in use), the rejection is remembered for
the prompt inspector, and the job is retried later with a growing delay (`Rejections`).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

RETRY_BASE_S = 60.0
RETRY_MAX_S = 3600.0
ANSWER_CHARS = 200

_JUNK = re.compile(
    r"\{[A-Za-z_ /]{1,20}\}|\{\{|\}\}|<\|[^|>\n]{0,30}\|>|</?s>|\[/?INST\]|<</?SYS>>|<(?:start|end)_of_turn>"
    r"|<\|?im_(?:start|end)\|?>|^#{2,}\s|^(?:assistant|user|system)\s*:",
    re.IGNORECASE | re.MULTILINE,
)
_MACROS = re.compile(r"\{\{(?:char|user)\}\}", re.IGNORECASE)
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_NAME_END = re.compile(r"[\s—–\-:,.]")


def template_junk(text: str) -> str | None:
    """The first piece of chat-template debris in text, quoted, or None ({{char}} and {{user}} are macros)."""
    match = _JUNK.search(_MACROS.sub("", text))
    return f"it contains template junk {match.group(0).strip()!r}" if match else None


def _norm(text: str) -> str:
    return " ".join(text.lower().split()).strip(" .!?,;:\"'[]")


def repetition(text: str) -> str | None:
    """A sentence or line said twice (a model stuck in a loop), quoted, or None."""
    seen: set[str] = set()
    pieces = [p for line in text.splitlines() for p in _SENTENCE.split(line)]
    for piece in pieces:
        key = _norm(piece)
        if len(key.split()) < 3:
            continue
        if key in seen:
            return f"it repeats itself ({piece.strip()[:60]!r})"
        seen.add(key)
    return None


def capsule_problem(line: str, name: str, *, min_words: int, max_words: int) -> str | None:
    """Why a one-line capsule `[Name — ...]` is unusable, or None when it is fine."""
    words = len(re.findall(r"\w+", line))
    if words < min_words:
        return f"it is too short ({words} words)"
    if words > max_words:
        return f"it is too long ({words} words; at most {max_words})"
    problem = template_junk(line) or repetition(line)
    if problem:
        return problem
    inner = line[1:-1]
    if not (line.startswith("[") and line.endswith("]")) or "[" in inner or "]" in inner:
        return "its [ ] brackets are not one pair around the whole capsule"
    head = inner.strip()
    if not head.lower().startswith(name.lower()) or not _NAME_END.match(head[len(name):len(name) + 1] or " "):
        return f"it is not about {name} (it starts {head[:30]!r})"
    return None


def summary_problem(text: str, *, min_words: int, max_words: int) -> str | None:
    """Why a summary is unusable, or None when it is fine."""
    words = len(text.split())
    if words < min_words:
        return f"it is too short ({words} words)"
    if words > max_words:
        return f"it is too long ({words} words; at most {max_words})"
    problem = template_junk(text) or repetition(text)
    if problem:
        return problem
    if text.startswith("[") and text.endswith("]"):
        return "it is wrapped in [ ] like a template field"
    return None


@dataclass
class Rejection:
    """The last rejected answer for one subject (a character's capsule, a chat's summary)."""

    reason: str
    answer: str
    failures: int
    at: float
    retry_at: float
    key: str = ""

    def public(self) -> dict[str, Any]:
        """As the prompt inspector shows it."""
        return {"reason": self.reason, "answer": self.answer, "failures": self.failures,
                "retry_in_s": max(0, round(self.retry_at - time.monotonic()))}


class Rejections:
    """Rejected answers per subject, with the time the next try is allowed (doubling up to an hour)."""

    def __init__(self, base_s: float = RETRY_BASE_S, max_s: float = RETRY_MAX_S) -> None:
        self.base_s = base_s
        self.max_s = max_s
        self.items: dict[int, Rejection] = {}

    def reject(self, subject: int, reason: str, answer: str, key: str = "") -> Rejection:
        """Remember a rejection; a new `key` (the card changed) starts the count again."""
        old = self.items.get(subject)
        failures = old.failures + 1 if old is not None and old.key == key else 1
        now = time.monotonic()
        delay = min(self.base_s * 2 ** (failures - 1), self.max_s)
        self.items[subject] = Rejection(reason, answer.strip()[:ANSWER_CHARS], failures, now, now + delay, key)
        return self.items[subject]

    def accept(self, subject: int) -> None:
        """A good answer was stored: forget the subject's rejections."""
        self.items.pop(subject, None)

    def may_try(self, subject: int, key: str = "") -> bool:
        """Whether the subject may be tried now (never rejected, a new key, or its delay has passed)."""
        old = self.items.get(subject)
        return old is None or old.key != key or time.monotonic() >= old.retry_at

    def get(self, subject: int) -> Rejection | None:
        """The subject's last rejection, if any."""
        return self.items.get(subject)
