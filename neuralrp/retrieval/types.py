"""Shared shapes between lore retrieval and the prompt builder."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Reason = Literal["exact_key", "semantic", "keyword", "constant", "canon_law"]


@dataclass(frozen=True)
class LoreEntry:
    """One world entry as retrieval sees it (from world_entries)."""

    id: int
    world_id: int
    keys: tuple[str, ...]
    secondary_keys: tuple[str, ...] = ()
    content: str = ""
    comment: str = ""
    constant: bool = False
    selective: bool = False
    selective_logic: int = 0  # ST: 0 AND ANY, 1 NOT ALL, 2 NOT ANY, 3 AND ALL
    enabled: bool = True
    order: float = 100
    probability: float = 100
    use_probability: bool = True
    canon_law: bool = False


@dataclass(frozen=True)
class LoreHit:
    """An entry chosen for this turn and why."""

    entry: LoreEntry
    reason: Reason
    score: float
    matched: tuple[str, ...] = field(default_factory=tuple)  # the keys (or phrases) that fired
