"""Scene summaries on a real SQLite file with a fake LLM server: folding, condensing, failures, scheduling."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest

from neuralrp.chats import service, store
from neuralrp.config import Settings
from neuralrp.context.sections import Prompt, Section
from neuralrp.db.connection import Database
from neuralrp.db.migrations import migrate
from neuralrp.llm.client import OpenAICompatBackend
from neuralrp.llm.tokens import estimate_tokens
from neuralrp.llm.types import Completion
from neuralrp.turns import summarizer as summ
from neuralrp.turns.summarizer import (
    CONDENSE_INSTRUCTIONS,
    SCENE_INSTRUCTIONS,
    Summarizer,
    clean_summary,
    group_scenes,
    plan_scenes,
    store_scene,
    unfold_summary,
)
from tests.api.chat_helpers import CARD
from tests.fakes import FakeLLM
from tests.waiting import async_wait_until

TURNS = 30


def user_text(turn: int) -> str:
    """A user message that names its turn (so archived text can be found again)."""
    return (f"Turn {turn}. Ari follows the river path past marker {turn} and asks Seraphina about the old "
            f"tower, the missing silver lantern and the promise she made at the northern gate.")


def reply_text(turn: int) -> str:
    """An assistant reply that names its turn."""
    return (f"Reply {turn}. Seraphina answers softly that the tower fell in the winter war, that the ferryman "
            f"Oskar took the lantern, and that she will guard the gate until Ari returns with proof {turn}.")


def seed_chat(conn: Any, turns: int = TURNS) -> int:
    """A chat with Seraphina: the greeting (turn 0), then `turns` user/assistant turns."""
    chat_id = service.create_chat(conn, character_ids=[], card=CARD, persona={"name": "Ari"})
    add_turns(conn, chat_id, 1, turns)
    return chat_id


def add_turns(conn: Any, chat_id: int, first: int, last: int) -> None:
    """Append turns first..last the way the chat loop stores them."""
    char = service.active_cast(conn, chat_id)[0]
    for turn in range(first, last + 1):
        msg = service.post_user_message(conn, chat_id, user_text(turn))
        assert msg.turn == turn
        store.insert_message(conn, chat_id, role="assistant", content=reply_text(turn), turn=turn,
                             character_id=char.id, speaker_name=char.name)


def summary_rows(conn: Any, chat_id: int, *, archived: int | None = None) -> list[dict[str, Any]]:
    """Summaries of a chat, oldest first."""
    where = "" if archived is None else f" AND archived = {archived}"
    return list(conn.execute(f"SELECT * FROM summaries WHERE chat_id = ?{where} ORDER BY start_turn, id",
                             (chat_id,)))


def snapshot(conn: Any, chat_id: int) -> tuple[Any, ...]:
    """Everything a fold may change, to compare before and after."""
    msgs = list(conn.execute("SELECT id, archived, archived_reason, summary_id, content FROM messages"
                             " WHERE chat_id = ? ORDER BY seq", (chat_id,)))
    sums = list(conn.execute("SELECT * FROM summaries WHERE chat_id = ?", (chat_id,)))
    return tuple(map(str, msgs)), tuple(map(str, sums)), store.get_chat(conn, chat_id).turn


def summary_requests(fake: FakeLLM) -> list[dict[str, Any]]:
    """The non-streamed chat requests the fake received (summaries), in order."""
    return [r.json for r in fake.chat_requests() if not r.json.get("stream")]


async def wait_idle(worker: Summarizer, chat_id: int) -> None:
    """Until no fold runs for the chat."""
    await async_wait_until(lambda: not worker.running(chat_id), what=f"the fold of chat {chat_id} to end")


async def test_fold_keeps_recent_turns_and_archives_the_rest(database: Database, summarizer: Summarizer) -> None:
    with database.session() as conn:
        chat_id = seed_chat(conn)
        total = conn.execute("SELECT count(*) AS n FROM messages").fetchone()["n"]
    written = await summarizer.fold(chat_id)
    with database.session() as conn:
        sums = summary_rows(conn, chat_id)
        live = store.list_messages(conn, chat_id)
        archived = list(conn.execute("SELECT * FROM messages WHERE chat_id = ? AND archived = 1 ORDER BY seq",
                                     (chat_id,)))
        found = conn.execute("SELECT turn, archived_reason FROM messages WHERE archived = 1 AND content LIKE ?",
                             ("%proof 3.%",)).fetchall()
        assert conn.execute("SELECT count(*) AS n FROM messages").fetchone()["n"] == total
        assert store.get_chat(conn, chat_id).turn == TURNS
    assert written == len(sums) >= 2
    assert sums[0]["start_turn"] == 0 and sums[-1]["end_turn"] == TURNS - 6
    for before, after in zip(sums, sums[1:], strict=False):
        assert after["start_turn"] == before["end_turn"] + 1
    assert all(s["level"] == 0 and not s["archived"] for s in sums)
    assert {m.turn for m in live} == set(range(TURNS - 5, TURNS + 1))
    assert len(archived) == 1 + 2 * (TURNS - 6)
    assert all(m["archived_reason"] == "summarized" and m["summary_id"] for m in archived)
    assert found == [{"turn": 3, "archived_reason": "summarized"}]
    for s in sums:
        mine = [m for m in archived if m["summary_id"] == s["id"]]
        assert (mine[0]["id"], mine[-1]["id"]) == (s["first_message_id"], s["last_message_id"])
        assert (mine[0]["turn"], mine[-1]["turn"]) == (s["start_turn"], s["end_turn"])


async def test_request_is_the_scene_transcript_in_order(database: Database, summarizer: Summarizer,
                                                        fake: FakeLLM) -> None:
    with database.session() as conn:
        chat_id = seed_chat(conn)
    fake.enqueue("Seraphina healed Ari in the glade and promised to guard the northern gate.")
    await summarizer.fold(chat_id)
    with database.session() as conn:
        first = summary_rows(conn, chat_id)[0]
        rows = list(conn.execute("SELECT speaker_name, content, turn FROM messages WHERE summary_id = ?"
                                 " ORDER BY seq", (first["id"],)))
    assert first["text"] == "Seraphina healed Ari in the glade and promised to guard the northern gate."
    expected = (f"Scene (turns 0-{rows[-1]['turn']}):\n\n"
                + "\n\n".join(f"{r['speaker_name']}: {r['content']}" for r in rows))
    sent = summary_requests(fake)[0]
    assert sent["messages"] == [{"role": "system", "content": SCENE_INSTRUCTIONS},
                                {"role": "user", "content": expected}]
    assert rows[0]["content"] == "You're awake, Ari." and rows[1]["speaker_name"] == "Ari"
    assert sent["max_tokens"] == 250 and sent["temperature"] == pytest.approx(0.3) and sent["stream"] is False


async def test_scenes_hold_whole_turns_of_about_the_scene_size(database: Database, summarizer: Summarizer) -> None:
    with database.session() as conn:
        chat_id = seed_chat(conn)
    await summarizer.fold(chat_id)
    with database.session() as conn:
        rows = list(conn.execute("SELECT turn, summary_id, content FROM messages WHERE archived = 1"))
    by_turn: dict[int, set[int]] = {}
    size: dict[int, int] = {}
    for r in rows:
        by_turn.setdefault(r["turn"], set()).add(r["summary_id"])
        size[r["summary_id"]] = size.get(r["summary_id"], 0) + estimate_tokens(r["content"])
    assert all(len(ids) == 1 for ids in by_turn.values())
    assert max(size.values()) <= summ.SCENE_TOKENS and min(list(size.values())[:-1]) > summ.SCENE_TOKENS // 2


def test_group_scenes_never_crosses_a_live_summary() -> None:
    def msg(i: int, turn: int) -> store.Message:
        return store.Message(i, 1, i, turn, "user", None, "Ari", "word " * 10, "complete")

    messages = [msg(i, t) for i, t in enumerate([1, 1, 2, 3, 7, 8])]
    assert [[m.turn for m in s] for s in group_scenes(messages, 10_000)] == [[1, 1, 2, 3, 7, 8]]
    assert [[m.turn for m in s] for s in group_scenes(messages, 10_000, frozenset({4}))] == [[1, 1, 2, 3], [7, 8]]
    assert [[m.turn for m in s] for s in group_scenes(messages, 25)] == [[1, 1], [2, 3], [7, 8]]


async def test_condenses_older_summaries_above_the_word_limit(make_settings: Any, fake: FakeLLM,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    settings = make_settings(llm={"base_url": "http://llm.test/v1"}, context={"summary_word_limit": 100})
    monkeypatch.setattr(summ, "SCENE_TOKENS", 600)
    db = Database(settings.db_path)
    with db.session() as conn:
        migrate(conn)
        chat_id = seed_chat(conn)
        scenes = len(plan_scenes(conn, chat_id, 6, 600))
    assert scenes >= 4
    texts = [f"Scene {i} summary: " + " ".join(f"Seraphina guarded gate {n}." for n in range(10))
             for i in range(scenes)]  # long enough to pass the word limit, never a repeated sentence
    fake.enqueue(*texts, "Ari and Seraphina searched for the lantern; Oskar the ferryman had it.")
    backend = OpenAICompatBackend(settings.llm, transport=httpx.ASGITransport(app=fake.app))
    worker = Summarizer(db, lambda: settings, lambda: backend)
    try:
        assert await worker.fold(chat_id) == scenes + 1
    finally:
        await backend.aclose()
    with db.session() as conn:
        live = summary_rows(conn, chat_id, archived=0)
        children = summary_rows(conn, chat_id, archived=1)
        archived_msgs = conn.execute("SELECT count(*) AS n FROM messages WHERE archived = 1").fetchone()["n"]
    top = live[0]
    assert [s["level"] for s in live] == [1, 0, 0]
    assert top["text"] == "Ari and Seraphina searched for the lantern; Oskar the ferryman had it."
    assert len(children) == scenes - 2 and all(c["parent_id"] == top["id"] for c in children)
    assert (top["start_turn"], top["end_turn"]) == (0, children[-1]["end_turn"])
    assert (top["first_message_id"], top["last_message_id"]) == (children[0]["first_message_id"],
                                                                 children[-1]["last_message_id"])
    assert live[1]["start_turn"] == top["end_turn"] + 1
    assert archived_msgs == 1 + 2 * (TURNS - 6)
    condense = summary_requests(fake)[-1]["messages"]
    assert condense[0] == {"role": "system", "content": CONDENSE_INSTRUCTIONS}
    assert condense[1]["content"] == "\n\n".join(f"[Turns {c['start_turn']}-{c['end_turn']}] {c['text']}"
                                                 for c in children)
    with db.session() as conn:
        restored = unfold_summary(conn, top["id"])
        assert restored["restored_summaries"] == len(children) and restored["restored_messages"] == 0
        assert [r["id"] for r in summary_rows(conn, chat_id, archived=0)] == [c["id"] for c in children] + [
            s["id"] for s in live[1:]]
        assert all(r["parent_id"] is None for r in summary_rows(conn, chat_id, archived=0))
        assert conn.execute("SELECT count(*) AS n FROM messages WHERE archived = 1").fetchone()["n"] == archived_msgs


async def test_llm_error_changes_nothing_and_logs_one_warning(database: Database, summarizer: Summarizer,
                                                              fake: FakeLLM, caplog: pytest.LogCaptureFixture) -> None:
    with database.session() as conn:
        chat_id = seed_chat(conn)
        before = snapshot(conn, chat_id)
    fake.fault("status", code=500)
    with caplog.at_level(logging.WARNING, logger="neuralrp.turns.summarizer"):
        assert await summarizer.fold(chat_id) == 0
    with database.session() as conn:
        assert snapshot(conn, chat_id) == before
    warnings = [r for r in caplog.records if r.name == "neuralrp.turns.summarizer"]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING
    assert await summarizer.fold(chat_id) >= 2  # the next try works


@pytest.mark.parametrize("answer", ["", "   ", "Okay."])
async def test_empty_or_malformed_answer_is_not_stored(database: Database, summarizer: Summarizer, fake: FakeLLM,
                                                       answer: str) -> None:
    with database.session() as conn:
        chat_id = seed_chat(conn)
        before = snapshot(conn, chat_id)
    fake.enqueue(answer)
    assert await summarizer.fold(chat_id) == 0
    with database.session() as conn:
        assert snapshot(conn, chat_id) == before


async def test_missing_backend_postpones(database: Database, llm_settings: Settings,
                                         caplog: pytest.LogCaptureFixture) -> None:
    with database.session() as conn:
        chat_id = seed_chat(conn)
        before = snapshot(conn, chat_id)
    worker = Summarizer(database, lambda: llm_settings, lambda: None)
    with caplog.at_level(logging.WARNING, logger="neuralrp.turns.summarizer"):
        assert await worker.fold(chat_id) == 0
    assert "no LLM server is configured" in caplog.text
    with database.session() as conn:
        assert snapshot(conn, chat_id) == before


def test_clean_summary_strips_labels_and_cut_sentences() -> None:
    assert clean_summary(Completion("Summary: Ari woke in the glade.", "stop")) == "Ari woke in the glade."
    cut = Completion("Ari woke in the glade. Seraphina tended her wounds and then", "length")
    assert clean_summary(cut) == "Ari woke in the glade."
    assert clean_summary(Completion("\n\n", "stop")) is None


def test_a_message_changed_meanwhile_is_not_archived(database: Database) -> None:
    with database.session() as conn:
        chat_id = seed_chat(conn, turns=10)
        (scene,) = plan_scenes(conn, chat_id, 6, 1500)
        store.set_message_text(conn, scene[1].id, "edited while the LLM was writing")
        assert store_scene(conn, chat_id, scene, "A summary of the scene.") is None
        assert summary_rows(conn, chat_id) == []
        assert conn.execute("SELECT count(*) AS n FROM messages WHERE archived = 1").fetchone()["n"] == 0


def _prompt(budget: int, tokens: int, message_ids: list[int]) -> Prompt:
    sections = [Section("history", "text", tokens // max(1, len(message_ids)), role="user", placement="turn",
                        source={"message_ids": [mid]}) for mid in message_ids]
    return Prompt(budget=budget, sections=sections)


async def test_after_reply_folds_only_when_needed(database: Database, summarizer: Summarizer,
                                                  fake: FakeLLM) -> None:
    with database.session() as conn:
        chat_id = seed_chat(conn, turns=10)
        ids = [m.id for m in store.list_messages(conn, chat_id)]
    await summarizer.after_reply(chat_id, _prompt(10_000, 1_000, ids))  # all history fits, well under 80 %
    await wait_idle(summarizer, chat_id)
    assert summary_requests(fake) == []
    await summarizer.after_reply(chat_id, _prompt(10_000, 1_000, ids[-8:]))  # history was cut
    await wait_idle(summarizer, chat_id)
    assert len(summary_requests(fake)) == 1
    with database.session() as conn:
        add_turns(conn, chat_id, 11, 14)
        ids = [m.id for m in store.list_messages(conn, chat_id)]
    await summarizer.after_reply(chat_id, _prompt(10_000, 8_100, ids))  # over summarize_at
    await wait_idle(summarizer, chat_id)
    assert len(summary_requests(fake)) == 2


async def test_one_fold_per_chat_and_aclose_leaves_db_consistent(database: Database, summarizer: Summarizer,
                                                                 fake: FakeLLM) -> None:
    with database.session() as conn:
        chat_id = seed_chat(conn)
        before = snapshot(conn, chat_id)
    fake.fault("slow", first=5)
    prompt = _prompt(1_000, 900, [])
    await summarizer.after_reply(chat_id, prompt)
    task = summarizer._tasks[chat_id]
    await summarizer.after_reply(chat_id, prompt)
    assert summarizer._tasks[chat_id] is task
    await async_wait_until(lambda: fake.in_flight, what="the summary request to reach the LLM")
    await summarizer.aclose()
    assert task.cancelled() and not summarizer.running(chat_id)
    assert len(summary_requests(fake)) == 1
    with database.session() as conn:
        assert snapshot(conn, chat_id) == before
