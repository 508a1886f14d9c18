"""A server that dies while NeuralRP connects to it is a backend error (503 with a sentence), never a 500.

httpcore lets an AttributeError through when the socket was closed mid-connect (tests/fakes/dead_socket.py);
`neuralrp.backends.GuardedTransport` turns exactly that one into httpx.ConnectError, so the LLM client, the image
client and the status probes report it like any refused connection. Other AttributeErrors stay bugs.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from neuralrp.app import create_app
from neuralrp.backends import is_dead_socket, probe_http
from neuralrp.config import LLMSettings
from neuralrp.errors import BackendUnavailable
from neuralrp.images.client import A1111Client
from neuralrp.llm.client import OpenAICompatBackend
from neuralrp.llm.types import ChatMessage, SamplingParams
from tests.fakes.dead_socket import BrokenTransport, DeadSocketTransport

MESSAGES = [ChatMessage("user", "Hello.")]
PARAMS = SamplingParams(max_tokens=8)
URL = "http://127.0.0.1:5001"


def _backend(transport: httpx.AsyncBaseTransport, **llm: Any) -> OpenAICompatBackend:
    return OpenAICompatBackend(LLMSettings(base_url=URL, **llm), transport=transport)


def test_only_the_dead_socket_attribute_error_is_recognised() -> None:
    try:
        None.getpeername()  # type: ignore[attr-defined]
    except AttributeError as e:
        assert is_dead_socket(e)
    try:
        object().getpeername()  # type: ignore[attr-defined]
    except AttributeError as e:
        assert not is_dead_socket(e)
    try:
        None.content  # type: ignore[attr-defined]  # noqa: B018
    except AttributeError as e:
        assert not is_dead_socket(e)


async def test_detection_stream_and_complete_say_the_server_is_unreachable() -> None:
    dead = DeadSocketTransport()
    backend = _backend(dead)
    with pytest.raises(BackendUnavailable, match=r"Cannot reach the LLM server at http://127.0.0.1:5001: is it"):
        await backend.info()
    known = _backend(dead, backend="openai", model="m")  # no detection: the generation request itself dies
    with pytest.raises(BackendUnavailable, match="Cannot reach the LLM server"):
        await known.complete(MESSAGES, PARAMS)
    with pytest.raises(BackendUnavailable, match="Cannot reach the LLM server"):
        async for _ in known.stream(MESSAGES, PARAMS):
            pass
    assert dead.requests >= 3


async def test_other_attribute_errors_are_not_hidden() -> None:
    backend = _backend(BrokenTransport(), backend="openai", model="m")
    with pytest.raises(AttributeError, match="no_such_setting"):
        await backend.complete(MESSAGES, PARAMS)


async def test_probe_and_image_client_report_it_as_a_connection_failure() -> None:
    probe = await probe_http("llm", URL, "/v1/models", transport=DeadSocketTransport())
    assert probe.reachable is False and "cannot connect" in probe.detail and "ConnectError" in probe.detail
    images = A1111Client("http://127.0.0.1:7860", transport=DeadSocketTransport())
    with pytest.raises(BackendUnavailable, match="image server at http://127.0.0.1:7860 is not reachable"):
        await images.detect()
    await images.aclose()


def test_status_and_a_sent_message_answer_without_a_500(make_settings: Any) -> None:
    settings = make_settings(llm={"base_url": URL})
    with TestClient(create_app(settings, llm_transport=DeadSocketTransport())) as client:
        status = client.get("/api/system/status")
        assert status.status_code == 200, status.text
        assert status.json()["backends"]["llm"]["reachable"] is False
        chat = client.post("/api/chats", json={"card": {"name": "Ada", "first_mes": "Hello."}})
        assert chat.status_code == 201, chat.text
        sent = client.post(f"/api/chats/{chat.json()['id']}/messages", json={"content": "Hi", "stream": False})
    assert sent.status_code == 503, sent.text
    assert "Cannot reach the LLM server at http://127.0.0.1:5001" in sent.json()["detail"]
