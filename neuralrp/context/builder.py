"""Build a turn's prompt as a pure function of stored chat state.

Reset points (SPEC §4): a cast member gets the FULL card on first appearance, on the two
turns after it (a sticky window of turns 1-3), and when they return after an absence
(the loader marks that as a new reset turn); otherwise a short capsule.

Prefix stability (the server's KV cache): the head (a system line that names no speaker, persona, canon law,
summaries, then each cast member's card or capsule in cast order) is the same for every speaker; it changes
only at planned breaks: a summary fold, a cast change (a reset point and the end of its window). Capsules are
kept as the last reply had them until such a break (context/layout.py), so one written in the background
does not break the cache. Per-turn material (lore that fired, scene and canon-law reminders) is attached to
the user message of the turn it fired on and stays there in later prompts, so each turn only appends to the
previous prompt; a user message answered before (another character answering it too, Regenerate, Continue)
keeps the notes it was first sent with, so those reuse its prompt whole. What changes with every reply (who
speaks next, the reply instruction for the mode, the speaker's post-history instructions) is the tail, after
the history.

Lore: all lore notes in the prompt, old and new, stay within `world.lore_token_budget` (context/lore_notes.py).

History: newest first without gaps; between planned breaks it never reaches back past the last reply's first
message, and when it must be cut (the summary fold is late), the oldest messages go together, freeing
HISTORY_SLACK of the budget, so the prefix breaks once rather than every turn.

Budget: candidates are admitted by priority (system, the message being answered, the reply instruction, the
speaker, this turn's reminders, the rest of the cast, persona, canon law, new lore within the lore budget,
summaries, older turns newest-first without gaps) and then emitted in prompt order, so the prompt never passes
the budget.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from neuralrp.context.capsules import capsule_text, card_digest
from neuralrp.context.layout import cast_mark, digest, head_unchanged, prefix_break
from neuralrp.context.lore_notes import LorePlan, plan_lore
from neuralrp.context.sections import Prompt, Section, SectionRole
from neuralrp.context.state import STICKY_TURNS, CastState, ChatState, Note
from neuralrp.context.text import (
    card_system_owner,
    card_text,
    persona_text,
    stable_char_name,
    substitute,
    system_prompt,
    tail_texts,
)
from neuralrp.llm.tokens import LOCAL_COUNTER

Count = Callable[[str], int]
PER_MESSAGE = 4  # chat-template markup around each message
LORE = 7  # the priority of new lore (admitted within the lore room)
HISTORY_SLACK = 0.15  # when history must be cut, this share of the budget is freed at once
_HEAD_RANK = {"system": 0, "persona": 1, "canon_law": 2, "summary": 3, "card_full": 4, "capsule": 4}
Pins = dict[int, tuple[str, str, str]]  # character id -> (card digest, capsule text, origin)


@dataclass
class Candidate:
    """Sections admitted or refused together, with a priority (lower = more important) and a place."""

    priority: int
    order: float
    sections: list[Section]
    place: tuple[float, ...] = ()
    contiguous: str = ""  # admitted newest-first without gaps (history, summaries)
    tags: dict[str, Any] = field(default_factory=dict)

    @property
    def tokens(self) -> int:
        """Cost of all the sections."""
        return sum(s.tokens for s in self.sections)


def full_card_now(member: CastState, turn: int) -> bool:
    """Whether this turn is inside the member's reset window (first appearance or return)."""
    reset = member.reset_turn if member.reset_turn is not None else turn
    return 0 <= turn - reset < STICKY_TURNS


def _capsule(state: ChatState, member: CastState, keep: bool) -> tuple[str, str]:
    """(text, origin) of a member's capsule: while `keep` and the card is the same, the one the last reply used
    (a capsule written meanwhile waits for the next planned break); otherwise the best there is now."""
    char = member.character
    pin = state.layout.capsules.get(char.id) if state.layout is not None else None
    if keep and pin is not None and pin.card_digest == card_digest(char):
        return pin.text, pin.origin
    text, origin = capsule_text(char, char.capsule, char.capsule_hash)
    return substitute(text, char.name, state.user_name), origin


