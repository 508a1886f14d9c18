"""The OpenAI-compatible client against every fake server flavour."""

from __future__ import annotations

import httpx
import pytest

from neuralrp.config import LLMSettings
from neuralrp.errors import BackendBadResponse, BackendUnavailable, ContextOverflow
from neuralrp.llm.client import OpenAICompatBackend
from neuralrp.llm.types import ChatMessage, SamplingParams
from tests.fakes import FakeLLM, count_tokens

MESSAGES = [ChatMessage("system", "You are Seraphina."), ChatMessage("user", "Hello there, traveller.")]
PARAMS = SamplingParams(temperature=0.5, top_p=0.9, top_k=30, min_p=0.02, repetition_penalty=1.15, max_tokens=64,
                        stop=("\nUser:",))


def backend_for(fake: FakeLLM, **llm: object) -> OpenAICompatBackend:
    settings = LLMSettings(base_url="http://llm.test/v1", **llm)  # type: ignore[arg-type]
    return OpenAICompatBackend(settings, transport=httpx.ASGITransport(app=fake.app))


@pytest.mark.parametrize(
    ("flavour", "kind", "ctx"),
    [("koboldcpp", "koboldcpp", 8192), ("tabbyapi", "tabbyapi", 16384), ("llamacpp", "llamacpp", 8192),
     ("ollama", "ollama", 8192), ("openai", "openai", None)],
)
async def test_detects_kind_and_context_length(flavour: str, kind: str, ctx: int | None) -> None:
    fake = FakeLLM(flavour, context_length=16384 if flavour == "tabbyapi" else 8192)
    backend = backend_for(fake, model="llama3.2" if flavour == "ollama" else "")
    info = await backend.info()
    assert info.kind == kind
    assert info.context_length == ctx
    assert info.can_tokenize == (kind in ("koboldcpp", "tabbyapi", "llamacpp"))
    await backend.aclose()


@pytest.mark.parametrize("flavour", ["koboldcpp", "tabbyapi", "llamacpp", "openai"])  # ollama: test_ollama_native
async def test_stream_assembles_reply_and_sends_dialect(flavour: str) -> None:
    fake = FakeLLM(flavour)
    fake.enqueue("Well met, traveller! The glade is quiet tonight.")
    backend = backend_for(fake)
    chunks = [c async for c in backend.stream(MESSAGES, PARAMS)]
    assert "".join(c.text for c in chunks) == "Well met, traveller! The glade is quiet tonight."
    assert chunks[-1].finish_reason == "stop"
    body = fake.last_chat_request().json
    assert body["messages"] == [m.as_dict() for m in MESSAGES]
    assert body["stream"] is True and body["max_tokens"] == 64 and body["temperature"] == 0.5
    assert body["stop"] == ["\nUser:"]
    rep = {"koboldcpp": "rep_pen", "tabbyapi": "repetition_penalty", "llamacpp": "repeat_penalty",
           "openai": "repetition_penalty"}[flavour]
    assert body[rep] == 1.15 and body["top_k"] == 30 and body["min_p"] == 0.02
    await backend.aclose()


async def test_legacy_kobold_stream() -> None:
    fake = FakeLLM("koboldcpp", kobold_legacy=True)
    fake.enqueue("Old but gold.")
    backend = backend_for(fake)
    text = "".join([c.text async for c in backend.stream(MESSAGES, PARAMS)])
    assert text == "Old but gold."


async def test_complete_non_stream() -> None:
    fake = FakeLLM("llamacpp")
    fake.enqueue("A whole reply.")
    backend = backend_for(fake)
    result = await backend.complete(MESSAGES, PARAMS)
    assert result.text == "A whole reply."
    assert fake.last_chat_request().json["stream"] is False


@pytest.mark.parametrize("flavour", ["koboldcpp", "tabbyapi", "llamacpp"])
async def test_token_count_uses_server_tokenizer(flavour: str) -> None:
    fake = FakeLLM(flavour)
    backend = backend_for(fake)
    text = "Hello there, traveller."
    # KoboldCpp and TabbyAPI count the BOS token too, as the real servers do.
    assert await backend.count_tokens(text) in (count_tokens(text), count_tokens(text) + 1)
    path = {"koboldcpp": "/api/extra/tokencount", "tabbyapi": "/v1/token/encode", "llamacpp": "/tokenize"}[flavour]
    assert fake.requests_to(path)


