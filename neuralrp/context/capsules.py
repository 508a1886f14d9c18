"""Capsules: a few lines per character (role, traits, speech, one example line) used between reset points.

An LLM-written capsule is cached on the character with a digest of the card it was made
from; when the card changes the digest no longer matches and the rule-based capsule is
used until a new one is written.
"""

from __future__ import annotations

import hashlib
import json
import re

from neuralrp.library.characters import Character

CAPSULE_FIELDS = ("name", "description", "personality", "scenario", "mes_example")
_SENTENCE = re.compile(r"(?<=[.!?。！？])\s+")


def card_digest(char: Character) -> str:
    """Digest of the card fields a capsule is made from."""
    data = {k: char.data.get(k, "") for k in CAPSULE_FIELDS}
    return hashlib.sha256(json.dumps(data, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:16]


def _first_sentence(text: str, limit: int = 30) -> str:
    text = " ".join(text.split())
    first = _SENTENCE.split(text, maxsplit=1)[0] if text else ""
    words = first.split()
    return " ".join(words[:limit]) + ("…" if len(words) > limit else "")


def _traits(personality: str, limit: int = 8) -> str:
    text = personality.strip().strip("[]")
    parts = [p.strip() for p in re.split(r"[,;\n]", text) if p.strip()]
    if len(parts) >= 2:
        return ", ".join(parts[:limit])
    return _first_sentence(text, 20)


def _example_line(mes_example: str, name: str) -> str:
    for line in mes_example.splitlines():
        stripped = line.strip()
        for prefix in ("{{char}}:", f"{name}:", "<BOT>:"):
            if stripped.startswith(prefix):
                spoken = stripped[len(prefix):].strip()
                return spoken[:160] + ("…" if len(spoken) > 160 else "")
    return ""


def rule_capsule(char: Character) -> str:
    """A capsule built from the card's own text, no LLM needed."""
    role = _first_sentence(char.field("description").replace("{{char}}", char.name))
    traits = _traits(char.field("personality"))
    example = _example_line(char.field("mes_example"), char.name)
    parts = [f"[{char.name}"]
    if role:
        parts.append(f" — {role}")
    if traits:
        parts.append(f" Traits: {traits}.")
    if example:
        parts.append(f' Voice: "{example}"')
    return "".join(parts).rstrip() + "]"


def capsule_text(char: Character, stored: str | None, stored_digest: str | None) -> tuple[str, str]:
    """(capsule, origin): the cached LLM capsule if it matches the card, else the rule-based one."""
    if stored and stored_digest == card_digest(char):
        return stored, "llm"
    return rule_capsule(char), "rules"