@dataclass
class CastPlan:
    """The cast's head candidates, the reset decisions, the capsules in use, and whether the head broke."""

    candidates: list[Candidate] = field(default_factory=list)
    decisions: dict[int, dict[str, Any]] = field(default_factory=dict)
    pins: Pins = field(default_factory=dict)
    broken: bool = False


def _cast_candidates(state: ChatState, count: Count, broken: bool) -> CastPlan:
    """Each active member's card (in their reset window) or capsule, in cast order; `broken`: the head already
    differs from the last reply's before the cast, so capsules may be refreshed."""
    plan = CastPlan(broken=broken)
    speaker_id = state.speaker.id if state.speaker else None
    for index, member in enumerate(state.active_cast):
        char = member.character
        full = full_card_now(member, state.turn)
        first = member.first_turn if member.first_turn is not None else state.turn
        reset = member.reset_turn if member.reset_turn is not None else state.turn
        plan.decisions[char.id] = {"turn": state.turn, "full_card": full, "first_turn": first, "reset_turn": reset}
        priority = 2 if char.id == speaker_id else 4
        source = {"character_id": char.id, "name": char.name}
        place = (0, _HEAD_RANK["card_full"], index)
        card = card_text(char, state.user_name, with_system=card_system_owner(state) is None)
        before = cast_mark(state.layout, char.id)
        kept = not plan.broken and not full and before is not None and before.kind == "capsule"
        capsule, origin = _capsule(state, member, keep=kept)
        shown = ("card_full", card) if full else ("capsule", capsule)
        plan.broken = plan.broken or before is None or before.digest != digest(*shown)
        if full:
            plan.candidates.append(Candidate(priority, index, [Section("card_full", card, count(card), source=source)],
                                             place, tags={"card": char.id}))
        section = Section("capsule", capsule, count(capsule), source={**source, "origin": origin})
        plan.candidates.append(Candidate(priority + 10 if full else priority, index, [section], place,
                                         tags={"capsule_for": char.id}))
        plan.pins[char.id] = (card_digest(char), capsule, origin)
    return plan


def _head_candidates(state: ChatState, count: Count) -> list[Candidate]:
    system, origin = system_prompt(state)
    source = {"mode": state.mode, **origin}
    out = [Candidate(0, 0, [Section("system", system, count(system), source=source)], (0, 0, 0))]
    persona = persona_text(state.persona, state.user_name, stable_char_name(state))
    if persona:
        section = Section("persona", persona, count(persona), source={"name": state.user_name})
        out.append(Candidate(5, 0, [section], (0, 1, 0)))
    char_name = stable_char_name(state)
    for rank, entry in enumerate(state.canon_law):
        text = f"[Canon law] {substitute(entry.content.strip(), char_name, state.user_name)}"
        src = {"entry_id": entry.id, "world_id": entry.world_id, "reason": "canon_law", "score": 1.0}
        out.append(Candidate(6, rank, [Section("canon_law", text, count(text), source=src)], (0, 2, rank)))
    for index, item in enumerate(state.summaries):
        text = f"[Earlier, turns {item.start_turn}-{item.end_turn}] {item.text}"
        src = {"summary_id": item.id, "message_ids": [item.first_message_id, item.last_message_id],
               "turns": [item.start_turn, item.end_turn]}
        out.append(Candidate(8, -index, [Section("summary", text, count(text), source=src)], (0, 3, index),
                             contiguous="summary"))
    return out


def note_section(note: Note, count: Count) -> Section:
    """A note attached to a turn, as a prompt section."""
    return Section(note.kind, note.text, count(note.text), source=note.source, placement="turn")


def _anchor(state: ChatState) -> int | None:
    """Index in history of the user message this reply answers (new notes attach there)."""
    return next((i for i in range(len(state.history) - 1, -1, -1) if state.history[i].role == "user"), None)


