"""NeuralRP's own chat loop against a real llama-cpp-python server it starts itself."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from neuralrp.app import create_app
from neuralrp.llm.local_server import LocalModelServer
from tests.api.chat_helpers import CARD
from tests.e2e.llama_fixture import real_llama  # noqa: F401

pytestmark = pytest.mark.e2e_llm


def test_built_in_model_streams_a_reply(make_settings: Any, real_llama: LocalModelServer) -> None:  # noqa: F811
    settings = make_settings(local={"model_path": str(real_llama.model_path), "n_ctx": 1024},
                             sampling={"max_tokens": 16, "temperature": 0.0})
    with TestClient(create_app(settings)) as client:
        status = client.get("/api/system/status").json()
        assert status["backends"]["llm"]["reachable"] is True
        assert status["backends"]["llm"]["built_in"]["built_in"] is True
        chat = client.post("/api/chats", json={"card": CARD}).json()
        events = []
        with client.stream("POST", f"/api/chats/{chat['id']}/messages", json={"content": "Say hello."}) as resp:
            assert resp.headers["content-type"].startswith("text/event-stream")
            for line in resp.iter_lines():
                if line.startswith("data:"):
                    events.append(json.loads(line[5:]))
        stored = client.get(f"/api/chats/{chat['id']}/messages").json()["messages"]
    tokens = [e["text"] for e in events if e["type"] == "token"]
    assert len(tokens) >= 2, "the reply arrived in several streamed pieces"
    assert events[-1]["type"] == "done"
    assert stored[-1]["role"] == "assistant" and stored[-1]["content"] == "".join(tokens)
    assert stored[-1]["status"] == "complete"
    assert stored[-2]["content"] == "Say hello."


def test_configured_server_non_stream_and_regenerate(make_settings: Any,
                                                     real_llama: LocalModelServer) -> None:  # noqa: F811
    settings = make_settings(llm={"base_url": real_llama.base_url + "/v1"}, sampling={"max_tokens": 8},
                             context={"max_tokens": 1024})
    with TestClient(create_app(settings)) as client:
        chat = client.post("/api/chats", json={"card": CARD}).json()
        first = client.post(f"/api/chats/{chat['id']}/messages", json={"content": "Hi", "stream": False})
        assert first.status_code == 201, first.text
        again = client.post(f"/api/chats/{chat['id']}/regenerate", json={"stream": False})
        assert again.status_code == 201, again.text
    assert again.json()["reply"]["swipe_count"] == 2
