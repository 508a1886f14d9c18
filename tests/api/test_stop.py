"""Stop and concurrency over real sockets: Stop aborts generation at the backend."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.api.chat_helpers import CARD, served_with_fake
from tests.fakes import FakeLLM
from tests.waiting import wait_until


@pytest.fixture
def live_pair(make_settings: Any, request: pytest.FixtureRequest) -> Iterator[tuple[FakeLLM, str]]:
    with served_with_fake(make_settings, request.param) as pair:
        yield pair


def read_events(client: httpx.Client, url: str, body: dict[str, Any], out: list[dict[str, Any]]) -> None:
    with client.stream("POST", url, json=body, timeout=30) as resp:
        for line in resp.iter_lines():
            if line.startswith("data:"):
                out.append(json.loads(line[5:]))


@pytest.mark.parametrize("live_pair", ["llamacpp", "koboldcpp"], indirect=True)
def test_stop_aborts_backend_and_keeps_text(live_pair: tuple[FakeLLM, str]) -> None:
    fake, url = live_pair
    fake.enqueue("alpha beta gamma delta epsilon zeta")
    fake.fault("hang", after=3)
    with httpx.Client(base_url=url, trust_env=False) as client:
        chat = client.post("/api/chats", json={"card": CARD}).json()
        events: list[dict[str, Any]] = []
        reader = threading.Thread(target=read_events, args=(client, f"/api/chats/{chat['id']}/messages",
                                                             {"content": "Go on"}, events))
        reader.start()
        wait_until(lambda: sum(e["type"] == "token" for e in events) >= 2, what="two streamed tokens")
        busy = client.post(f"/api/chats/{chat['id']}/messages", json={"content": "again"})
        assert busy.status_code == 409 and "already being written" in busy.json()["detail"]
        assert client.get(f"/api/chats/{chat['id']}/messages").json()["generating"] is True
        assert client.post(f"/api/chats/{chat['id']}/stop").json() == {"stopped": True}
        reader.join(timeout=30)
        assert not reader.is_alive(), "the stream did not end after Stop"
        stored = client.get(f"/api/chats/{chat['id']}/messages").json()
    assert events[-1]["type"] == "done" and events[-1]["stopped"] is True
    tokens = "".join(e["text"] for e in events if e["type"] == "token")
    assert stored["messages"][-1]["content"] == tokens and stored["messages"][-1]["status"] == "complete"
    assert stored["generating"] is False
    if fake.flavour == "koboldcpp":
        wait_until(lambda: fake.aborts, what="the koboldcpp abort at the backend")
    else:
        assert fake.wait_for_disconnect(30), "closing the stream must abort generation at the server"


@pytest.mark.parametrize("live_pair", ["llamacpp"], indirect=True)
def test_closed_tab_does_not_stop_the_reply(live_pair: tuple[FakeLLM, str]) -> None:
    fake, url = live_pair
    fake.enqueue("one two three four five six")
    fake.set_fault("slow", between=0.05)
    with httpx.Client(base_url=url, trust_env=False) as client:
        chat = client.post("/api/chats", json={"card": CARD}).json()
        with client.stream("POST", f"/api/chats/{chat['id']}/messages", json={"content": "Hi"}) as resp:
            for line in resp.iter_lines():
                if '"token"' in line:
                    break  # the browser tab closes here
        wait_until(lambda: client.get(f"/api/chats/{chat['id']}/messages").json(),
                   until=lambda body: not body["generating"], what="the reply to finish without the tab")
        last = client.get(f"/api/chats/{chat['id']}/messages").json()["messages"][-1]
    assert last["content"] == "one two three four five six" and last["status"] == "complete"
