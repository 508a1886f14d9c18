"""Malformed stream chunks become a BackendBadResponse naming the bad field, in every stream dialect."""

from __future__ import annotations

import json

import httpx
import pytest

from neuralrp.config import LLMSettings
from neuralrp.errors import BackendBadResponse
from neuralrp.llm import ollama, wire
from neuralrp.llm.client import OpenAICompatBackend
from neuralrp.llm.types import ChatMessage, SamplingParams
from tests.fakes import FakeLLM
from tests.fakes.llm_malformed import CHAT, HARMLESS_CHAT, OLLAMA, TEXT, BadChunk

MESSAGES = [ChatMessage("system", "You are Seraphina."), ChatMessage("user", "Hello there.")]
REPLY = "one two three four five six"


def ids(chunks: list[BadChunk]) -> list[str]:
    return [c.id for c in chunks]


@pytest.mark.parametrize("chunk", CHAT, ids=ids(CHAT))
def test_chat_decoder_names_the_bad_field(chunk: BadChunk) -> None:
    with pytest.raises(BackendBadResponse) as caught:
        wire.decode_chunk(chunk.text, chat=True)
    assert chunk.error in caught.value.message
    assert caught.value.message.startswith("The LLM server sent")


@pytest.mark.parametrize("chunk", TEXT, ids=ids(TEXT))
def test_text_decoder_names_the_bad_field(chunk: BadChunk) -> None:
    with pytest.raises(BackendBadResponse) as caught:
        wire.decode_chunk(chunk.text, chat=False)
    assert chunk.error in caught.value.message


@pytest.mark.parametrize("chunk", OLLAMA, ids=ids(OLLAMA))
def test_ollama_decoder_names_the_bad_field(chunk: BadChunk) -> None:
    with pytest.raises(BackendBadResponse) as caught:
        ollama.decode_line(chunk.text)
    assert chunk.error in caught.value.message


@pytest.mark.parametrize("payload", HARMLESS_CHAT, ids=[json.dumps(p) for p in HARMLESS_CHAT])
def test_chunks_that_carry_nothing_are_skipped(payload: object) -> None:
    assert wire.decode_chunk(json.dumps(payload), chat=True) is None


def test_a_long_bad_value_is_shortened() -> None:
    with pytest.raises(BackendBadResponse) as caught:
        wire.decode_chunk(json.dumps({"choices": {"x": "y" * 500}}), chat=True)
    assert len(caught.value.message) < 160 and caught.value.message.endswith("..., not a list")


def _backend(fake: FakeLLM, **llm: object) -> OpenAICompatBackend:
    settings = LLMSettings(base_url="http://llm.test/v1", **llm)  # type: ignore[arg-type]
    return OpenAICompatBackend(settings, transport=httpx.ASGITransport(app=fake.app))


async def _stream_until_error(backend: OpenAICompatBackend, fake: FakeLLM, chunk: BadChunk) -> list[str]:
    await backend.info()
    fake.enqueue(REPLY)
    fake.fault("malformed", after=3, text=chunk.text)
    got: list[str] = []
    with pytest.raises(BackendBadResponse) as caught:
        async for piece in backend.stream(MESSAGES, SamplingParams()):
            got.append(piece.text)
    assert chunk.error in caught.value.message
    await backend.aclose()
    return got


@pytest.mark.parametrize("flavour", ["llamacpp", "tabbyapi"])
@pytest.mark.parametrize("chunk", CHAT, ids=ids(CHAT))
async def test_chat_stream_stops_at_the_bad_chunk(flavour: str, chunk: BadChunk) -> None:
    fake = FakeLLM(flavour)
    got = await _stream_until_error(_backend(fake), fake, chunk)
    expected = "one two" if flavour == "llamacpp" else "one two three"  # llama.cpp's first chunk is role-only
    assert "".join(got) == expected


@pytest.mark.parametrize("chunk", TEXT, ids=ids(TEXT))
async def test_text_completion_stream_stops_at_the_bad_chunk(chunk: BadChunk) -> None:
    fake = FakeLLM("llamacpp")
    got = await _stream_until_error(_backend(fake, api_mode="completion", template="chatml"), fake, chunk)
    assert "".join(got) == "one two three"


@pytest.mark.parametrize("chunk", OLLAMA, ids=ids(OLLAMA))
async def test_ollama_native_stream_stops_at_the_bad_chunk(chunk: BadChunk) -> None:
    fake = FakeLLM("ollama")
    got = await _stream_until_error(_backend(fake, model="llama3.2"), fake, chunk)
    assert "".join(got) == "one two three"
