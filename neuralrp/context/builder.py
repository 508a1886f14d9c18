"""Build a turn's prompt as a pure function of stored chat state.

Reset points (SPEC §4): a cast member gets the FULL card on first appearance, on the two
turns after it (a sticky window of turns 1-3), and when they return after an absence
(the loader marks that as a new reset turn); otherwise a short capsule every turn.

Budget: sections are admitted by priority (the system text, the message being answered,
the speaker, reminders, the rest of the cast, persona, canon law, lore, summaries, older
history newest-first) and then emitted most-stable-first, so the prompt never passes
the budget and consecutive turns share a long identical prefix.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from neuralrp.context.capsules import capsule_text
from neuralrp.context.sections import Prompt, Section
from neuralrp.context.state import STICKY_TURNS, CastState, ChatState
from neuralrp.context.text import card_text, mode_instruction, persona_text, substitute

Count = Callable[[str], int]
PER_MESSAGE = 4  # chat-template markup around each message


@dataclass
class Candidate:
    """A section waiting to be admitted, with its priority (lower = more important)."""

    priority: int
    order: float
    section: Section
    contiguous: str = ""  # admitted newest-first without gaps (history, summaries)


def full_card_now(member: CastState, turn: int) -> bool:
    """Whether this turn is inside the member's reset window (first appearance or return)."""
    reset = member.reset_turn if member.reset_turn is not None else turn
    return 0 <= turn - reset < STICKY_TURNS


def _cast_candidates(state: ChatState, count: Count) -> tuple[list[Candidate], dict[int, dict[str, object]]]:
    out: list[Candidate] = []
    decisions: dict[int, dict[str, object]] = {}
    speaker_id = state.speaker.id if state.speaker else None
    for index, member in enumerate(state.active_cast):
        char = member.character
        full = full_card_now(member, state.turn)
        first = member.first_turn if member.first_turn is not None else state.turn
        reset = member.reset_turn if member.reset_turn is not None else state.turn
        decisions[char.id] = {"turn": state.turn, "full_card": full, "first_turn": first, "reset_turn": reset}
        priority = 2 if char.id == speaker_id else 4
        source = {"character_id": char.id, "name": char.name}
        if full:
            text = card_text(char, state.user_name)
            out.append(Candidate(priority, index, Section("card_full", text, count(text), source=source)))
        capsule, origin = capsule_text(char, char.capsule, char.capsule_hash)
        capsule = substitute(capsule, char.name, state.user_name)
        kind_priority = priority + 10 if full else priority  # a capsule stands in when a full card cannot fit
        out.append(Candidate(kind_priority, index, Section("capsule", capsule, count(capsule), source={
            **source, "origin": origin}, placement="tail")))
    return out, decisions


def _scene_notes(state: ChatState) -> list[tuple[str, dict[str, object]]]:
    """Who entered, came back or left since the last turn."""
    notes: list[tuple[str, dict[str, object]]] = []
    for member in state.cast:
        name, src = member.character.name, {"character_id": member.id}
        back = member.reset_turn in (state.turn, None) and member.first_turn not in (None, state.turn)
        if member.active and back:
            notes.append((f"[{name} is back in the scene.]", {**src, "scene": "returned"}))
        elif member.active and member.first_turn is None and state.turn > 1:
            notes.append((f"[{name} enters the scene.]", {**src, "scene": "entered"}))
        elif not member.active and member.left_turn is not None and state.turn - member.left_turn <= 1:
            notes.append((f"[{name} has left the scene.]", {**src, "scene": "left"}))
    return notes


def _reminders(state: ChatState, count: Count) -> list[Candidate]:
    notes = _scene_notes(state)
    every = max(1, state.limits.canon_law_every)
    if state.canon_law and state.turn % every == 0:
        law = "; ".join(e.content.strip() for e in state.canon_law if e.content.strip())
        notes.append((f"[Canon law, always true: {law}]", {"canon_law": [e.id for e in state.canon_law]}))
    if state.speaker is not None:
        post = substitute(state.speaker.field("post_history_instructions").strip(), state.speaker.name,
                          state.user_name)
        if post:
            notes.append((post, {"character_id": state.speaker.id, "field": "post_history_instructions"}))
    return [Candidate(3, i, Section("reminder", text, count(text), source=src, placement="tail"))
            for i, (text, src) in enumerate(notes)]


