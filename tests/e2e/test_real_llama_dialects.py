"""The real llama-cpp-python server (issue 16): it is detected as itself, `repeat_penalty` reaches its sampler,
its tokenizer counts, and Continue writes on in the same message instead of starting a new reply.

Every request NeuralRP sends is logged by a recording transport (the request as the server received it); the
server's greedy output shows that it used what was logged.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from neuralrp.app import create_app
from neuralrp.config import LLMSettings
from neuralrp.llm.client import OpenAICompatBackend
from neuralrp.llm.gguf import LocalModel
from neuralrp.llm.local_server import LocalModelServer
from neuralrp.llm.types import ChatMessage, SamplingParams
from tests.api.chat_helpers import CARD, messages, new_chat, send_streamed
from tests.e2e.llama_fixture import real_llama  # noqa: F401

pytestmark = pytest.mark.e2e_llm

STORY = [ChatMessage("system", "You are a storyteller."), ChatMessage("user", "Tell me a short story about a fox.")]


class RecordingTransport(httpx.AsyncBaseTransport):
    """Sends requests to the real server and logs each one (method, path, JSON body)."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.log: list[tuple[str, str, Any]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Log, then forward."""
        body = json.loads(request.content) if request.content else None
        self.log.append((request.method, request.url.path, body))
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        """Close the real transport."""
        await self.inner.aclose()


@pytest.fixture
async def logged(real_llama: LocalModelServer) -> AsyncIterator[tuple[OpenAICompatBackend, RecordingTransport]]:  # noqa: F811
    transport = RecordingTransport()
    backend = OpenAICompatBackend(LLMSettings(base_url=real_llama.base_url + "/v1"), transport=transport,
                                  local_model=LocalModel(real_llama.model_path, real_llama.chat_format))
    try:
        yield backend, transport
    finally:
        await backend.aclose()


def greedy(repetition_penalty: float = 1.0, max_tokens: int = 40) -> SamplingParams:
    return SamplingParams(temperature=0.0, top_k=1, top_p=1.0, min_p=0.0, repetition_penalty=repetition_penalty,
                          max_tokens=max_tokens)


async def test_detected_as_llama_cpp_python_with_its_tokenizer(
        logged: tuple[OpenAICompatBackend, RecordingTransport]) -> None:
    backend, transport = logged
    info = await backend.info()
    assert info.kind == "llamacpp_python" and info.can_tokenize
    count = await backend.count_tokens("Hello there, traveller.")
    assert transport.log[-1][:2] == ("POST", "/extras/tokenize/count")
    assert isinstance(count, int) and 3 <= count <= 12


async def test_repeat_penalty_reaches_the_server(logged: tuple[OpenAICompatBackend, RecordingTransport]) -> None:
    backend, transport = logged
    ask = [ChatMessage("user", "List the numbers from one to ten in words.")]
    plain = await backend.complete(ask, greedy(1.0))
    penalised = await backend.complete(ask, greedy(2.0))
    sent = [body for method, path, body in transport.log if path == "/v1/chat/completions"]
    assert [b["repeat_penalty"] for b in sent] == [1.0, 2.0]
    assert not any("repetition_penalty" in b for b in sent)  # the name it would silently drop
    # the server's sampler used it: the same greedy request answers differently under the penalty
    assert plain.text != penalised.text


async def test_continue_writes_on_in_the_same_message(logged: tuple[OpenAICompatBackend, RecordingTransport]) -> None:
    backend, transport = logged
    whole = (await backend.complete(STORY, greedy(max_tokens=30))).text
    start = " ".join(whole.split(" ")[:6])
    chunks = [c async for c in backend.stream([*STORY, ChatMessage("assistant", start)], greedy(max_tokens=10),
                                              continue_last=True)]
    more = "".join(c.text for c in chunks)
    method, path, body = transport.log[-1]
    assert (method, path) == ("POST", "/v1/completions") and body["prompt"].endswith("assistant\n" + start)
    assert body["repeat_penalty"] == 1.0 and more.strip()
    # greedy decoding writes on exactly where the whole reply went on: the same message, not a new one
    joined = start + more
    assert whole.startswith(joined) or joined.startswith(whole), (whole, joined)


def test_continue_through_the_chat_api_on_the_built_in_model(make_settings: Any,
                                                              real_llama: LocalModelServer) -> None:  # noqa: F811
    settings = make_settings(local={"model_path": str(real_llama.model_path), "n_ctx": 1024},
                             sampling={"max_tokens": 12, "temperature": 0.0, "top_k": 1})
    with TestClient(create_app(settings)) as client:
        chat = new_chat(client, CARD)
        send_streamed(client, chat["id"], "Tell me about the glade.")
        before = messages(client, chat["id"])
        first = before[-1]
        status, events = send_streamed(client, chat["id"], "", path="continue")
        after = messages(client, chat["id"])
    assert status == 200 and events[-1]["type"] == "done", events[-1]
    last = after[-1]
    # Continue wrote on in the same message (no new reply was opened) and kept what was there
    assert [m["id"] for m in after] == [m["id"] for m in before], (before, after)
    assert last["content"].startswith(first["content"]) and len(last["content"]) > len(first["content"])
    # the added text is a continuation, not a fresh reply that repeats the opening
    added = last["content"][len(first["content"]):]
    assert not added.strip().startswith(first["content"].strip()[:20]), added
