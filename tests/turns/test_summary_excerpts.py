"""Excerpt summaries (issue 17): when the model's scene summary is rejected or fails while messages are already
leaving the prompt, the scene is folded as an excerpt of its own messages (origin 'extract'); otherwise nothing
is stored and the summary is retried later. Real SQLite files and the fake LLM."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from neuralrp.chats import store
from neuralrp.db.connection import Database, connect, driver
from neuralrp.db.migrations import bundled_migrations, migrate
from neuralrp.turns.extract import EXCERPT_WORDS, LINE_WORDS, scene_excerpt
from neuralrp.turns.output_checks import summary_problem
from neuralrp.turns.summarizer import MIN_SUMMARY_WORDS, Summarizer, excerpt_of, plan_scenes
from tests.api.chat_helpers import chat_client, new_chat
from tests.fakes import FakeLLM
from tests.turns.test_summarizer import (
    TURNS,
    _prompt,
    add_turns,
    reply_text,
    seed_chat,
    snapshot,
    summary_requests,
    summary_rows,
    user_text,
    wait_idle,
)
from tests.waiting import wait_until

# What SmolLM2-135M answered when asked for a scene summary: the transcript continued, in a loop.
LOOP = ("Ari: Seraphina, I'm sorry, Ari. My apologies for my previous comment. The Ferryman of the Grey River "
        "once told me. My apologies for my previous comment.")
_EMPHASIS = re.compile(r"[*_]")


def assert_clean_excerpt(text: str, scene: list[tuple[str, str]]) -> None:
    """Within the word limit, no junk or repetition, and every line is `Speaker: words that speaker wrote`."""
    assert len(text.split()) <= EXCERPT_WORDS
    assert summary_problem(text, min_words=MIN_SUMMARY_WORDS, max_words=EXCERPT_WORDS) is None
    said = {(speaker, " ".join(_EMPHASIS.sub("", content).split())) for speaker, content in scene}
    for line in text.splitlines():
        speaker, _, sentence = line.partition(": ")
        words = sentence.removesuffix("…")
        assert any(who == speaker and words in content for who, content in said), line
        assert len(sentence.split()) <= LINE_WORDS


def scene_lines(conn: Any, summary_id: int) -> list[tuple[str, str]]:
    """(speaker, content) of the messages a summary folded, in order."""
    rows = conn.execute("SELECT speaker_name, role, content FROM messages WHERE summary_id = ? ORDER BY seq",
                        (summary_id,))
    return [(r["speaker_name"] or ("User" if r["role"] == "user" else "Narrator"), r["content"]) for r in rows]


async def test_a_rejected_summary_while_history_is_cut_is_folded_as_an_excerpt(
        database: Database, summarizer: Summarizer, fake: FakeLLM) -> None:
    with database.session() as conn:
        chat_id = seed_chat(conn)
        ids = [m.id for m in store.list_messages(conn, chat_id)]
        scenes = plan_scenes(conn, chat_id, 6, 1500)
    fake.enqueue(LOOP)
    await summarizer.after_reply(chat_id, _prompt(10_000, 1_000, ids[-8:]))  # the oldest messages were cut
    await wait_idle(summarizer, chat_id)
    with database.session() as conn:
        rows = summary_rows(conn, chat_id)
        archived = list(conn.execute("SELECT archived_reason, summary_id FROM messages WHERE archived = 1"))
        live = store.list_messages(conn, chat_id)
        lines = {r["id"]: scene_lines(conn, r["id"]) for r in rows}
    assert len(summary_requests(fake)) == 1, "after the rejection the rest of the fold does not ask again"
    assert len(rows) == len(scenes) >= 2
    assert [r["origin"] for r in rows] == ["extract"] * len(rows)
    assert [r["text"] for r in rows] == [excerpt_of(s) for s in scenes]
    assert len(archived) == 1 + 2 * (TURNS - 6) and all(a["archived_reason"] == "summarized" for a in archived)
    assert {m.turn for m in live} == set(range(TURNS - 5, TURNS + 1))
    for row in rows:
        assert_clean_excerpt(row["text"], lines[row["id"]])
    rejection = summarizer.rejections.get(chat_id)
    assert rejection is not None and "repeats itself" in rejection.reason, "the inspector still shows why"
    assert summarizer.notes(chat_id)[0]["answer"].startswith("Ari: Seraphina, I'm sorry")


async def test_a_cut_during_the_retry_wait_folds_excerpts_without_asking(
        database: Database, summarizer: Summarizer, fake: FakeLLM) -> None:
    with database.session() as conn:
        chat_id = seed_chat(conn, turns=14)
        ids = [m.id for m in store.list_messages(conn, chat_id)]
    fake.enqueue(LOOP)
    await summarizer.after_reply(chat_id, _prompt(10_000, 8_100, ids))  # past summarize_at, all of it fits
    await wait_idle(summarizer, chat_id)
    assert len(summary_requests(fake)) == 1 and not summarizer.rejections.may_try(chat_id)
    await summarizer.after_reply(chat_id, _prompt(10_000, 8_100, ids[-8:]))  # now history is cut
    await wait_idle(summarizer, chat_id)
    with database.session() as conn:
        rows = summary_rows(conn, chat_id)
    assert len(summary_requests(fake)) == 1, "the model is not asked again before its retry time"
    assert [(r["origin"], r["start_turn"], r["end_turn"]) for r in rows] == [("extract", 0, 14 - 6)]


async def test_a_rejected_summary_while_history_fits_stores_nothing_and_waits(
        database: Database, summarizer: Summarizer, fake: FakeLLM) -> None:
    with database.session() as conn:
        chat_id = seed_chat(conn, turns=14)
        ids = [m.id for m in store.list_messages(conn, chat_id)]
        before = snapshot(conn, chat_id)
    fake.enqueue(LOOP, LOOP)
    await summarizer.after_reply(chat_id, _prompt(10_000, 8_100, ids))  # past summarize_at, all of it fits
    await wait_idle(summarizer, chat_id)
    await summarizer.after_reply(chat_id, _prompt(10_000, 8_200, ids))
    await wait_idle(summarizer, chat_id)
    with database.session() as conn:
        assert snapshot(conn, chat_id) == before, "nothing stored, nothing archived"
    assert len(summary_requests(fake)) == 1, "the second reply waits for the retry time"
    summarizer.rejections.items[chat_id].retry_at = 0.0  # the retry time has come
    await summarizer.after_reply(chat_id, _prompt(10_000, 8_200, ids))
    await wait_idle(summarizer, chat_id)
    with database.session() as conn:
        assert snapshot(conn, chat_id) == before
    assert len(summary_requests(fake)) == 2


async def test_a_cut_one_exchange_away_folds_now_so_the_prefix_breaks_once(
        database: Database, summarizer: Summarizer, fake: FakeLLM) -> None:
    with database.session() as conn:
        chat_id = seed_chat(conn, turns=14)
        ids = [m.id for m in store.list_messages(conn, chat_id)]
    fake.enqueue(LOOP)
    # every message fits, with 500 tokens left: less than one more exchange (2 x 339) needs
    await summarizer.after_reply(chat_id, _prompt(10_000, 9_500, ids))
    await wait_idle(summarizer, chat_id)
    with database.session() as conn:
        rows = summary_rows(conn, chat_id)
    assert len(summary_requests(fake)) == 1 and rows and {r["origin"] for r in rows} == {"extract"}
    assert summarizer.rejections.get(chat_id) is not None, "the rejection is still shown"


async def test_the_llm_failing_while_history_is_cut_also_folds_an_excerpt(
        database: Database, summarizer: Summarizer, fake: FakeLLM) -> None:
    with database.session() as conn:
        chat_id = seed_chat(conn, turns=14)
        ids = [m.id for m in store.list_messages(conn, chat_id)]
    fake.fault("status", code=500)
    await summarizer.after_reply(chat_id, _prompt(10_000, 1_000, ids[-8:]))
    await wait_idle(summarizer, chat_id)
    with database.session() as conn:
        rows = summary_rows(conn, chat_id)
    assert [r["origin"] for r in rows] == ["extract"]
    assert summarizer.rejections.may_try(chat_id), "a server error is no rejection: the next fold asks again"


async def test_a_good_answer_while_history_is_cut_is_stored_as_the_llms(
        database: Database, summarizer: Summarizer, fake: FakeLLM) -> None:
    with database.session() as conn:
        chat_id = seed_chat(conn, turns=14)
        ids = [m.id for m in store.list_messages(conn, chat_id)]
    fake.enqueue("Seraphina healed Ari in the glade and promised to guard the northern gate.")
    await summarizer.after_reply(chat_id, _prompt(10_000, 1_000, ids[-8:]))
    await wait_idle(summarizer, chat_id)
    with database.session() as conn:
        rows = summary_rows(conn, chat_id)
    assert [(r["origin"], r["text"]) for r in rows] == [
        ("llm", "Seraphina healed Ari in the glade and promised to guard the northern gate.")]


def test_the_excerpt_is_deterministic_within_the_limit_and_keeps_no_junk() -> None:
    scene = [
        ("Seraphina", "*She smiles softly.* You're awake, Ari. The glade kept you safe through the night."),
        ("Ari", "Hi."),
        ("Ari", "Seraphina, where did Oskar the ferryman take the silver lantern after marker 12?"),
        ("Seraphina", "Seraphina: The tower fell in the winter war, and Oskar took the lantern across the Grey "
                      "River long before you ever came to the glade, child."),
        ("Amy", "I am sorry, I am sorry, I am sorry, I am sorry. {END} <|im_end|>"),
        ("Amy", "The tower fell in the winter war, and Oskar took the lantern across the Grey River."),
        ("Aqua", "The goddess of water blesses the boat <|im_end|> tonight. My shrine takes sweet bread as an "
                 "offering, nothing else."),
        ("Ari", "Ok ok ok."),
    ]
    first = scene_excerpt(scene)
    assert first is not None and first == scene_excerpt(list(scene))
    assert first.splitlines() == [
        "Seraphina: The glade kept you safe through the night.",  # the first sentence of four words or more
        "Ari: Seraphina, where did Oskar the ferryman take the silver lantern after marker 12?",
        "Seraphina: The tower fell in the winter war, and Oskar took the lantern across the Grey River long "
        "before…",
        "Aqua: My shrine takes sweet bread as an offering, nothing else.",
    ]
    assert_clean_excerpt(first, scene)
    assert scene_excerpt([("Ari", "Hi."), ("Amy", "<|im_end|>")]) is None


def test_lines_that_add_almost_nothing_new_are_left_out() -> None:
    scene = [line for turn in range(1, 11) for line in (("Ari", user_text(turn)), ("Seraphina", reply_text(turn)))]
    text = scene_excerpt(scene)
    assert text is not None and [line.split(":")[0] for line in text.splitlines()] == ["Ari", "Seraphina"]
    assert "marker 1 " in text, "of near-identical lines the first is kept (only the number differs)"


def test_a_long_scene_keeps_to_the_limit_in_scene_order() -> None:
    places = ["the glade", "the Grey River", "the Crystal Spire", "the northern gate", "the river towns"]
    scene = [(("Ari", "Seraphina", "Amy")[i % 3],
              f"At {places[i % 5]} on day {i} we met traveller number {i} who spoke of lantern {i * 7}.")
             for i in range(60)]
    text = scene_excerpt(scene)
    assert text is not None and EXCERPT_WORDS - LINE_WORDS - 2 < len(text.split()) <= EXCERPT_WORDS
    days = [int(re.search(r"day (\d+)", line).group(1)) for line in text.splitlines()]  # type: ignore[union-attr]
    assert days == sorted(days)
    assert_clean_excerpt(text, scene)
    assert scene_excerpt(scene, limit=40) is not None and len(scene_excerpt(scene, limit=40).split()) <= 40  # type: ignore[union-attr]


def test_migration_keeps_old_summaries_as_llm(tmp_path: Path) -> None:
    conn = connect(tmp_path / "old.db")
    before = [m for m in bundled_migrations() if m.name != "0009_summary_origin"]
    migrate(conn, before)
    now = "2026-01-01T00:00:00.000+00:00"
    conn.execute("INSERT INTO chats (uid, created_at, updated_at, last_activity_at) VALUES ('c1', ?, ?, ?)",
                 (now, now, now))
    conn.execute("INSERT INTO summaries (chat_id, first_message_id, last_message_id, start_turn, end_turn, text,"
                 " created_at, updated_at) VALUES (1, 1, 2, 0, 3, 'Ari woke in the glade.', ?, ?)", (now, now))
    assert migrate(conn) == ["0009_summary_origin"]
    row = conn.execute("SELECT text, origin FROM summaries").fetchone()
    assert (row["text"], row["origin"]) == ("Ari woke in the glade.", "llm")
    with pytest.raises(driver().IntegrityError):
        conn.execute("UPDATE summaries SET origin = 'guess'")


def test_the_api_shows_the_origin_and_the_prompt_takes_the_excerpt_at_one_planned_break(make_settings: Any) -> None:
    settings = make_settings(llm={"base_url": "http://llm.test/v1"}, sampling={"max_tokens": 60})
    llm = FakeLLM("llamacpp", context_length=1600)
    with chat_client(settings, llm) as client:
        chat_id = new_chat(client)["id"]
        with client.app.state.services.db.session() as conn:  # type: ignore[attr-defined]
            add_turns(conn, chat_id, 1, TURNS)
        llm.enqueue("Seraphina nods toward the gate.", *[LOOP] * 4)  # the reply, then summaries and capsules
        sent = client.post(f"/api/chats/{chat_id}/messages", json={"content": "What now?", "stream": False})
        assert sent.status_code == 201, sent.text
        body = wait_until(lambda: client.get(f"/api/chats/{chat_id}/summaries").json(),
                          until=lambda b: not b["running"] and b["summaries"], what="the excerpt fold")
        prompt = client.get(f"/api/chats/{chat_id}/prompt").json()
    sums = body["summaries"]
    assert sums and {s["origin"] for s in sums} == {"extract"} and not any(s["archived"] for s in sums)
    head = [s for s in prompt["sections"] if s["kind"] == "summary"]
    assert [s["source"]["summary_id"] for s in head] == [s["id"] for s in sums]
    assert all(s["text"].endswith(summary["text"]) for s, summary in zip(head, sums, strict=True))
    kinds = [s["kind"] for s in prompt["sections"]]
    assert kinds.index("summary") < kinds.index("history")
    prefix = prompt["prefix"]
    assert prefix["reason"].startswith("summary fold") and prefix["planned"] and not prefix["ordinary"]
    assert prompt["sections"][prefix["index"]]["kind"] == "summary", "the break is where the excerpt comes in"
