"""The pure prompt builder: reset points, capsules, lore, canon law, budget, prefix stability."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neuralrp.context.builder import build_prompt, full_card_now
from neuralrp.context.state import CastState, Limits, Note
from neuralrp.llm.tokens import estimate_tokens
from tests.context.factories import char, conversation, entry, hit, msg, state, summary

A, B, C = char(1, "Ayla"), char(2, "Borin"), char(3, "Cyra")


def kinds_for(prompt: Any, cid: int) -> set[str]:
    return {s.kind for s in prompt.sections if s.source.get("character_id") == cid and s.kind in
            ("card_full", "capsule")}


def simulate(turns: int, members: list[CastState], **kw: Any) -> list[Any]:
    """Build turn after turn, persisting decisions like the engine does."""
    prompts = []
    history = conversation(1)
    for turn in range(1, turns + 1):
        prompt = build_prompt(state(turn, members, history, **kw), budget=6000, count=estimate_tokens)
        for member in members:
            d = prompt.decisions.get(member.id)
            if d:
                member.first_turn = member.first_turn if member.first_turn is not None else d["first_turn"]
                member.reset_turn = member.reset_turn if member.reset_turn is not None else d["reset_turn"]
        prompts.append(prompt)
    return prompts


@pytest.mark.parametrize(
    ("turn", "reset_turn", "full"),
    [(1, None, True), (1, 1, True), (2, 1, True), (3, 1, True), (4, 1, False), (30, 1, False),
     (27, 27, True), (29, 27, True), (30, 27, False)],
)
def test_full_card_window(turn: int, reset_turn: int | None, full: bool) -> None:
    assert full_card_now(CastState(A, first_turn=1, reset_turn=reset_turn), turn) is full


def test_three_characters_turns_one_to_four() -> None:
    members = [CastState(A), CastState(B), CastState(C)]
    prompts = simulate(4, members)
    for turn, prompt in enumerate(prompts, start=1):
        expected = {"card_full"} if turn <= 3 else {"capsule"}
        for member in members:
            assert kinds_for(prompt, member.id) == expected, (turn, member.character.name)
    assert [m.first_turn for m in members] == [1, 1, 1], "first appearance is stored once, never moved"


def test_return_after_absence_gets_card_for_three_turns() -> None:
    members = [CastState(A, first_turn=1, reset_turn=1), CastState(B, first_turn=1, reset_turn=1),
               CastState(C, first_turn=1, reset_turn=27, last_present_turn=27)]
    for turn, full in ((27, True), (28, True), (29, True), (30, False)):
        prompt = build_prompt(state(turn, members, conversation(2)), budget=6000, count=estimate_tokens)
        assert kinds_for(prompt, C.id) == ({"card_full"} if full else {"capsule"}), turn
        assert kinds_for(prompt, A.id) == {"capsule"}
    back = build_prompt(state(27, members, conversation(2)), budget=6000, count=estimate_tokens)
    assert any(s.kind == "reminder" and "Cyra is back" in s.text for s in back.sections)


def test_inactive_member_gets_nothing_and_leaving_is_noted() -> None:
    members = [CastState(A, first_turn=1, reset_turn=1), CastState(B, active=False, first_turn=1, reset_turn=1,
                                                                   left_turn=9)]
    prompt = build_prompt(state(10, members, conversation(2)), budget=6000, count=estimate_tokens)
    assert kinds_for(prompt, B.id) == set()
    assert any(s.kind == "reminder" and "Borin has left" in s.text for s in prompt.sections)


def test_narrator_mode_has_no_speaker_and_names_the_cast() -> None:
    members = [CastState(A, first_turn=1, reset_turn=1), CastState(B, first_turn=1, reset_turn=1)]
    prompt = build_prompt(state(8, members, conversation(2), speaker=None, mode="narrator"), budget=6000,
                          count=estimate_tokens)
    system, tail = prompt.sections[0], prompt.sections[-1]
    assert system.kind == "system" and "Ari" in system.text and "Ayla" not in system.text
    assert tail.kind == "instruction" and tail.placement == "tail"
    assert "Narrate" in tail.text and "Ayla, Borin" in tail.text
    assert kinds_for(prompt, A.id) == kinds_for(prompt, B.id) == {"capsule"}


def test_section_order_is_stable_first() -> None:
    members = [CastState(A, first_turn=1, reset_turn=1), CastState(B)]
    st_ = state(5, members, [*conversation(5), msg(11, "user", "And now?", 6)],
                summaries=[summary(1, 1, 2, "They met."), summary(2, 3, 3, "A fight.")],
                canon_law=[entry(9, "Magic always costs blood.", canon=True)], lore=[hit(4, "The north is cold.")],
                limits=Limits(canon_law_every=5))
    prompt = build_prompt(st_, budget=6000, count=estimate_tokens)
    kinds = [s.kind for s in prompt.sections]
    assert kinds[:5] == ["system", "persona", "canon_law", "summary", "summary"]
    assert {"card_full", "capsule"} == set(kinds[5:7]) and kinds[7] == "history"
    assert all(s.placement == "head" for s in prompt.sections[:7])
    last_user = max(i for i, s in enumerate(prompt.sections) if s.kind == "history" and s.role == "user")
    assert kinds[last_user - 3:last_user] == ["lore", "reminder", "reminder"], "notes sit before their user message"
    assert kinds[last_user + 1:] == ["instruction"], "who speaks next comes after the history"
    summaries = [s.source["turns"] for s in prompt.sections if s.kind == "summary"]
    assert summaries == [[1, 2], [3, 3]], "summaries oldest first"
    lore = next(s for s in prompt.sections if s.kind == "lore")
    assert lore.source == {"entry_id": 4, "world_id": 1, "reason": "keyword", "score": 1.0, "matched": ["x"]}
    canon = next(s for s in prompt.sections if s.kind == "canon_law")
    assert canon.source["reason"] == "canon_law" and canon.source["entry_id"] == 9


@pytest.mark.parametrize(("turn", "reminded"), [(3, True), (4, False), (5, False), (6, True)])
def test_canon_law_reminder_every_n_turns(turn: int, reminded: bool) -> None:
    st_ = state(turn, [CastState(A, first_turn=1, reset_turn=1)], conversation(2),
                canon_law=[entry(9, "The king is dead.", canon=True)], limits=Limits(canon_law_every=3))
    prompt = build_prompt(st_, budget=6000, count=estimate_tokens)
    assert any(s.kind == "canon_law" for s in prompt.sections), "canon law is always known"
    assert any(s.kind == "reminder" and "The king is dead." in s.text for s in prompt.sections) is reminded


def test_notes_go_before_the_last_user_message_and_the_instruction_after_it() -> None:
    history = [*conversation(3), msg(7, "user", "What now?", 4)]
    st_ = state(9, [CastState(A, first_turn=1, reset_turn=1)], history, lore=[hit(4, "Lore text.")])
    messages = build_prompt(st_, budget=6000, count=estimate_tokens).messages()
    assert messages[0].role == "system" and "Lore text." not in messages[0].content
    assert "Ayla" not in messages[0].content.split("\n\n")[0], "the first system line names no speaker"
    assert messages[-1].role == "user"
    text, instruction = messages[-1].content.rsplit("\n\n", 1)
    assert text.startswith("Lore text.") and text.endswith("What now?")
    assert instruction.startswith("[Ayla speaks next.")
    assert messages[-2].content.startswith("Reply 3"), "earlier turns are untouched"


def test_after_a_reply_the_instruction_is_a_last_user_message_and_continue_keeps_it_before_the_reply() -> None:
    history = [*conversation(3)]
    st_ = state(9, [CastState(A, first_turn=1, reset_turn=1)], history)
    messages = build_prompt(st_, budget=6000, count=estimate_tokens).messages()
    assert messages[-2].content.startswith("Reply 3") and messages[-1].role == "user"
    assert messages[-1].content.startswith("[Ayla speaks next.")
    st_ = state(9, [CastState(A, first_turn=1, reset_turn=1)], history, continuing=True)
    messages = build_prompt(st_, budget=6000, count=estimate_tokens).messages()
    assert messages[-1].role == "assistant" and messages[-1].content.startswith("Reply 3")
    assert messages[-2].role == "user" and messages[-2].content.endswith("[Ayla speaks next. " + (
        messages[-2].content.rsplit("[Ayla speaks next. ", 1)[1]))


def test_lore_budget_caps_lore() -> None:
    lore = [hit(i, f"Entry {i}: " + "fact " * 40) for i in range(20)]
    st_ = state(9, [CastState(A, first_turn=1, reset_turn=1)], conversation(3), lore=lore,
                limits=Limits(lore_token_budget=150))
    prompt = build_prompt(st_, budget=6000, count=estimate_tokens)
    chosen = [s for s in prompt.sections if s.kind == "lore"]
    assert 0 < sum(s.tokens for s in chosen) <= 150
    assert [s.source["entry_id"] for s in chosen] == list(range(len(chosen))), "highest relevance first"


def test_small_budget_keeps_newest_history_contiguous() -> None:
    st_ = state(40, [CastState(A, first_turn=1, reset_turn=1)], conversation(40))
    prompt = build_prompt(st_, budget=700, count=estimate_tokens)
    history = [s.source["message_ids"][0] for s in prompt.sections if s.kind == "history"]
    assert history == list(range(history[0], 81)), "newest messages, no gaps"
    assert prompt.total_tokens <= 700


def common_prefix_share(before: str, after: str) -> float:
    shared = 0
    for x, y in zip(before, after, strict=False):
        if x != y:
            break
        shared += 1
    return estimate_tokens(before[:shared]) / max(1, estimate_tokens(before))


def render(prompt: Any) -> str:
    return "".join(f"<{m.role}>{m.content}" for m in prompt.messages())


def test_consecutive_turns_share_90_percent_prefix_while_lore_changes() -> None:
    members = [CastState(A, first_turn=1, reset_turn=1), CastState(B, first_turn=1, reset_turn=1)]
    history = [*conversation(30), msg(61, "user", "Line " + "walk " * 12, 31)]
    big_lore = [hit(i, f"Lore {i}: " + "fact " * 60) for i in range(1, 4)]
    first = build_prompt(state(31, members, history, lore=big_lore), budget=8000, count=estimate_tokens)
    kept = {first.notes["message_id"]: [Note(n["kind"], n["text"], n["source"]) for n in first.notes["notes"]]}
    assert first.notes["message_id"] == 61 and len(kept[61]) == 3
    history2 = [*history, msg(62, "assistant", "Reply " + "answer " * 12, 31, "Ayla"),
                msg(63, "user", "Next " + "walk " * 12, 32)]
    other_lore = [hit(i, f"Lore {i}: " + "fact " * 60) for i in range(4, 7)]
    second = build_prompt(state(32, members, history2, lore=[*big_lore, *other_lore], notes=kept), budget=8000,
                          count=estimate_tokens)
    share = common_prefix_share(render(first), render(second))
    assert share >= 0.9, share
    lore_ids = [s.source["entry_id"] for s in second.sections if s.kind == "lore"]
    assert lore_ids == [1, 2, 3, 4, 5, 6], "old notes stay in place, new ones are not repeated"


@settings(max_examples=120, deadline=None)
@given(turns=st.integers(1, 60), budget=st.integers(40, 3000), lore_n=st.integers(0, 15), words=st.integers(1, 80),
       cast_n=st.integers(1, 4))
def test_prompt_never_exceeds_budget(turns: int, budget: int, lore_n: int, words: int, cast_n: int) -> None:
    members = [CastState(char(i + 1, name)) for i, name in enumerate(["Ayla", "Borin", "Cyra", "Dax"][:cast_n])]
    st_ = state(turns, members, conversation(turns, words), lore=[hit(i, "lore " * words) for i in range(lore_n)],
                summaries=[summary(1, 1, 1, "s " * words)], canon_law=[entry(99, "law " * words, canon=True)])
    prompt = build_prompt(st_, budget=budget, count=estimate_tokens)
    assert prompt.total_tokens <= budget
    assert prompt.total_tokens == sum(s.tokens for s in prompt.sections)