def _head_candidates(state: ChatState, count: Count) -> list[Candidate]:
    system = state.system_prompt or mode_instruction(state)
    out = [Candidate(0, 0, Section("system", system, count(system), source={"mode": state.mode}))]
    persona = persona_text(state.persona, state.user_name)
    if persona:
        out.append(Candidate(5, 0, Section("persona", persona, count(persona), source={"name": state.user_name})))
    for entry in state.canon_law:
        text = f"[Canon law] {entry.content.strip()}"
        out.append(Candidate(6, entry.order, Section("canon_law", text, count(text), source={
            "entry_id": entry.id, "world_id": entry.world_id, "reason": "canon_law", "score": 1.0})))
    for index, item in enumerate(state.summaries):
        text = f"[Earlier, turns {item.start_turn}-{item.end_turn}] {item.text}"
        out.append(Candidate(8, -index, Section("summary", text, count(text), source={
            "summary_id": item.id, "message_ids": [item.first_message_id, item.last_message_id],
            "turns": [item.start_turn, item.end_turn]}), contiguous="summary"))
    return out


def _lore_candidates(state: ChatState, count: Count) -> list[Candidate]:
    out = []
    for rank, hit in enumerate(state.lore):
        text = hit.entry.content.strip()
        if not text or hit.entry.canon_law:
            continue
        source = {"entry_id": hit.entry.id, "world_id": hit.entry.world_id, "reason": hit.reason,
                  "score": round(hit.score, 4), "matched": list(hit.matched)}
        out.append(Candidate(7, rank, Section("lore", text, count(text), source=source, placement="tail")))
    return out


def _history_candidates(state: ChatState, count: Count) -> list[Candidate]:
    out = []
    multi = len(state.active_cast) > 1
    newest = len(state.history) - 1
    for index, msg in enumerate(state.history):
        text = msg.content
        if msg.role == "assistant" and multi and msg.speaker_name:
            text = f"{msg.speaker_name}: {text}"
        role = "user" if msg.role == "user" else "assistant"
        section = Section("history", text, count(text) + PER_MESSAGE, role=role, placement="turn",
                          source={"message_ids": [msg.id], "turn": msg.turn})
        priority = 1 if index == newest else 9
        out.append(Candidate(priority, newest - index, section, contiguous="history"))
    return out


_EMIT = {"system": 0, "persona": 1, "canon_law": 2, "summary": 3, "card_full": 4, "history": 5, "lore": 6,
         "capsule": 7, "reminder": 8}


def _admit(candidates: list[Candidate], budget: int, lore_budget: int) -> list[Candidate]:
    """Greedy admission by priority; contiguous groups stop at their first miss."""
    remaining, lore_used = budget, 0
    admitted: list[Candidate] = []
    blocked: set[str] = set()
    carded: set[object] = set()
    for cand in sorted(candidates, key=lambda c: (c.priority, c.order)):
        section = cand.section
        if cand.contiguous in blocked:
            continue
        if section.kind == "capsule" and section.source.get("character_id") in carded:
            continue
        if section.kind == "lore" and lore_used + section.tokens > lore_budget:
            continue
        if section.tokens > remaining:
            if cand.contiguous:
                blocked.add(cand.contiguous)
            continue
        admitted.append(cand)
        remaining -= section.tokens
        lore_used += section.tokens if section.kind == "lore" else 0
        if section.kind == "card_full":
            carded.add(section.source.get("character_id"))
    return admitted


def _emit_key(cand: Candidate) -> tuple[int, float]:
    chronological = cand.section.kind in ("history", "summary")
    return _EMIT[cand.section.kind], -cand.order if chronological else cand.order


def build_prompt(state: ChatState, *, budget: int, count: Count) -> Prompt:
    """The prompt for the next reply: sections within `budget`, plus per-character reset decisions."""
    cast, decisions = _cast_candidates(state, count)
    candidates = [*_head_candidates(state, count), *cast, *_reminders(state, count),
                  *_lore_candidates(state, count), *_history_candidates(state, count)]
    admitted = sorted(_admit(candidates, budget, state.limits.lore_token_budget), key=_emit_key)
    sections = [c.section for c in admitted]
    carded = {s.source.get("character_id") for s in sections if s.kind == "card_full"}
    for char_id, decision in decisions.items():
        decision["full_card"] = char_id in carded
    return Prompt(budget=budget, sections=sections, decisions=decisions, turn=state.turn)
