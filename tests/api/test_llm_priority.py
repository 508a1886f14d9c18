"""Over real sockets: a user's reply goes before background LLM work, and status checks never touch a busy server."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import httpx

from tests.api.chat_helpers import CARD
from tests.cardgen.helpers import DESCRIPTION, answer
from tests.fakes import FakeLLM
from tests.waiting import wait_until

MODELS = "/v1/models"


def client_for(url: str) -> httpx.Client:
    return httpx.Client(base_url=url, trust_env=False, timeout=60)


def tasks(url: str) -> list[dict[str, Any]]:
    with client_for(url) as client:
        return client.get("/api/system/llm-tasks").json()["tasks"]  # type: ignore[no-any-return]


def stream_reply(url: str, chat_id: int, out: list[tuple[float, dict[str, Any]]]) -> None:
    """Send a message and keep every event with the time it arrived."""
    with client_for(url) as client, client.stream("POST", f"/api/chats/{chat_id}/messages",
                                                  json={"content": "Hello there"}) as resp:
        for line in resp.iter_lines():
            if line.startswith("data:"):
                out.append((time.monotonic(), json.loads(line[5:])))


def start_card_generation(url: str, result: dict[str, Any]) -> threading.Thread:
    def post() -> None:
        with client_for(url) as client:
            result["response"] = client.post("/api/cardgen/character", json={"description": DESCRIPTION})
            result["at"] = time.monotonic()

    thread = threading.Thread(target=post)
    thread.start()
    return thread


def test_the_users_first_token_comes_before_a_running_background_job(live: tuple[FakeLLM, str]) -> None:
    fake, url = live
    with client_for(url) as client:
        chat = client.post("/api/chats", json={"card": CARD}).json()
    fake.enqueue(answer(), "The reply comes first.", answer())
    fake.fault("slow", between=0.05)  # the card generation streams for several seconds
    card: dict[str, Any] = {}
    generator = start_card_generation(url, card)
    wait_until(lambda: any(t["tokens"] >= 3 for t in tasks(url)), what="card generation to be streaming")
    events: list[tuple[float, dict[str, Any]]] = []
    stream_reply(url, chat["id"], events)
    generator.join(timeout=60)
    assert not generator.is_alive(), "card generation never finished"
    first_token = next(at for at, e in events if e["type"] == "token")
    assert events[-1][1]["type"] == "done"
    assert "".join(e["text"] for _, e in events if e["type"] == "token") == "The reply comes first."
    assert card["response"].status_code == 200, card["response"].text
    assert card["response"].json()["card"]["data"]["name"] == "Mira", "the paused job was run again in full"
    assert first_token < card["at"]
    generations = fake.chat_requests()
    assert len(generations) == 3, "card generation, the reply, card generation again"
    assert "Hello there" in generations[1].json["messages"][-1]["content"]
    assert fake.disconnects >= 1, "the background stream was closed to free the server for the reply"
    assert generations[2].time >= generations[1].time


def test_status_checks_during_a_reply_never_ask_the_llm_server(live: tuple[FakeLLM, str]) -> None:
    fake, url = live
    with client_for(url) as client:
        chat = client.post("/api/chats", json={"card": CARD}).json()
        idle = [client.get("/api/system/status").json() for _ in range(2)]
    assert all(s["backends"]["llm"]["reachable"] for s in idle)
    assert len(fake.requests_to(MODELS)) <= 2, "page opens reuse the last look at the server (one probe)"
    fake.enqueue("one two three four five six seven eight nine ten")
    fake.fault("slow", between=0.1)
    events: list[tuple[float, dict[str, Any]]] = []
    reader = threading.Thread(target=stream_reply, args=(url, chat["id"], events))
    reader.start()
    wait_until(lambda: sum(e["type"] == "token" for _, e in events) >= 2, what="two streamed tokens")
    asked = len(fake.requests_to(MODELS))
    with client_for(url) as client:
        during = [client.get("/api/system/status").json()["backends"]["llm"] for _ in range(3)]
    assert len(fake.requests_to(MODELS)) == asked, "no GET /v1/models while the reply streams"
    assert all(p["reachable"] is True and "generating now" in p["detail"] for p in during)
    reader.join(timeout=30)
    assert events[-1][1]["type"] == "done" and events[-1][1]["message"]["status"] == "complete"


def test_a_background_job_can_be_cancelled_from_the_task_list(live: tuple[FakeLLM, str]) -> None:
    fake, url = live
    fake.enqueue(answer())
    fake.fault("slow", between=0.1)
    card: dict[str, Any] = {}
    generator = start_card_generation(url, card)
    wait_until(lambda: any(t["tokens"] >= 2 for t in tasks(url)), what="card generation to be streaming")
    task = tasks(url)[0]
    assert task["kind"] == "cardgen" and task["state"] == "running" and task["preview"]
    with client_for(url) as client:
        assert client.post(f"/api/system/llm-tasks/{task['id']}/cancel").json() == {"cancelled": task["id"]}
        again = client.post(f"/api/system/llm-tasks/{task['id']}/cancel")
    generator.join(timeout=30)
    assert card["response"].status_code == 499 and "cancelled" in card["response"].json()["detail"]
    assert again.status_code == 404 and tasks(url) == []
    assert fake.wait_for_disconnect(), "cancelling closed the stream at the server"
