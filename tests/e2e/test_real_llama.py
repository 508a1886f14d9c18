"""The real llama-cpp-python server with the SmolLM2 demo GGUF: protocol checks, not content."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from neuralrp.llm.local_server import LocalModelServer
from tests.e2e.llama_fixture import N_CTX, real_llama  # noqa: F401

pytestmark = pytest.mark.e2e_llm

MESSAGES = [
    {"role": "system", "content": "You are Mira, a ship's navigator."},
    {"role": "user", "content": "Where are we headed?"},
]


@pytest.fixture
def client(real_llama: LocalModelServer) -> Iterator[httpx.Client]:  # noqa: F811
    with httpx.Client(base_url=real_llama.base_url, timeout=60, trust_env=False) as c:
        yield c


def test_models_lists_alias(client: httpx.Client, real_llama: LocalModelServer) -> None:  # noqa: F811
    response = client.get("/v1/models")
    assert response.status_code == 200
    assert real_llama.alias in [m["id"] for m in response.json()["data"]]


def test_chat_completion(client: httpx.Client, real_llama: LocalModelServer) -> None:  # noqa: F811
    body = {"model": real_llama.alias, "messages": MESSAGES, "max_tokens": 8, "temperature": 0}
    response = client.post("/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text
    data = response.json()
    choice = data["choices"][0]
    assert choice["message"]["role"] == "assistant"
    assert isinstance(choice["message"]["content"], str) and choice["message"]["content"]
    assert choice["finish_reason"] in {"length", "stop"}
    assert 0 < data["usage"]["completion_tokens"] <= 8


def test_chat_completion_stream(client: httpx.Client, real_llama: LocalModelServer) -> None:  # noqa: F811
    body = {"model": real_llama.alias, "messages": MESSAGES, "max_tokens": 16, "stream": True}
    with client.stream("POST", "/v1/chat/completions", json=body) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [line[len("data: ") :] for line in response.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert len(chunks) >= 3
    deltas = [c["choices"][0]["delta"] for c in chunks]
    assert deltas[0].get("role") == "assistant"
    assert any(d.get("content") for d in deltas)
    assert chunks[-1]["choices"][0]["finish_reason"] in {"length", "stop"}


def test_prompt_over_context_window_is_400(
    client: httpx.Client,
    real_llama: LocalModelServer,  # noqa: F811
) -> None:
    long_text = "the quick brown fox jumps over the lazy dog " * (N_CTX // 4)
    body = {"model": real_llama.alias, "messages": [{"role": "user", "content": long_text}], "max_tokens": 8}
    response = client.post("/v1/chat/completions", json=body)
    assert response.status_code == 400
    assert "context" in response.json()["error"]["message"]
