"""Summaries through the API: background folds after replies, the prompt after a fold, edit and un-fold."""

from __future__ import annotations

import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

from neuralrp.context.sections import Prompt
from tests.api.chat_helpers import chat_client, messages, new_chat, send_streamed
from tests.fakes import FakeLLM
from tests.turns.test_summarizer import TURNS, add_turns
from tests.waiting import wait_until

SLOW_S = 1.5


@pytest.fixture
def llm_settings(make_settings: Any) -> Any:
    return make_settings(llm={"base_url": "http://llm.test/v1"}, sampling={"max_tokens": 120})


def seeded_chat(client: TestClient, turns: int = TURNS) -> int:
    """A chat made through the API, then `turns` turns stored directly."""
    chat_id = new_chat(client)["id"]
    with client.app.state.services.db.session() as conn:  # type: ignore[attr-defined]
        add_turns(conn, chat_id, 1, turns)
    return chat_id


def wait_folded(client: TestClient, chat_id: int) -> dict[str, Any]:
    """Poll the Summaries window until no fold runs."""
    return wait_until(lambda: client.get(f"/api/chats/{chat_id}/summaries").json(),  # type: ignore[no-any-return]
                      until=lambda body: not body["running"], what="the fold to finish")


def count(client: TestClient, sql: str, *args: Any) -> int:
    """A count from the app's DB."""
    with client.app.state.services.db.session() as conn:  # type: ignore[attr-defined]
        return int(conn.execute(sql, args).fetchone()["n"])


def test_rerun_folds_and_the_next_prompt_uses_summaries(llm_settings: Any) -> None:
    fake = FakeLLM("llamacpp")
    with chat_client(llm_settings, fake) as client:
        chat_id = seeded_chat(client)
        total = count(client, "SELECT count(*) AS n FROM messages")
        fake.fault("slow", first=0.5)
        assert client.post(f"/api/chats/{chat_id}/summarize").json() == {"started": True}
        again = client.post(f"/api/chats/{chat_id}/summarize")
        body = wait_folded(client, chat_id)
        prompt = client.get(f"/api/chats/{chat_id}/prompt").json()
        chat = client.get(f"/api/chats/{chat_id}").json()
        live = messages(client, chat_id)
        archived = count(client, "SELECT count(*) AS n FROM messages WHERE archived = 1 AND summary_id IS NOT NULL")
        assert count(client, "SELECT count(*) AS n FROM messages") == total
    assert again.status_code == 409
    sums = body["summaries"]
    assert len(sums) >= 2 and not any(s["archived"] for s in sums)
    assert [(s["start_turn"], s["level"], s["edited"]) for s in sums][0] == (0, 0, False)
    assert sums[-1]["end_turn"] == TURNS - 6
    assert sum(s["message_count"] for s in sums) == archived == 1 + 2 * (TURNS - 6)
    assert body["word_count"] == sum(len(s["text"].split()) for s in sums)
    assert chat["turn"] == TURNS
    assert {m["turn"] for m in live} == set(range(TURNS - 5, TURNS + 1))
    kinds = [s["kind"] for s in prompt["sections"]]
    summary_sections = [s for s in prompt["sections"] if s["kind"] == "summary"]
    assert [s["source"]["summary_id"] for s in summary_sections] == [s["id"] for s in sums]
    assert kinds.index("summary") < kinds.index("history")
    history_ids = {i for s in prompt["sections"] if s["kind"] == "history" for i in s["source"]["message_ids"]}
    assert history_ids == {m["id"] for m in live}


