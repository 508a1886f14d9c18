"""Status requests during a streamed reply from the real built-in llama-cpp-python server never cut it."""

from __future__ import annotations

import json
import threading
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from neuralrp.app import create_app
from neuralrp.llm.local_server import LocalModelServer
from tests.api.chat_helpers import CARD
from tests.e2e.llama_fixture import real_llama  # noqa: F401

pytestmark = pytest.mark.e2e_llm

STORY = [{"role": "system", "content": "You are Mira, a ship's navigator. You love long stories."},
         {"role": "user", "content": "Tell me, in great detail, the story of your first voyage."}]


def get_models(url: str, out: list[int]) -> None:
    with httpx.Client(timeout=120, trust_env=False) as client:
        out.append(client.get(url + "/v1/models").status_code)


def test_models_requests_during_a_stream_wait_instead_of_cutting_it(real_llama: LocalModelServer) -> None:  # noqa: F811
    body = {"model": real_llama.alias, "messages": STORY, "max_tokens": 160, "stream": True, "seed": 1}
    answers: list[int] = []
    askers: list[threading.Thread] = []
    chunks: list[dict[str, Any]] = []
    with httpx.Client(base_url=real_llama.base_url, timeout=120, trust_env=False) as client, \
            client.stream("POST", "/v1/chat/completions", json=body) as resp:
        for line in resp.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunks.append(json.loads(line[6:]))
            if len(chunks) == 3:  # mid-reply: what the status page and a second tab used to send
                askers = [threading.Thread(target=get_models, args=(real_llama.base_url, answers)) for _ in range(3)]
                for asker in askers:
                    asker.start()
    for asker in askers:
        asker.join(timeout=120)
    assert askers and answers == [200, 200, 200], "the status requests waited and were answered"
    assert chunks[-1]["choices"][0]["finish_reason"] in {"stop", "length"}, "the stream was not cut"
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    assert len(text.split()) >= 10


def test_status_checks_during_a_built_in_reply_leave_it_complete(make_settings: Any) -> None:
    settings = make_settings(local={"demo": True, "n_ctx": 1024}, sampling={"max_tokens": 160, "temperature": 0.7})
    events: list[dict[str, Any]] = []
    with TestClient(create_app(settings)) as client:
        server = client.app.state.services.llm_runtime.local  # type: ignore[attr-defined]
        chat = client.post("/api/chats", json={"card": CARD}).json()
        statuses: list[dict[str, Any]] = []
        raw: list[int] = []
        with client.stream("POST", f"/api/chats/{chat['id']}/messages",
                           json={"content": "Tell me, in great detail, the story of your first voyage."}) as resp:
            for line in resp.iter_lines():
                if not line.startswith("data:"):
                    continue
                events.append(json.loads(line[5:]))
                if sum(e["type"] == "token" for e in events) == 2:  # a page open and a reload mid-reply
                    statuses = [client.get("/api/system/status").json() for _ in range(3)]
                    asker = threading.Thread(target=get_models, args=(server.base_url, raw))
                    asker.start()
        asker.join(timeout=120)
        stored = client.get(f"/api/chats/{chat['id']}/messages").json()["messages"]
    assert len(statuses) == 3 and all(s["backends"]["llm"]["reachable"] for s in statuses)
    assert raw == [200]
    tokens = "".join(e["text"] for e in events if e["type"] == "token")
    assert events[-1]["type"] == "done" and not events[-1]["stopped"], events[-1]
    assert stored[-1]["status"] == "complete" and stored[-1]["content"] == tokens
    assert len(tokens.split()) >= 10, "the reply went on after the status requests"