async def test_token_count_none_without_endpoint() -> None:
    assert await backend_for(FakeLLM("ollama"), model="llama3.2").count_tokens("hi") is None


async def test_completion_mode_renders_template() -> None:
    fake = FakeLLM("llamacpp")
    fake.enqueue("Text mode works.")
    backend = backend_for(fake, api_mode="completion", template="chatml")
    text = "".join([c.text async for c in backend.stream(MESSAGES, PARAMS)])
    assert text == "Text mode works."
    body = fake.last_completion_request().json
    assert body["prompt"].endswith("<|im_start|>user\nHello there, traveller.<|im_end|>\n<|im_start|>assistant\n")
    assert body["stop"] == ["\nUser:", "<|im_end|>", "<|im_start|>"]


async def test_continue_sends_partial_assistant_last() -> None:
    fake = FakeLLM("tabbyapi")
    fake.enqueue(" and more.")
    backend = backend_for(fake)
    partial = [*MESSAGES, ChatMessage("assistant", "Half a reply")]
    text = "".join([c.text async for c in backend.stream(partial, PARAMS, continue_last=True)])
    assert text == " and more."
    body = fake.last_chat_request().json
    assert body["messages"][-1] == {"role": "assistant", "content": "Half a reply"}
    assert body["continue_final_message"] is True and body["add_generation_prompt"] is False


async def test_api_key_is_sent() -> None:
    fake = FakeLLM("tabbyapi", api_key="s3cret")
    backend = backend_for(fake, api_key="s3cret")
    assert (await backend.info()).kind == "tabbyapi"
    assert fake.last_request().headers["authorization"] == "Bearer s3cret"


async def test_wrong_api_key_gives_human_error() -> None:
    fake = FakeLLM("tabbyapi", api_key="s3cret")
    backend = backend_for(fake, api_key="wrong", backend="tabbyapi")
    with pytest.raises(BackendBadResponse, match="HTTP 401.*set llm.api_key"):
        await backend.complete(MESSAGES, PARAMS)


@pytest.mark.parametrize(
    ("fault", "params", "exc", "text"),
    [
        ("status", {"code": 500}, BackendBadResponse, "HTTP 500"),
        ("status", {"code": 503}, BackendUnavailable, "busy or has no model loaded"),
        ("context_overflow", {}, ContextOverflow, "context window"),
        ("cut", {"after": 2}, BackendBadResponse, "ended before the reply was finished"),
        ("malformed", {"after": 2}, BackendBadResponse, "unreadable stream chunk"),
        ("error_event", {"after": 2}, BackendBadResponse, "failed mid-reply"),
    ],
)
@pytest.mark.parametrize("flavour", ["llamacpp", "tabbyapi", "koboldcpp"])
async def test_faults_become_clear_errors(flavour: str, fault: str, params: dict[str, object], exc: type,
                                         text: str) -> None:
    if flavour == "koboldcpp" and fault == "error_event":
        text = "ended before the reply was finished"  # KoboldCpp just ends the stream on errors
    fake = FakeLLM(flavour)
    fake.enqueue("one two three four five six seven")
    backend = backend_for(fake)
    await backend.info()
    fake.fault(fault, **params)
    got: list[str] = []
    with pytest.raises(exc, match=text):
        async for chunk in backend.stream(MESSAGES, PARAMS):
            got.append(chunk.text)
    if fault in ("cut", "malformed", "error_event"):
        assert got, "text before the failure was delivered"


async def test_server_down_is_unavailable() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    backend = OpenAICompatBackend(LLMSettings(base_url="http://127.0.0.1:9"), transport=httpx.MockTransport(refuse))
    with pytest.raises(BackendUnavailable, match=r"Cannot reach the LLM server at http://127.0.0.1:9: is it running\?"):
        await backend.info()


async def test_slow_server_times_out() -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    settings = LLMSettings(base_url="http://h:1", timeout_s=2, backend="openai", model="m")
    backend = OpenAICompatBackend(settings, transport=httpx.MockTransport(slow))
    with pytest.raises(BackendUnavailable, match="did not answer within 2 s"):
        await backend.complete(MESSAGES, PARAMS)


def test_unconfigured_backend_is_refused() -> None:
    with pytest.raises(BackendUnavailable, match="No LLM server is configured"):
        OpenAICompatBackend(LLMSettings())