def test_reply_is_not_delayed_by_the_fold(make_settings: Any) -> None:
    settings = make_settings(llm={"base_url": "http://llm.test/v1"}, sampling={"max_tokens": 120},
                             context={"summarize_at": 0.1})  # this prompt passes 10 % of the budget
    fake = FakeLLM("llamacpp")
    with chat_client(settings, fake) as client:
        chat_id = seeded_chat(client, turns=12)

        async def slow_summaries(chat_id: int, prompt: Prompt) -> None:
            fake.fault("slow", first=SLOW_S)  # armed after the reply's own request: hits the summary call

        client.app.state.services.generations.after_reply.insert(0, slow_summaries)  # type: ignore[attr-defined]
        started = time.monotonic()
        status, events = send_streamed(client, chat_id, "What happened at the gate?")
        replied = time.monotonic() - started
        during = client.get(f"/api/chats/{chat_id}/summaries").json()
        after = wait_folded(client, chat_id)
        folded = time.monotonic() - started
    assert status == 200 and events[-1]["type"] == "done" and events[-1]["message"]["status"] == "complete"
    assert replied < SLOW_S
    assert during["running"] is True and during["summaries"] == []
    assert folded >= SLOW_S and len(after["summaries"]) == 1
    assert (after["summaries"][0]["start_turn"], after["summaries"][0]["end_turn"]) == (0, 13 - 6)


def test_edit_keeps_history_and_rejects_empty_text(llm_settings: Any) -> None:
    fake = FakeLLM("llamacpp")
    fake.enqueue("Seraphina found Ari wounded in the glade and healed her.")
    with chat_client(llm_settings, fake) as client:
        chat_id = seeded_chat(client)
        client.post(f"/api/chats/{chat_id}/summarize")
        first = wait_folded(client, chat_id)["summaries"][0]
        resp = client.put(f"/api/summaries/{first['id']}", json={"text": "  Ari woke in Seraphina's glade.  "})
        empty = client.put(f"/api/summaries/{first['id']}", json={"text": "   "})
        missing = client.put("/api/summaries/99999", json={"text": "x"})
        prompt = client.get(f"/api/chats/{chat_id}/prompt").json()
        with client.app.state.services.db.session() as conn:  # type: ignore[attr-defined]
            history = conn.execute("SELECT operation, old_json, new_json FROM change_history"
                                   " WHERE entity_type = 'summary' AND entity_id = ?", (first["id"],)).fetchall()
    assert resp.status_code == 200
    edited = resp.json()
    assert edited["text"] == "Ari woke in Seraphina's glade." and edited["edited"] is True
    assert edited["message_count"] == first["message_count"] and edited["id"] == first["id"]
    assert empty.status_code == 422 and missing.status_code == 404
    assert history == [{"operation": "update",
                        "old_json": '{"text": "Seraphina found Ari wounded in the glade and healed her."}',
                        "new_json": '{"text": "Ari woke in Seraphina\'s glade."}'}]
    texts = [s["text"] for s in prompt["sections"] if s["kind"] == "summary"]
    assert texts[0].endswith("Ari woke in Seraphina's glade.")


def test_unfold_brings_messages_back(llm_settings: Any) -> None:
    fake = FakeLLM("llamacpp")
    with chat_client(llm_settings, fake) as client:
        chat_id = seeded_chat(client)
        total = count(client, "SELECT count(*) AS n FROM messages")
        client.post(f"/api/chats/{chat_id}/summarize")
        sums = wait_folded(client, chat_id)["summaries"]
        newest = sums[-1]
        resp = client.delete(f"/api/summaries/{newest['id']}")
        again = client.delete(f"/api/summaries/{newest['id']}")
        body = client.get(f"/api/chats/{chat_id}/summaries").json()
        live = messages(client, chat_id)
        assert count(client, "SELECT count(*) AS n FROM messages") == total
        assert count(client, "SELECT count(*) AS n FROM summaries") == len(sums)
    assert resp.status_code == 200 and again.status_code == 409
    assert resp.json()["archived"] is True and resp.json()["restored_messages"] == newest["message_count"]
    assert [s["id"] for s in body["summaries"]] == [s["id"] for s in sums[:-1]] + [newest["id"]]
    assert body["summaries"][-1]["archived"] is True
    assert min(m["turn"] for m in live) == newest["start_turn"]
    assert len(live) == newest["message_count"] + 2 * 6


def test_unknown_chat_is_404(llm_settings: Any) -> None:
    with chat_client(llm_settings, FakeLLM("llamacpp")) as client:
        assert client.get("/api/chats/999/summaries").status_code == 404
        assert client.post("/api/chats/999/summarize").status_code == 404
        assert client.delete("/api/summaries/999").status_code == 404
