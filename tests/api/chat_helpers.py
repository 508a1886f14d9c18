"""Helpers for chat API tests: an app wired to a fake LLM and an SSE event reader."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from fastapi.testclient import TestClient

from neuralrp.app import create_app
from neuralrp.config import Settings
from tests.fakes import FakeLLM, LiveServer

CARD = {
    "spec": "chara_card_v2", "spec_version": "2.0",
    "data": {"name": "Seraphina", "description": "Guardian of the glade who heals {{user}}.",
             "personality": "gentle, fierce when needed", "scenario": "A glade at dusk.",
             "first_mes": "You're awake, {{user}}.", "mes_example": "", "tags": ["fantasy"],
             "extensions": {"world": "Eldoria", "custom_ext": {"keep": True}}},
}


def parse_sse(lines: Iterable[str]) -> list[dict[str, Any]]:
    """Events from SSE lines as dicts (their JSON data), ignoring pings."""
    events: list[dict[str, Any]] = []
    data: list[str] = []
    for line in lines:
        line = line.rstrip("\r")
        if line.startswith("data:"):
            data.append(line[5:].lstrip())
        elif line == "" and data:
            events.append(json.loads("\n".join(data)))
            data = []
    if data:
        events.append(json.loads("\n".join(data)))
    return events


@contextmanager
def chat_client(settings: Settings, fake: FakeLLM | None = None,
                transport: httpx.AsyncBaseTransport | None = None) -> Iterator[TestClient]:
    """A TestClient of the app whose LLM is the fake (through an in-process transport)."""
    if fake is not None:
        transport = httpx.ASGITransport(app=fake.app)
    app = create_app(settings, llm_transport=transport)
    with TestClient(app) as client:
        yield client


def new_chat(client: TestClient, card: dict[str, Any] | None = None) -> dict[str, Any]:
    """Create a chat from a card through the API."""
    resp = client.post("/api/chats", json={"card": card or CARD, "persona": {"name": "Ari"}})
    assert resp.status_code == 201, resp.text
    return resp.json()  # type: ignore[no-any-return]


def send_streamed(client: TestClient, chat_id: int, text: str, path: str = "messages") -> tuple[int, list[dict]]:
    """POST a message (or regenerate/continue) and collect the SSE events."""
    body = {"content": text} if path == "messages" else {}
    with client.stream("POST", f"/api/chats/{chat_id}/{path}", json=body) as resp:
        if resp.headers["content-type"].startswith("application/json"):
            resp.read()
            return resp.status_code, [resp.json()]
        return resp.status_code, parse_sse(resp.iter_lines())


def messages(client: TestClient, chat_id: int) -> list[dict[str, Any]]:
    """The chat's live messages."""
    resp = client.get(f"/api/chats/{chat_id}/messages")
    assert resp.status_code == 200
    return resp.json()["messages"]  # type: ignore[no-any-return]


def reply_requests(fake: FakeLLM) -> list[Any]:
    """Chat requests made for replies (not the background capsule or summary jobs)."""
    from neuralrp.cardgen.prompts import CAPSULE_INSTRUCTIONS
    from neuralrp.turns.summarizer import CONDENSE_INSTRUCTIONS, SCENE_INSTRUCTIONS

    background = (CAPSULE_INSTRUCTIONS[:40], SCENE_INSTRUCTIONS[:40], CONDENSE_INSTRUCTIONS[:40])
    out = []
    chats = ("/v1/chat/completions", "/api/chat")  # Ollama replies use its native /api/chat
    for request in (r for r in fake.requests if r.method == "POST" and r.path in chats):
        first = (request.json.get("messages") or [{}])[0].get("content", "")
        if not first.startswith(background):
            out.append(request)
    return out


def last_reply_request(fake: FakeLLM) -> Any:
    """The newest reply request's recorded body."""
    return reply_requests(fake)[-1]


@contextmanager
def served_with_fake(make_settings: Any, dialect: str) -> Iterator[tuple[FakeLLM, str]]:
    """A fake LLM server of this dialect (a hung request gives up after 20 s) and the app in front of it."""
    fake = FakeLLM(dialect, hang_timeout=20)
    with LiveServer(fake.app) as llm:
        settings = make_settings(llm={"base_url": llm.url})
        with LiveServer(create_app(settings)) as app:
            yield fake, app.url
