"""Prompt layout for the KV cache (issue 17): a stable head, the reply instruction after the history, planned
breaks only, capsules kept until a break, and lore within its budget over a whole lore-heavy chat."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from neuralrp.chats.store import Message
from neuralrp.context.builder import build_prompt
from neuralrp.context.capsules import card_digest
from neuralrp.context.engine import calibrated_count
from neuralrp.context.layout import Layout, Pin, layout_of, prefix_break
from neuralrp.context.sections import Prompt
from neuralrp.context.state import CastState, Limits, Note, SummaryItem
from neuralrp.llm.tokens import LOCAL_COUNTER, estimate_tokens
from tests.context.factories import char, conversation, hit, msg, state

A, B, C = char(1, "Ayla"), char(2, "Borin"), char(3, "Cyra")
BUDGET = 6000


def settled() -> list[CastState]:
    return [CastState(m, first_turn=1, reset_turn=1) for m in (A, B, C)]


def render(prompt: Prompt) -> str:
    """The prompt as a chat-template server would feed it to its model."""
    return "".join(f"<|im_start|>{m.role}\n{m.content}<|im_end|>\n" for m in prompt.messages())


def remembered(prompt: Prompt) -> Layout:
    """What the engine stores after a reply (loader.save_layout)."""
    return layout_of(prompt.sections, {cid: Pin(*pin) for cid, pin in prompt.capsules.items()})


def tail_start(prompt: Prompt) -> int:
    """Where the previous prompt's reply instruction begins in its rendering."""
    text = render(prompt)
    instruction = next(s.text for s in prompt.sections if s.kind == "instruction")
    return text.index(instruction) - 2  # the blank line joining it to the user message


def test_the_head_is_byte_identical_across_a_speaker_change() -> None:
    history = [*conversation(10), msg(21, "user", "Borin, what do you think?", 11)]
    first = build_prompt(state(11, settled(), history, speaker=A), budget=BUDGET, count=estimate_tokens)
    other = build_prompt(state(11, settled(), history, speaker=B, layout=remembered(first)), budget=BUDGET,
                         count=estimate_tokens)
    before, after = render(first), render(other)
    cut = tail_start(first)
    assert before[:cut] == after[:cut], "everything up to the reply instruction is the same bytes"
    assert first.messages()[0] == other.messages()[0]
    assert "Ayla speaks next" in before[cut:] and "Borin speaks next" in after[cut:]
    assert other.prefix["ordinary"] and other.prefix["kept_tokens"] >= 0.9 * other.prefix["previous_tokens"]


def test_next_turn_only_appends_and_the_break_is_marked_after_the_cached_prompt() -> None:
    history = [*conversation(10), msg(21, "user", "Borin, what do you think?", 11)]
    first = build_prompt(state(11, settled(), history, speaker=B), budget=BUDGET, count=estimate_tokens)
    history2 = [*history, msg(22, "assistant", "Borin: I think we go north.", 11, "Borin"),
                msg(23, "user", "Cyra, and you?", 12)]
    notes = {21: [Note(n["kind"], n["text"], n["source"]) for n in first.notes["notes"]]}
    second = build_prompt(state(12, settled(), history2, speaker=C, notes=notes, layout=remembered(first)),
                          budget=BUDGET, count=estimate_tokens)
    assert render(second).startswith(render(first)[:tail_start(first)])
    at = second.prefix["index"]
    assert second.sections[at].source["message_ids"] == [22], "the marker sits before the last reply"
    assert second.prefix["ordinary"] and second.prefix["reason"].startswith("ordinary turn")
    assert second.public()["prefix"] == second.prefix


@dataclass
class Chat:
    """A chat replayed turn by turn the way the engine persists it (notes, decisions, layout)."""

    members: list[CastState]
    history: list[Message] = field(default_factory=list)
    notes: dict[int, list[Note]] = field(default_factory=dict)
    summaries: list[SummaryItem] = field(default_factory=list)
    layout: Layout | None = None
    limits: Limits = field(default_factory=Limits)

    def build(self, turn: int, speaker: Any, lore: list[Any] | None = None, budget: int = BUDGET) -> Prompt:
        prompt = build_prompt(state(turn, self.members, list(self.history), speaker=speaker, lore=lore or [],
                                    notes=dict(self.notes), summaries=list(self.summaries), layout=self.layout,
                                    limits=self.limits), budget=budget, count=estimate_tokens)
        for member in self.members:
            d = prompt.decisions.get(member.id)
            if d:
                member.first_turn = member.first_turn if member.first_turn is not None else d["first_turn"]
                member.reset_turn = member.reset_turn if member.reset_turn is not None else d["reset_turn"]
        for mid, kept in prompt.notes["rewrite"].items():  # loader.save_notes
            self.notes[mid] = [Note(n["kind"], n["text"], n["source"]) for n in kept]
        if prompt.notes["message_id"] is not None:
            self.notes[prompt.notes["message_id"]] = [Note(n["kind"], n["text"], n["source"])
                                                      for n in prompt.notes["notes"]]
        self.layout = remembered(prompt)
        return prompt

    def say(self, turn: int, user: str, reply: str, speaker: str) -> None:
        self.history.append(msg(len(self.history) * 2 + 1000 + 1, "user", user, turn))
        self.history.append(msg(len(self.history) * 2 + 1000 + 1, "assistant", reply, turn, speaker))

    def fold(self, turn: int, keep_turns: int) -> None:
        """What the summarizer does: older turns become a summary, their messages (and notes) leave."""
        old = [m for m in self.history if m.turn <= turn - keep_turns]
        self.summaries.append(SummaryItem(len(self.summaries) + 1, "They travelled. " * 20, old[0].turn,
                                          old[-1].turn, old[0].id, old[-1].id))
        self.history = [m for m in self.history if m.turn > turn - keep_turns]
        self.notes = {mid: kept for mid, kept in self.notes.items() if any(m.id == mid for m in self.history)}


