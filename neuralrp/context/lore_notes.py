"""The lore budget over the whole prompt, turn after turn, without breaking the cached prefix for nothing.

Lore that fires is kept as a note on the user message of its turn, so each prompt only grows at its end.
`world.lore_token_budget` caps all lore notes in the prompt together, the old ones on earlier messages and the
new ones of this turn:
- an entry already in the prompt is not added again;
- new entries are added, most relevant first, while they fit in what the old notes leave;
- notes of entries that are no longer relevant (not among this turn's hits) are dropped only at a planned
  break: when the head changes anyway (a summary fold, a cast change: all of them), or when a relevant new
  entry would pass the budget. Dropping edits earlier messages, so the cached prefix breaks at the oldest one
  edited: at the budget, stale notes go together from the newest messages back until LORE_SLACK of the budget
  is free, so such breaks are rare and cost little; the stale notes left on old messages leave with them at
  the next summary fold.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from neuralrp.context.state import ChatState, Note
from neuralrp.retrieval.types import LoreHit

Count = Callable[[str], int]
LORE_SLACK = 1 / 3  # at the budget, stale notes are dropped until this share of the budget is free


@dataclass
class LorePlan:
    """The notes earlier messages keep this turn, and the room left for new lore."""

    notes: dict[int, list[Note]]
    room: int
    used: int
    rewritten: dict[int, list[Note]] = field(default_factory=dict)  # messages whose notes changed
    dropped: list[int] = field(default_factory=list)  # entry ids whose notes were dropped


def lore_tokens(notes: dict[int, list[Note]], count: Count) -> int:
    """Tokens of the lore notes kept on messages."""
    return sum(count(n.text) for kept in notes.values() for n in kept if n.kind == "lore")


def entry_ids(notes: dict[int, list[Note]]) -> set[object]:
    """Lore entries that already have a note on some message."""
    return {n.source.get("entry_id") for kept in notes.values() for n in kept if n.kind == "lore"}


def new_hits(state: ChatState, seen: set[object]) -> list[LoreHit]:
    """This turn's hits with no note in the prompt yet, most relevant first (canon law has its own place)."""
    return [h for h in state.lore if h.entry.id not in seen and not h.entry.canon_law and h.entry.content.strip()]


def plan_lore(state: ChatState, count: Count, anchor_id: int | None, *, free_break: bool) -> LorePlan:
    """Which old lore notes stay, and how many tokens new lore may use (see the module docstring)."""
    budget = state.limits.lore_token_budget
    old = {mid: list(kept) for mid, kept in state.notes.items() if mid != anchor_id}
    used = lore_tokens(old, count)
    fresh = new_hits(state, entry_ids(old))
    passes = bool(fresh) and used + count(fresh[0].entry.content.strip()) > budget
    if (free_break or passes or used > budget) and _has_stale(state, old):
        need = count(fresh[0].entry.content.strip()) if fresh else 0
        plan = _drop_stale(state, old, count, budget, None if free_break else max(need, int(budget * LORE_SLACK)))
    else:
        plan = LorePlan(old, max(0, budget - used), used)
    return _trim(plan, count, budget) if plan.used > budget else plan


def _relevant(state: ChatState) -> set[object]:
    return {h.entry.id for h in state.lore}


def _has_stale(state: ChatState, notes: dict[int, list[Note]]) -> bool:
    relevant = _relevant(state)
    return any(n.kind == "lore" and n.source.get("entry_id") not in relevant for kept in notes.values()
               for n in kept)


def _drop_stale(state: ChatState, notes: dict[int, list[Note]], count: Count, budget: int,
                goal: int | None) -> LorePlan:
    """Drop the lore notes whose entry is not relevant now: all of them (goal None), else message by message
    from the newest back until `goal` tokens of the budget are free. Changed messages are to be rewritten."""
    relevant = _relevant(state)
    order = {m.id: i for i, m in enumerate(state.history)}
    plan = LorePlan(dict(notes), 0, lore_tokens(notes, count))
    for mid in sorted(notes, key=lambda m: order.get(m, -1), reverse=True):
        if goal is not None and budget - plan.used >= goal:
            break
        stay = [n for n in notes[mid] if n.kind != "lore" or n.source.get("entry_id") in relevant]
        if len(stay) == len(notes[mid]):
            continue
        gone = [n for n in notes[mid] if n not in stay]
        plan.used -= sum(count(n.text) for n in gone)
        plan.dropped += [int(n.source.get("entry_id") or 0) for n in gone]
        plan.notes[mid] = plan.rewritten[mid] = stay
    plan.room = max(0, budget - plan.used)
    return plan


def _trim(plan: LorePlan, count: Count, budget: int) -> LorePlan:
    """Still over the budget (a lowered setting, older data): drop the oldest notes until it fits."""
    for mid in sorted(plan.notes):
        lore = [n for n in plan.notes[mid] if n.kind == "lore"]
        if plan.used <= budget:
            break
        if not lore:
            continue
        stay = list(plan.notes[mid])
        for note in lore:
            if plan.used <= budget:
                break
            stay.remove(note)
            plan.used -= count(note.text)
            plan.dropped.append(int(note.source.get("entry_id") or 0))
        plan.notes[mid] = plan.rewritten[mid] = stay
    plan.room = max(0, budget - plan.used)
    return plan