def _history_candidates(state: ChatState, count: Count, anchor: int | None,
                        notes: dict[int, list[Note]]) -> list[Candidate]:
    out = []
    multi = len(state.active_cast) > 1
    newest = len(state.history) - 1
    for index, msg in enumerate(state.history):
        text = msg.content
        if msg.role == "assistant" and multi and msg.speaker_name:
            text = f"{msg.speaker_name}: {text}"
        role: SectionRole = "user" if msg.role == "user" else "assistant"
        kept = [] if index == anchor else [note_section(n, count) for n in notes.get(msg.id, [])]
        counted = msg.token_count if (msg.token_count and text == msg.content
                                      and msg.token_counter not in (None, LOCAL_COUNTER)) else count(text)
        section = Section("history", text, counted + PER_MESSAGE, role=role, placement="turn",
                          source={"message_ids": [msg.id], "turn": msg.turn})
        priority = 1 if index == newest else 9
        out.append(Candidate(priority, newest - index, [*kept, section], (1, index, 1), contiguous="history"))
    return out


def _scene_notes(state: ChatState) -> list[tuple[str, dict[str, Any]]]:
    """Who entered, came back or left since the last turn."""
    notes: list[tuple[str, dict[str, Any]]] = []
    for member in state.cast:
        name, src = member.character.name, {"character_id": member.id}
        back = member.reset_turn in (state.turn, None) and member.first_turn not in (None, state.turn)
        if member.active and back:
            notes.append((f"[{name} is back in the scene.]", {**src, "scene": "returned"}))
        elif member.active and member.first_turn is None and state.turn > 1:
            notes.append((f"[{name} enters the scene.]", {**src, "scene": "entered"}))
        elif not member.active and member.left_turn is not None and state.turn - member.left_turn <= 1:
            notes.append((f"[{name} has left the scene.]", {**src, "scene": "left"}))
    every = max(1, state.limits.canon_law_every)
    if state.canon_law and state.turn % every == 0:
        law = "; ".join(e.content.strip() for e in state.canon_law if e.content.strip())
        notes.append((f"[Canon law, always true: {law}]", {"canon_law": [e.id for e in state.canon_law]}))
    return notes


def _new_notes(state: ChatState, count: Count, anchor: int | None, seen: set[object]) -> list[Candidate]:
    """This turn's lore and reminders, placed before the anchor and kept there in later prompts."""
    def place(sub: float, rank: int) -> tuple[float, ...]:
        return (1, anchor, 0, sub, rank) if anchor is not None else (0, 5, sub, rank)

    out = []
    char_name = state.speaker.name if state.speaker else next((c.character.name for c in state.active_cast), "")
    for rank, hit in enumerate(h for h in state.lore if h.entry.id not in seen and not h.entry.canon_law):
        text = substitute(hit.entry.content.strip(), char_name, state.user_name)
        src: dict[str, Any] = {"entry_id": hit.entry.id, "world_id": hit.entry.world_id, "reason": hit.reason,
                               "score": round(hit.score, 4), "matched": list(hit.matched)}
        if text:
            out.append(Candidate(LORE, rank, [Section("lore", text, count(text), source=src, placement="turn")],
                                 place(0, rank), tags={"persist": True}))
    for rank, (text, src) in enumerate(_scene_notes(state)):
        section = Section("reminder", text, count(text), source=src, placement="turn")
        out.append(Candidate(3, rank, [section], place(1, rank), tags={"persist": True}))
    return out


def _tail(state: ChatState, count: Count) -> list[Candidate]:
    """Who speaks next and how, then the speaker's post-history instructions: after the history, every turn."""
    text, post, merged = tail_texts(state)
    src: dict[str, Any] = {"mode": state.mode, "character_id": state.speaker.id if state.speaker else None}
    if merged:
        src["field"] = "post_history_instructions"
    out = [Candidate(1, 50, [Section("instruction", text, count(text), source=src, placement="tail")], (2, 0, 0))]
    if state.speaker is not None:
        if post:
            src = {"character_id": state.speaker.id, "field": "post_history_instructions"}
            out.append(Candidate(3, 99, [Section("reminder", post, count(post), source=src, placement="tail")],
                                 (2, 1, 0)))
    return out