def test_breaks_only_at_reset_window_end_and_fold_and_each_is_explained() -> None:
    chat = Chat([CastState(A), CastState(B), CastState(C)])
    speakers = [A, B, C]
    reasons: dict[int, str] = {}
    for turn in range(1, 13):
        chat.history.append(msg(2000 + turn * 2, "user", f"Line {turn} " + "walk " * 20, turn))
        prompt = chat.build(turn, speakers[turn % 3])
        reasons[turn] = prompt.prefix["reason"]
        chat.history.append(msg(2001 + turn * 2, "assistant", f"Reply {turn} " + "answer " * 20, turn,
                                speakers[turn % 3].name))
        if turn == 8:
            chat.fold(turn, keep_turns=3)
    assert reasons[1].startswith("no earlier reply")
    assert reasons[4].startswith("reset window ended"), "turn 4: the full cards became capsules"
    assert reasons[9].startswith("summary fold")
    ordinary = [t for t in reasons if t not in (1, 4, 9)]
    assert all(reasons[t].startswith("ordinary turn") for t in ordinary), reasons


def test_a_capsule_written_later_waits_for_a_planned_break() -> None:
    borin = char(2, "Borin")
    members = [CastState(A, first_turn=1, reset_turn=1), CastState(borin, first_turn=1, reset_turn=1)]
    history = [*conversation(6), msg(13, "user", "Onwards.", 7)]

    def borins_capsule(layout: Layout | None, **kw: Any) -> tuple[Prompt, str]:
        prompt = build_prompt(state(7, members, history, speaker=A, layout=layout, **kw), budget=BUDGET,
                              count=estimate_tokens)
        return prompt, next(s.text for s in prompt.sections if s.kind == "capsule" and s.source["character_id"] == 2)

    first, rules = borins_capsule(None)
    assert first.capsules[2][2] == "rules"
    borin.capsule, borin.capsule_hash = "[Borin — an LLM capsule]", card_digest(borin)
    kept, text = borins_capsule(remembered(first))
    assert text == rules, "the capsule the last reply used stays while nothing else breaks the prefix"
    assert kept.prefix["index"] is None, "the same prompt: all of it stays cached"
    folded, text = borins_capsule(remembered(first), summaries=[SummaryItem(1, "They met.", 1, 2, 1, 4)])
    assert text == "[Borin — an LLM capsule]", "taken at the fold, where the prefix breaks anyway"
    assert folded.prefix["reason"].startswith("summary fold")
    edited = char(2, "Borin", personality="grim and silent")
    members[1] = CastState(edited, first_turn=1, reset_turn=1)
    _, text = borins_capsule(remembered(folded))
    assert "grim and silent" in text, "an edited card is not hidden behind the old capsule"


def lore_world(turn: int) -> list[Any]:
    """A lore-heavy world: each turn brings three entries that fire now (some old, some new)."""
    ids = [turn % 17, (turn * 5) % 17, (turn * 7 + 3) % 17]
    return [hit(100 + i, f"Lore {i}: " + "the old kingdom kept its records in stone " * 6) for i in dict.fromkeys(ids)]


def replay_lore_chat(turns: int, lore_budget: int, *, with_lore: bool, budget: int = 2600) -> tuple[list[int], int]:
    """Lore tokens in each prompt and the folds a 0.8-of-budget trigger asks for (summarizer._needs_fold)."""
    chat = Chat(settled(), limits=Limits(lore_token_budget=lore_budget))
    reserve = 0 if with_lore else lore_budget  # history alone: the lore budget held back in full
    lore_totals, folds = [], 0
    for turn in range(1, turns + 1):
        chat.history.append(msg(3000 + turn * 2, "user", f"Turn {turn}: " + "we ride on through the hills " * 4,
                                turn))
        prompt = chat.build(turn, settled()[turn % 3].character, lore_world(turn) if with_lore else [],
                            budget=budget)
        lore_totals.append(sum(s.tokens for s in prompt.sections if s.kind == "lore"))
        chat.history.append(msg(3001 + turn * 2, "assistant", f"Reply {turn}: " + "the road bends east " * 5,
                                turn, "Ayla"))
        if prompt.total_tokens + reserve > 0.8 * budget:
            chat.fold(turn, keep_turns=6)
            folds += 1
    return lore_totals, folds


