"""GET /api/chats/{id}/stream over real sockets: a second client (a reload, another tab) follows a running reply."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import httpx

from tests.api.chat_helpers import CARD
from tests.fakes import FakeLLM

Event = tuple[str, dict[str, Any]]  # (SSE event name, JSON data)


def sse_events(lines: Iterable[str]) -> Iterator[Event]:
    """(event name, data) per Server-Sent Event, ignoring comments (pings); the name defaults to 'message'."""
    name, data = "message", []
    for line in lines:
        line = line.rstrip("\r")
        if line == "":
            if data:
                yield name, json.loads("\n".join(data))
            name, data = "message", []
        elif line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].lstrip())
    if data:
        yield name, json.loads("\n".join(data))


Reader = tuple[threading.Thread, list[Event], threading.Event]


def read_in_thread(url: str, method: str, path: str, ready: Callable[[list[Event]], bool],
                   body: dict[str, Any] | None = None) -> Reader:
    """Read an event stream in a thread; the threading.Event is set once ready(events so far) holds (or it ends)."""
    events: list[Event] = []
    seen = threading.Event()

    def read() -> None:
        with httpx.Client(base_url=url, trust_env=False, timeout=30) as client, \
                client.stream(method, path, json=body) as resp:
            for event in sse_events(resp.iter_lines()):
                events.append(event)
                if ready(events):
                    seen.set()
        seen.set()

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread, events, seen


def start_reply(url: str, chat_id: int, ready: Callable[[list[Event]], bool]) -> Reader:
    """POST a message from a first client."""
    return read_in_thread(url, "POST", f"/api/chats/{chat_id}/messages", ready, {"content": "Tell me"})


def follow(url: str, chat_id: int) -> tuple[httpx.Response, list[Event]]:
    """A second client following the chat's reply until the stream ends."""
    with httpx.Client(base_url=url, trust_env=False, timeout=30) as client, \
            client.stream("GET", f"/api/chats/{chat_id}/stream", headers={"Accept": "text/event-stream"}) as resp:
        return resp, list(sse_events(resp.iter_lines()))


def tokens(events: list[Event]) -> int:
    return sum(name == "token" for name, _ in events)


def new_chat(url: str) -> int:
    resp = httpx.post(f"{url}/api/chats", json={"card": CARD}, trust_env=False, timeout=10)
    assert resp.status_code == 201, resp.text
    return int(resp.json()["id"])


def test_late_join_gets_every_event_from_the_start(live: tuple[FakeLLM, str]) -> None:
    fake, url = live
    reply = " ".join(f"word{i}" for i in range(16))
    fake.enqueue(reply)
    fake.set_fault("slow", between=0.05)
    chat_id = new_chat(url)
    thread, posted, seen = start_reply(url, chat_id, lambda events: tokens(events) >= 3)
    assert seen.wait(10) and tokens(posted) >= 3, "the first client is reading the reply"
    joined_at = tokens(posted)
    resp, followed = follow(url, chat_id)
    thread.join(10)
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/event-stream")
    assert joined_at < tokens(followed), "the second client joined while the reply was running"
    assert followed == posted, "the late joiner gets exactly the events the sender got, from the first"
    assert [name for name, _ in followed[:2]] == ["user", "start"] and followed[-1][0] == "done"
    assert all(name == data["type"] for name, data in followed), "each event is named after its type"
    assert "".join(data["text"] for name, data in followed if name == "token") == reply
    assert followed[-1][1]["message"]["content"] == reply


def test_stream_without_a_reply_is_one_idle_event(live: tuple[FakeLLM, str]) -> None:
    _, url = live
    chat_id = new_chat(url)
    resp, events = follow(url, chat_id)
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/event-stream")
    assert events == [("idle", {"type": "idle", "chat_id": chat_id})]
    missing = httpx.get(f"{url}/api/chats/9999/stream", trust_env=False, timeout=10)
    assert missing.status_code == 404 and "chat 9999 does not exist" in missing.json()["detail"]


def test_follower_sees_the_failure_and_the_stop(live: tuple[FakeLLM, str]) -> None:
    fake, url = live
    fake.enqueue("alpha beta gamma delta epsilon zeta eta theta")
    fake.set_fault("slow", between=0.05)
    fake.fault("malformed", after=5, text='{"choices": {"a": 1}}')
    chat_id = new_chat(url)
    thread, posted, seen = start_reply(url, chat_id, lambda events: tokens(events) >= 1)
    assert seen.wait(10)
    _, followed = follow(url, chat_id)
    thread.join(10)
    assert followed == posted and followed[-1][0] == "error"
    assert "'choices' is {\"a\": 1}, not a list" in followed[-1][1]["detail"]

    fake.enqueue("one two three four five six")
    fake.fault("hang", after=3)
    thread, posted, seen = start_reply(url, chat_id, lambda events: tokens(events) >= 2)
    assert seen.wait(10)
    follower, followed, following = read_in_thread(url, "GET", f"/api/chats/{chat_id}/stream",
                                                   lambda events: tokens(events) >= 2)
    assert following.wait(10) and tokens(followed) >= 2, "the follower caught up with the stalled reply"
    stop = httpx.post(f"{url}/api/chats/{chat_id}/stop", trust_env=False, timeout=10)
    assert stop.json() == {"stopped": True}
    thread.join(10)
    follower.join(10)
    assert followed == posted and followed[-1][0] == "done" and followed[-1][1]["stopped"] is True
