"""What the last reply's prompt looked like, and where the next one stops matching it (the KV-cache prefix).

Local servers reuse the KV cache of the longest token prefix a new prompt shares with the last one. The
builder keeps everything that changes per turn after the history, so between two ordinary turns the prompt
only grows at its end; a summary fold, a cast change (a reset point and the end of its full-card window) and
dropping lore notes at the lore budget are the planned breaks. After each reply the engine stores a `Layout`
(each section's kind, a digest of its text, its token count, and the capsules the head used) on the chat; the
next prompt is compared with it to say where the prefix breaks and why (the prompt inspector shows it), and
the capsules are kept as they were until a planned break, so a capsule written in the background never breaks
the cache on its own.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from neuralrp.context.sections import Section

HEAD_BEFORE_CAST = ("system", "persona", "canon_law", "summary")
CAST_KINDS = ("card_full", "capsule")


@dataclass(frozen=True)
class Mark:
    """One section of a sent prompt: kind, placement, a digest of its text, its tokens, what it refers to."""

    kind: str
    placement: str
    digest: str
    tokens: int
    ref: int | None = None  # the message id (history) or character id (cards, capsules)


@dataclass(frozen=True)
class Pin:
    """The capsule a cast member had in the head: kept until a planned break while the card is unchanged."""

    card_digest: str
    text: str
    origin: str


@dataclass
class Layout:
    """The last reply's prompt as fingerprints, and the capsules it used."""

    marks: list[Mark] = field(default_factory=list)
    capsules: dict[int, Pin] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """Plain data for the chat's settings."""
        return {"marks": [[m.kind, m.placement, m.digest, m.tokens, m.ref] for m in self.marks],
                "capsules": {str(cid): [p.card_digest, p.text, p.origin] for cid, p in self.capsules.items()}}

    @classmethod
    def from_json(cls, data: Any) -> Layout | None:
        """The stored layout; None when there is none or it cannot be read (the next prompt starts afresh)."""
        if not isinstance(data, dict):
            return None
        try:
            marks = [Mark(str(k), str(p), str(d), int(t), None if r is None else int(r))
                     for k, p, d, t, r in data.get("marks", [])]
            pins = {int(cid): Pin(str(d), str(t), str(o)) for cid, (d, t, o) in data.get("capsules", {}).items()}
        except (TypeError, ValueError):
            return None
        return cls(marks, pins)


def digest(kind: str, text: str) -> str:
    """A short digest of a section's kind and text."""
    return hashlib.sha1(f"{kind}\0{text}".encode()).hexdigest()[:16]


def ref_of(section: Section) -> int | None:
    """The message or character a section belongs to."""
    if section.kind == "history":
        ids = section.source.get("message_ids") or [None]
        return ids[0] if isinstance(ids[0], int) else None
    cid = section.source.get("character_id")
    return cid if isinstance(cid, int) and section.kind in CAST_KINDS else None


def mark_of(section: Section) -> Mark:
    """The fingerprint of one section."""
    return Mark(section.kind, section.placement, digest(section.kind, section.text), section.tokens, ref_of(section))


def layout_of(sections: list[Section], capsules: dict[int, Pin]) -> Layout:
    """The layout to remember after a reply."""
    return Layout([mark_of(s) for s in sections], dict(capsules))


def same(mark: Mark, section: Section) -> bool:
    """Whether a section is the one the mark fingerprints (same kind, placement and text)."""
    return (mark.kind, mark.placement, mark.digest) == (section.kind, section.placement,
                                                         digest(section.kind, section.text))


ORDINARY, PLANNED, UNPLANNED = "ordinary", "planned", "unplanned"


def _cast_reason(old: Mark, new: Section | None) -> str:
    if old.kind == "card_full" and new is not None and new.kind == "capsule":
        return "reset window ended: a full card became its capsule"
    if new is not None and new.kind == "card_full":
        return "reset point: a character's full card (first appearance or return)"
    return "cast change: a character's card or capsule changed, or the cast did"


def _reason(old: Mark | None, new: Section | None) -> tuple[str, str]:
    """Why the prefix breaks at this pair of sections: (sentence, ordinary / planned / unplanned)."""
    if old is None or old.placement == "tail":
        return "ordinary turn: the last reply and the new message follow the cached prefix", ORDINARY
    kinds = {old.kind, new.kind if new is not None else old.kind}
    if "summary" in kinds:
        return "summary fold: the summaries changed", PLANNED
    if kinds & set(CAST_KINDS):
        return _cast_reason(old, new), PLANNED
    if kinds & {"system", "persona", "canon_law"}:
        return "the system prompt, persona or canon law changed (a setting or an edit)", UNPLANNED
    if "lore" in kinds:
        return "lore notes dropped: entries no longer relevant left at the lore budget", PLANNED
    first_id = new.source.get("message_ids", [None])[0] if new is not None else None
    if old.kind == "history" and new is not None and new.kind == "history" and first_id != old.ref:
        return "history over budget: the oldest messages left together (the summary fold is late)", PLANNED
    if new is None:
        return "the prompt got shorter (a message was deleted or regenerated)", UNPLANNED
    return "an earlier message or its notes changed (edited, deleted or regenerated)", UNPLANNED


def prefix_break(previous: Layout | None, sections: list[Section]) -> dict[str, Any]:
    """Where this prompt stops matching the last reply's, and why (for the inspector and the bench)."""
    if previous is None or not previous.marks:
        return {"index": 0 if sections else None, "reason": "no earlier reply in this chat: nothing cached yet",
                "planned": True, "ordinary": False, "kept_tokens": 0, "previous_tokens": 0}
    index = 0
    for mark, section in zip(previous.marks, sections, strict=False):
        if not same(mark, section):
            break
        index += 1
    kept = sum(m.tokens for m in previous.marks[:index])
    total = sum(m.tokens for m in previous.marks)
    if index == len(previous.marks) == len(sections):
        return {"index": None, "reason": "the same prompt as the last reply: all of it is cached",
                "planned": True, "ordinary": True, "kept_tokens": kept, "previous_tokens": total}
    old = previous.marks[index] if index < len(previous.marks) else None
    reason, kind = _reason(old, sections[index] if index < len(sections) else None)
    return {"index": index if index < len(sections) else None, "reason": reason, "planned": kind != UNPLANNED,
            "ordinary": kind == ORDINARY, "kept_tokens": kept, "previous_tokens": total}


def head_unchanged(previous: Layout | None, sections: list[Section]) -> bool:
    """Whether these head sections (before the cast) are exactly the last reply's."""
    if previous is None:
        return False
    before = [m for m in previous.marks if m.placement == "head" and m.kind in HEAD_BEFORE_CAST]
    return len(before) == len(sections) and all(same(m, s) for m, s in zip(before, sections, strict=True))


def cast_mark(previous: Layout | None, character_id: int) -> Mark | None:
    """The last reply's card or capsule mark for this character, if it had one."""
    if previous is None:
        return None
    return next((m for m in previous.marks if m.kind in CAST_KINDS and m.ref == character_id), None)