def test_lore_never_passes_its_budget_and_folds_no_more_often_than_history_alone_requires() -> None:
    lore_totals, folds = replay_lore_chat(40, 800, with_lore=True)
    assert max(lore_totals) <= 800, lore_totals
    assert max(lore_totals) > 600, "the lore budget is used, not starved"
    _, history_folds = replay_lore_chat(40, 800, with_lore=False)
    assert 1 <= folds <= history_folds, (folds, history_folds)


def test_dropping_stale_lore_happens_all_at_once_at_the_budget_and_is_marked() -> None:
    chat = Chat(settled(), limits=Limits(lore_token_budget=150))
    reasons, drops = [], 0
    for turn in range(1, 16):
        chat.history.append(msg(4000 + turn * 2, "user", f"Turn {turn} " + "go " * 10, turn))
        lore = [hit(200 + turn, f"Fact {turn}: " + "a thing worth knowing " * 5)]
        prompt = chat.build(turn, A, lore)
        drops += bool(prompt.notes["rewrite"])
        reasons.append(prompt.prefix["reason"])
        assert sum(s.tokens for s in prompt.sections if s.kind == "lore") <= 150
        chat.history.append(msg(4001 + turn * 2, "assistant", f"Reply {turn} " + "ok " * 10, turn, "Ayla"))
    assert any(r.startswith("lore notes dropped") for r in reasons), reasons
    assert 1 <= drops <= 5, "stale notes go together, not one per turn"
    assert sum(r.startswith("ordinary turn") for r in reasons) >= 9


def test_a_second_speaker_and_a_regenerate_reuse_the_answered_message_as_it_was_sent() -> None:
    history = [*conversation(6), msg(13, "user", "Ayla and Borin, what now?", 7)]
    first = build_prompt(state(7, settled(), history, speaker=A, lore=[hit(5, "The pass is closed.")]),
                         budget=BUDGET, count=estimate_tokens)
    notes = {13: [Note(n["kind"], n["text"], n["source"]) for n in first.notes["notes"]]}
    again = build_prompt(state(7, settled(), history, speaker=A, lore=[hit(6, "Other lore now.")], notes=notes,
                               layout=remembered(first)), budget=BUDGET, count=estimate_tokens)
    assert again.prefix["index"] is None, "Regenerate: the same prompt, all of it cached"
    answered = [*history, msg(14, "assistant", "We climb.", 7, "Ayla")]
    borin = build_prompt(state(7, settled(), answered, speaker=B, lore=[hit(6, "Other lore now.")], notes=notes,
                               layout=remembered(first)), budget=BUDGET, count=estimate_tokens)
    assert borin.prefix["ordinary"] and borin.sections[borin.prefix["index"]].source["message_ids"] == [14]
    assert [s.source["entry_id"] for s in borin.sections if s.kind == "lore"] == [5]
    assert borin.notes["message_id"] is None and not borin.notes["rewrite"], "nothing to store again"


def test_history_over_budget_without_a_fold_breaks_rarely_not_every_turn() -> None:
    chat = Chat(settled())
    reasons = []
    for turn in range(1, 61):
        chat.history.append(msg(5000 + turn * 2, "user", f"Turn {turn} " + "walk " * 30, turn))
        prompt = chat.build(turn, [A, B, C][turn % 3], budget=3000)
        reasons.append(prompt.prefix["reason"])
        assert prompt.total_tokens <= 3000
        chat.history.append(msg(5001 + turn * 2, "assistant", f"Reply {turn} " + "answer " * 30, turn, "Ayla"))
    cuts = [t for t, r in enumerate(reasons, start=1) if r.startswith("history over budget")]
    assert cuts, "the budget was passed"
    over = len(reasons) - cuts[0] + 1
    assert len(cuts) <= over / 4, (cuts, over)
    assert all(reasons[t - 1].startswith("ordinary") for t in range(cuts[0], 61) if t not in cuts)


def test_local_counts_are_scaled_to_the_servers_tokenizer() -> None:
    text = "The old kingdom kept its records in stone. " * 5
    counted = [replace(msg(i, "user", text, 1), token_count=int(estimate_tokens(text) * 1.06) + 1,
                       token_counter="llamacpp_python:smollm2") for i in range(1, 9)]
    scaled = calibrated_count(counted)
    assert estimate_tokens(text) * 1.06 <= scaled(text) <= estimate_tokens(text) * 1.08
    assert calibrated_count(counted[:3])(text) == estimate_tokens(text), "too few server counts: no scaling"
    local = [replace(m, token_counter=LOCAL_COUNTER) for m in counted]
    assert calibrated_count(local)(text) == estimate_tokens(text)


def test_no_layout_or_same_prompt_is_described() -> None:
    prompt = build_prompt(state(3, settled(), conversation(2)), budget=BUDGET, count=estimate_tokens)
    assert prompt.prefix["reason"].startswith("no earlier reply")
    same = prefix_break(remembered(prompt), prompt.sections)
    assert same["index"] is None and same["kept_tokens"] == same["previous_tokens"] > 0
