"""Fuzzing with a fixed budget: the SSE reader, the stream decoder and the API never let a crash out as a 500.

Parser-level fuzzing of cards, World Info and chats lives in tests/library/test_fuzz_parsers.py; here the same
inputs go through the HTTP routes (uploads and JSON bodies), where any escaped exception would be a 500.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neuralrp.app import create_app
from neuralrp.config import LLMSettings, load_settings
from neuralrp.errors import BackendError
from neuralrp.llm.client import OpenAICompatBackend
from neuralrp.llm.sse import iter_events
from neuralrp.llm.types import ChatMessage, SamplingParams

FUZZ = settings(max_examples=200, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                       HealthCheck.data_too_large])
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)
CARD_KEYS = ["name", "description", "personality", "scenario", "first_mes", "mes_example", "tags",
             "alternate_greetings", "character_book", "extensions", "spec", "spec_version", "data"]
CHAT_KEYS = ["character_ids", "card", "persona", "title", "mode"]
NAMES = st.sampled_from(["card.png", "card.json", "world.json", "chat.jsonl", "../../etc/passwd", "/abs/x.png",
                         "a\x00b.json", "x" * 300 + ".png", "..", "", "no-extension", "C:\\win\\x.json"])
SSE_LINE = st.one_of(
    st.text(max_size=40),
    st.builds(lambda s: f"data: {s}", st.text(max_size=60)),
    st.sampled_from(["", ":ping", "data: [DONE]", "error: {\"message\": \"x\"}", "event: x", "data:",
                     'data: {"choices": [{"delta": {"content": "hi"}, "finish_reason": null}]}',
                     'data: {"choices": [{"delta": {}, "finish_reason": "stop"}]}', 'data: {"choices": null}',
                     'data: {"error": {"message": "boom"}}', "data: {not json", "\r", "data: \x00\ud7ff"]),
)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """One app (no LLM configured) for the whole module; server exceptions come back as responses."""
    data_dir = tmp_path_factory.mktemp("fuzz")
    app = create_app(load_settings(overrides={"paths": {"data_dir": str(data_dir)}}, environ={}))
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def character_id(client: TestClient) -> int:
    """A character to PUT random bodies at."""
    made = client.post("/api/characters", json={"name": "Target", "description": "d", "first_mes": "hi"})
    assert made.status_code == 201, made.text
    return int(made.json()["id"])


@FUZZ
@given(st.lists(SSE_LINE, max_size=30))
def test_sse_reader_never_raises(lines: list[str]) -> None:
    events = list(iter_events(lines))
    assert all(event.kind in ("data", "error") for event in events)


def _stream_transport(body: bytes) -> httpx.MockTransport:
    """An LLM server that answers its info routes 404 and streams `body` for generation."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path.endswith("completions"):
            return httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})
        return httpx.Response(404, json={"error": "not found"})

    return httpx.MockTransport(handler)


async def _drain(body: bytes) -> str:
    backend = OpenAICompatBackend(LLMSettings(base_url="http://llm.test/v1"), transport=_stream_transport(body))
    text = ""
    try:
        async for chunk in backend.stream([ChatMessage("user", "hi")], SamplingParams()):
            text += chunk.text or ""
    except BackendError:
        return text
    finally:
        await backend.aclose()
    return text


@FUZZ
@given(st.lists(SSE_LINE, max_size=20), st.sampled_from(["\n", "\r\n"]), st.binary(max_size=20))
def test_stream_decoder_fails_only_with_backend_errors(lines: list[str], newline: str, junk: bytes) -> None:
    body = newline.join(lines).encode("utf-8", "surrogatepass") + junk
    assert isinstance(asyncio.run(_drain(body)), str)


def _ok(response: httpx.Response) -> None:
    assert response.status_code < 500, (response.status_code, response.text[:500])


@FUZZ
@given(st.dictionaries(st.sampled_from(CHAT_KEYS), JSON, max_size=5))
def test_create_chat_with_random_bodies(client: TestClient, body: dict[str, Any]) -> None:
    _ok(client.post("/api/chats", json=body))


@FUZZ
@given(st.one_of(JSON, st.dictionaries(st.sampled_from(CARD_KEYS), JSON, max_size=8)))
def test_put_character_with_random_bodies(client: TestClient, character_id: int, body: Any) -> None:
    _ok(client.put(f"/api/characters/{character_id}", json=body))


@FUZZ
@given(st.one_of(JSON, st.dictionaries(st.sampled_from(["llm", "sampling", "context", "chat", "x"]),
                                       st.dictionaries(st.text(max_size=20), JSON, max_size=3), max_size=3)))
def test_put_settings_with_random_bodies(client: TestClient, body: Any) -> None:
    _ok(client.put("/api/settings", json=body))


@FUZZ
@given(st.binary(max_size=2000))
def test_random_bytes_as_json_bodies(client: TestClient, raw: bytes) -> None:
    headers = {"content-type": "application/json"}
    _ok(client.post("/api/chats", content=raw, headers=headers))
    _ok(client.post("/api/worlds", content=raw, headers=headers))


@FUZZ
@given(NAMES, st.one_of(st.binary(max_size=3000), st.builds(lambda j: repr(j).encode(), JSON)),
       st.sampled_from(["/api/characters/import", "/api/worlds/import", "/api/library/import"]))
def test_random_uploads(client: TestClient, name: str, data: bytes, route: str) -> None:
    field = "files" if route == "/api/library/import" else "file"
    _ok(client.post(route, files={field: (name, data, "application/octet-stream")}))
