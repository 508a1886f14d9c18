"""Build a turn's prompt as a pure function of stored chat state.

Reset points (SPEC §4): a cast member gets the FULL card on first appearance, on the two
turns after it (a sticky window of turns 1-3), and when they return after an absence
(the loader marks that as a new reset turn); otherwise a short capsule.

Prefix stability: the head (system, persona, canon law, summaries, cards and capsules)
changes only at summary folds and cast changes. Per-turn material (lore that fired,
scene and canon-law reminders) is attached to the user message of the turn it fired on
and stays there in later prompts, so each turn only appends to the previous prompt. Only
the speaker's post-history instructions are placed fresh each turn, right before the
newest user message.

Budget: candidates are admitted by priority (system, the message being answered, the
speaker, this turn's reminders, the rest of the cast, persona, canon law, new lore within
the lore budget, summaries, older turns newest-first without gaps) and then emitted in
prompt order, so the prompt never passes the budget.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from neuralrp.context.capsules import capsule_text
from neuralrp.context.sections import Prompt, Section
from neuralrp.context.state import STICKY_TURNS, CastState, ChatState, Note
from neuralrp.context.text import card_text, mode_instruction, persona_text, substitute
from neuralrp.llm.tokens import LOCAL_COUNTER

Count = Callable[[str], int]
PER_MESSAGE = 4  # chat-template markup around each message
_HEAD_RANK = {"system": 0, "persona": 1, "canon_law": 2, "summary": 3, "card_full": 4, "capsule": 4}


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


def _cast_candidates(state: ChatState, count: Count) -> tuple[list[Candidate], dict[int, dict[str, Any]]]:
    out: list[Candidate] = []
    decisions: dict[int, dict[str, Any]] = {}
    speaker_id = state.speaker.id if state.speaker else None
    for index, member in enumerate(state.active_cast):
        char = member.character
        full = full_card_now(member, state.turn)
        first = member.first_turn if member.first_turn is not None else state.turn
        reset = member.reset_turn if member.reset_turn is not None else state.turn
        decisions[char.id] = {"turn": state.turn, "full_card": full, "first_turn": first, "reset_turn": reset}
        priority = 2 if char.id == speaker_id else 4
        source = {"character_id": char.id, "name": char.name}
        place = (0, _HEAD_RANK["card_full"], index)
        if full:
            text = card_text(char, state.user_name)
            out.append(Candidate(priority, index, [Section("card_full", text, count(text), source=source)], place,
                                 tags={"card": char.id}))
        capsule, origin = capsule_text(char, char.capsule, char.capsule_hash)
        capsule = substitute(capsule, char.name, state.user_name)
        section = Section("capsule", capsule, count(capsule), source={**source, "origin": origin})
        out.append(Candidate(priority + 10 if full else priority, index, [section], place,
                             tags={"capsule_for": char.id}))
    return out, decisions


def _head_candidates(state: ChatState, count: Count) -> list[Candidate]:
    system = state.system_prompt or mode_instruction(state)
    out = [Candidate(0, 0, [Section("system", system, count(system), source={"mode": state.mode})], (0, 0, 0))]
    persona = persona_text(state.persona, state.user_name)
    if persona:
        section = Section("persona", persona, count(persona), source={"name": state.user_name})
        out.append(Candidate(5, 0, [section], (0, 1, 0)))
    char_name = state.speaker.name if state.speaker else next((c.character.name for c in state.active_cast), "")
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


def _history_candidates(state: ChatState, count: Count, anchor: int | None) -> list[Candidate]:
    out = []
    multi = len(state.active_cast) > 1
    newest = len(state.history) - 1
    for index, msg in enumerate(state.history):
        text = msg.content
        if msg.role == "assistant" and multi and msg.speaker_name:
            text = f"{msg.speaker_name}: {text}"
        role = "user" if msg.role == "user" else "assistant"
        notes = [] if index == anchor else [note_section(n, count) for n in state.notes.get(msg.id, [])]
        counted = msg.token_count if (msg.token_count and text == msg.content
                                      and msg.token_counter not in (None, LOCAL_COUNTER)) else count(text)
        section = Section("history", text, counted + PER_MESSAGE, role=role, placement="turn",
                          source={"message_ids": [msg.id], "turn": msg.turn})
        priority = 1 if index == newest else 9
        out.append(Candidate(priority, newest - index, [*notes, section], (1, index, 1), contiguous="history"))
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


def _new_notes(state: ChatState, count: Count, anchor: int | None) -> list[Candidate]:
    """This turn's lore, reminders and the speaker's post-history instructions, placed before the anchor."""
    def place(sub: float, rank: int) -> tuple[float, ...]:
        return (1, anchor, 0, sub, rank) if anchor is not None else (0, 5, sub, rank)

    anchor_id = state.history[anchor].id if anchor is not None else None
    seen = {n.source.get("entry_id") for mid, notes in state.notes.items() if mid != anchor_id
            for n in notes if n.kind == "lore"}
    out = []
    char_name = state.speaker.name if state.speaker else next((c.character.name for c in state.active_cast), "")
    for rank, hit in enumerate(h for h in state.lore if h.entry.id not in seen and not h.entry.canon_law):
        text = substitute(hit.entry.content.strip(), char_name, state.user_name)
        src = {"entry_id": hit.entry.id, "world_id": hit.entry.world_id, "reason": hit.reason,
               "score": round(hit.score, 4), "matched": list(hit.matched)}
        if text:
            out.append(Candidate(7, rank, [Section("lore", text, count(text), source=src, placement="turn")],
                                 place(0, rank), tags={"persist": True}))
    for rank, (text, src) in enumerate(_scene_notes(state)):
        section = Section("reminder", text, count(text), source=src, placement="turn")
        out.append(Candidate(3, rank, [section], place(1, rank), tags={"persist": True}))
    if state.speaker is not None:
        post = substitute(state.speaker.field("post_history_instructions").strip(), state.speaker.name,
                          state.user_name)
        if post:
            src = {"character_id": state.speaker.id, "field": "post_history_instructions"}
            out.append(Candidate(3, 99, [Section("reminder", post, count(post), source=src, placement="turn")],
                                 place(2, 0)))
    return out


def _admit(candidates: list[Candidate], budget: int, lore_budget: int) -> list[Candidate]:
    """Greedy admission by priority; contiguous groups stop at their first miss."""
    remaining, lore_used = budget, 0
    admitted: list[Candidate] = []
    blocked: set[str] = set()
    carded: set[Any] = set()
    for cand in sorted(candidates, key=lambda c: (c.priority, c.order)):
        is_lore = cand.priority == 7
        if cand.contiguous in blocked or cand.tags.get("capsule_for", -1) in carded:
            continue
        if (is_lore and lore_used + cand.tokens > lore_budget) or cand.tokens > remaining:
            if cand.contiguous:
                blocked.add(cand.contiguous)
            continue
        admitted.append(cand)
        remaining -= cand.tokens
        lore_used += cand.tokens if is_lore else 0
        if "card" in cand.tags:
            carded.add(cand.tags["card"])
    return admitted


def _note_of(section: Section) -> dict[str, Any]:
    return {"kind": section.kind, "text": section.text, "source": section.source}


def build_prompt(state: ChatState, *, budget: int, count: Count) -> Prompt:
    """The prompt for the next reply: sections within `budget`, reset decisions, and this turn's notes."""
    anchor = _anchor(state)
    cast, decisions = _cast_candidates(state, count)
    candidates = [*_head_candidates(state, count), *cast, *_new_notes(state, count, anchor),
                  *_history_candidates(state, count, anchor)]
    admitted = sorted(_admit(candidates, budget, state.limits.lore_token_budget), key=lambda c: c.place)
    sections = [s for c in admitted for s in c.sections]
    carded = {s.source.get("character_id") for s in sections if s.kind == "card_full"}
    for char_id, decision in decisions.items():
        decision["full_card"] = char_id in carded
    notes = [_note_of(s) for c in admitted if c.tags.get("persist") for s in c.sections]
    anchor_id = state.history[anchor].id if anchor is not None else None
    return Prompt(budget=budget, sections=sections, decisions=decisions, turn=state.turn,
                  notes={"message_id": anchor_id, "notes": notes})