def _admit(candidates: list[Candidate], budget: int, lore_room: int) -> list[Candidate]:
    """Greedy admission by priority; contiguous groups stop at their first miss."""
    remaining, lore_used = budget, 0
    admitted: list[Candidate] = []
    blocked: set[str] = set()
    carded: set[Any] = set()
    for cand in sorted(candidates, key=lambda c: (c.priority, c.order)):
        is_lore = cand.priority == LORE
        if cand.contiguous in blocked or cand.tags.get("capsule_for", -1) in carded:
            continue
        if (is_lore and lore_used + cand.tokens > lore_room) or cand.tokens > remaining:
            if cand.contiguous:
                blocked.add(cand.contiguous)
            continue
        admitted.append(cand)
        remaining -= cand.tokens
        lore_used += cand.tokens if is_lore else 0
        if "card" in cand.tags:
            carded.add(cand.tags["card"])
    return admitted


def _floor(state: ChatState, broken: bool) -> int:
    """Index of the last reply's first history message: between planned breaks the window never moves back to
    older messages (that would change the cached prefix right after the head)."""
    if broken or state.layout is None:
        return 0
    first = next((m.ref for m in state.layout.marks if m.kind == "history"), None)
    return next((i for i, msg in enumerate(state.history) if msg.id == first), 0)


def _cut_with_slack(admitted: list[Candidate], budget: int) -> list[Candidate]:
    """History did not all fit (the fold is late or failed): let the oldest messages go together, freeing
    HISTORY_SLACK of the budget, so the next turns append to this prompt instead of each pushing one more
    message out (a prefix break every turn)."""
    older = sorted((c for c in admitted if c.contiguous == "history" and c.priority != 1), key=lambda c: -c.order)
    goal, freed, gone = int(budget * HISTORY_SLACK), 0, set()
    for cand in older:
        if freed >= goal:
            break
        gone.add(id(cand))
        freed += cand.tokens
    return [c for c in admitted if id(c) not in gone]


def _note_of(note: Section | Note) -> dict[str, Any]:
    return {"kind": note.kind, "text": note.text, "source": note.source}


def _plans(state: ChatState, count: Count, head: list[Candidate],
           anchor_id: int | None) -> tuple[CastPlan, LorePlan]:
    """The cast's sections and the lore notes kept, knowing whether the head breaks anyway this turn."""
    before_cast = [c.sections[0] for c in head]
    cast = _cast_candidates(state, count, broken=not head_unchanged(state.layout, before_cast))
    return cast, plan_lore(state, count, anchor_id, free_break=cast.broken)


def build_prompt(state: ChatState, *, budget: int, count: Count) -> Prompt:
    """The prompt for the next reply: sections within `budget`, reset decisions, this turn's notes, and where
    the cached prefix of the last reply's prompt breaks."""
    anchor = _anchor(state)
    anchor_id = state.history[anchor].id if anchor is not None else None
    answered = anchor_id is not None and anchor_id in state.notes
    if answered:  # another speaker, Regenerate or Continue: the message keeps the notes it was first sent with
        anchor = anchor_id = None
    head = _head_candidates(state, count)
    cast, lore = _plans(state, count, head, anchor_id)
    seen = {n.source.get("entry_id") for kept in lore.notes.values() for n in kept if n.kind == "lore"}
    fresh = [] if answered else _new_notes(state, count, anchor, seen)
    history = _history_candidates(state, count, anchor, lore.notes)[_floor(state, cast.broken):]
    admitted = _admit([*head, *cast.candidates, *fresh, *_tail(state, count), *history], budget, lore.room)
    if sum(c.contiguous == "history" for c in admitted) < len(history):
        admitted = _cut_with_slack(admitted, budget)
    admitted.sort(key=lambda c: c.place)
    sections = [s for c in admitted for s in c.sections]
    carded = {s.source.get("character_id") for s in sections if s.kind == "card_full"}
    for char_id, decision in cast.decisions.items():
        decision["full_card"] = char_id in carded
    notes = [_note_of(s) for c in admitted if c.tags.get("persist") for s in c.sections]
    rewrite = {mid: [_note_of(n) for n in kept] for mid, kept in lore.rewritten.items()}
    return Prompt(budget=budget, sections=sections, decisions=cast.decisions, turn=state.turn,
                  notes={"message_id": anchor_id, "notes": notes, "rewrite": rewrite}, continuing=state.continuing,
                  prefix=prefix_break(state.layout, sections), lore_budget=state.limits.lore_token_budget,
                  capsules=cast.pins)
