"""Ollama through its native /api/chat: request body, NDJSON stream, errors and the num_ctx rule."""

from __future__ import annotations

from contextlib import aclosing

import httpx
import pytest

from neuralrp.config import LLMSettings
from neuralrp.errors import BackendBadResponse, BackendUnavailable, ContextOverflow
from neuralrp.llm import ollama
from neuralrp.llm.client import OpenAICompatBackend
from neuralrp.llm.types import ChatMessage, SamplingParams, StreamChunk
from tests.fakes import FakeLLM, LiveServer, count_tokens, split_reply

MESSAGES = [ChatMessage("system", "You are Seraphina."), ChatMessage("user", "Hello there, traveller.")]
PARAMS = SamplingParams(temperature=0.5, top_p=0.9, top_k=30, min_p=0.02, repetition_penalty=1.15, max_tokens=64,
                        stop=("\nUser:",))
REPLY = "Well met, traveller! The glade is quiet tonight."


def backend_for(fake: FakeLLM, *, wish: int | None = 8192, **llm: object) -> OpenAICompatBackend:
    settings = LLMSettings(base_url="http://127.0.0.1:11434", **{"model": "llama3.2", **llm})  # type: ignore[arg-type]
    return OpenAICompatBackend(settings, transport=httpx.ASGITransport(app=fake.app), context_wish=wish)


async def collect(backend: OpenAICompatBackend, messages: list[ChatMessage] = MESSAGES,
                  params: SamplingParams = PARAMS, **kw: bool) -> list[StreamChunk]:
    return [chunk async for chunk in backend.stream(messages, params, **kw)]


async def test_stream_sends_native_body_with_every_sampler() -> None:
    fake = FakeLLM("ollama")
    fake.enqueue(REPLY)
    backend = backend_for(fake)
    chunks = await collect(backend)
    assert "".join(c.text for c in chunks) == REPLY
    assert len(chunks) > 5 and chunks[-1].finish_reason == "stop"
    assert fake.last_native_chat_request().json == {
        "model": "llama3.2",
        "messages": [{"role": "system", "content": "You are Seraphina."},
                     {"role": "user", "content": "Hello there, traveller."}],
        "stream": True,
        "options": {"num_ctx": 8192, "num_predict": 64, "temperature": 0.5, "top_p": 0.9, "top_k": 30,
                    "min_p": 0.02, "repeat_penalty": 1.15, "stop": ["\nUser:"]},
        "think": False,
    }
    assert fake.chat_requests() == []  # nothing went to /v1/chat/completions
    await backend.aclose()


async def test_no_stop_strings_means_no_stop_option() -> None:
    fake = FakeLLM("ollama")
    await collect(backend_for(fake), params=SamplingParams())
    assert "stop" not in fake.last_native_chat_request().json["options"]


async def test_num_predict_cut_gives_length() -> None:
    fake = FakeLLM("ollama")
    fake.enqueue(REPLY)
    chunks = await collect(backend_for(fake), params=SamplingParams(max_tokens=3))
    assert "".join(c.text for c in chunks) == "Well met,"
    assert chunks[-1].finish_reason == "length"


async def test_complete_reads_message_reason_and_usage() -> None:
    fake = FakeLLM("ollama")
    fake.enqueue(REPLY)
    result = await backend_for(fake).complete(MESSAGES, PARAMS)
    assert result.text == REPLY and result.finish_reason == "stop"
    prompt = sum(count_tokens(m.content) for m in MESSAGES)
    assert result.usage == {"prompt_tokens": prompt, "completion_tokens": len(split_reply(REPLY))}
    body = fake.last_native_chat_request().json
    assert body["stream"] is False and body["options"]["num_ctx"] == 8192


async def test_continue_sends_partial_assistant_last() -> None:
    fake = FakeLLM("ollama")
    fake.enqueue(" and more.")
    partial = [*MESSAGES, ChatMessage("assistant", "Half a reply")]
    chunks = await collect(backend_for(fake), messages=partial, continue_last=True)
    assert "".join(c.text for c in chunks) == " and more."
    body = fake.last_native_chat_request().json
    assert body["messages"][-1] == {"role": "assistant", "content": "Half a reply"}
    assert "continue_final_message" not in body and "add_generation_prompt" not in body


async def test_completion_mode_sends_the_raw_prompt_to_native_generate() -> None:
    # Issue 16, point 5: /v1/completions has no `raw`, so Ollama wrapped NeuralRP's rendered prompt in the
    # model's own template as a user message; /api/generate with raw: true feeds it to the model as it is.
    fake = FakeLLM("ollama", context_length=4096, modelfile_num_ctx=4096)
    fake.enqueue("Text mode works.")
    backend = backend_for(fake, api_mode="completion", template="llama3")
    chunks = await collect(backend)
    assert "".join(c.text for c in chunks) == "Text mode works."
    body = fake.last_request("/api/generate").json
    assert body["raw"] is True and body["think"] is False and body["stream"] is True
    assert body["prompt"].endswith("<|start_header_id|>assistant<|end_header_id|>\n\n")
    assert fake.prompts[-1] == body["prompt"]  # what the model saw: the prompt exactly, no second template
    assert body["options"]["num_predict"] == 64 and body["options"]["num_ctx"] == 4096
    assert body["options"]["stop"] == ["\nUser:", "<|eot_id|>", "<|start_header_id|>"]
    assert fake.completion_requests() == [] and fake.native_chat_requests() == []
    result = await backend.complete(MESSAGES, PARAMS)  # non-streamed: the `response` field
    assert result.finish_reason == "stop" and result.text.startswith("Reply")


async def test_completion_mode_continue_keeps_the_reply_open() -> None:
    fake = FakeLLM("ollama")
    fake.enqueue(" and more.")
    backend = backend_for(fake, api_mode="completion", template="chatml")
    partial = [*MESSAGES, ChatMessage("assistant", "Half a reply")]
    text = "".join(c.text for c in await collect(backend, messages=partial, continue_last=True))
    assert text == " and more."
    assert fake.prompts[-1].endswith("<|im_start|>assistant\nHalf a reply")


@pytest.mark.parametrize(
    ("fault", "params", "exc", "text"),
    [
        ("status", {"code": 500, "message": "llama runner process has terminated"}, BackendBadResponse,
         "HTTP 500: llama runner process has terminated"),
        ("status", {"code": 503}, BackendUnavailable, "busy or has no model loaded"),
        ("status", {"code": 400, "message": "invalid options"}, BackendBadResponse, "HTTP 400: invalid options"),
        ("context_overflow", {}, ContextOverflow, "context window"),
        ("cut", {"after": 2}, BackendBadResponse, "ended before the reply was finished"),
        ("malformed", {"after": 2}, BackendBadResponse, "unreadable stream chunk"),
        ("error_event", {"after": 2, "message": "out of memory"}, BackendBadResponse,
         "failed mid-reply: out of memory"),
    ],
)
async def test_faults_become_clear_errors(fault: str, params: dict[str, object], exc: type, text: str) -> None:
    fake = FakeLLM("ollama")
    fake.enqueue("one two three four five six seven")
    backend = backend_for(fake)
    await backend.info()
    fake.fault(fault, **params)
    got: list[str] = []
    with pytest.raises(exc, match=text):
        async for chunk in backend.stream(MESSAGES, PARAMS):
            got.append(chunk.text)
    assert bool(got) == (fault in ("cut", "malformed", "error_event"))  # text before a mid-stream failure arrives


async def test_unknown_model_is_a_404_sentence() -> None:
    fake = FakeLLM("ollama")
    backend = backend_for(fake, model="nope")
    message = 'answered 404 Not Found: model "nope" not found, try pulling it first'
    with pytest.raises(BackendBadResponse, match=message) as caught:
        await collect(backend)
    assert caught.value.status == 404 and caught.value.status_code == 502  # upstream 404, our 502
    with pytest.raises(BackendBadResponse, match=message):
        await backend.complete(MESSAGES, PARAMS)


async def test_slow_stream_still_completes() -> None:
    fake = FakeLLM("ollama")
    fake.enqueue("Slowly now.")
    fake.fault("slow", first=0.05, between=0.01)
    chunks = await collect(backend_for(fake))
    assert "".join(c.text for c in chunks) == "Slowly now."


async def test_real_socket_stream_and_abort_by_closing() -> None:
    fake = FakeLLM("ollama", hang_timeout=10.0)
    fake.enqueue(REPLY, "one two three four five")
    async with LiveServer(fake.app) as server:
        settings = LLMSettings(base_url=server.url, model="llama3.2", timeout_s=10)
        backend = OpenAICompatBackend(settings, context_wish=8192)
        chunks = await collect(backend)
        assert "".join(c.text for c in chunks) == REPLY and chunks[-1].finish_reason == "stop"
        fake.fault("hang", after=2)
        got = []
        async with aclosing(backend.stream(MESSAGES, PARAMS)) as stream:
            async for chunk in stream:
                got.append(chunk.text)
                if len(got) == 2:
                    break  # closing the stream closes the connection: Ollama's only way to stop generating
        assert got == ["one", " two"]
        assert await fake.wait_disconnect()
        await backend.aclose()


@pytest.mark.parametrize(
    ("fake_kw", "wish", "expected"),
    [
        ({"loaded": True, "context_length": 32768}, 8192, 32768),  # loaded bigger than wished: kept, no reload
        ({"loaded": True, "context_length": 8192}, 8192, 8192),
        ({"loaded": True, "context_length": 2048}, 8192, 8192),  # loaded too small: reload with the wish
        ({"loaded": False}, 8192, 8192),  # trained 131072 > wish
        ({"loaded": False, "trained_context": 4096}, 8192, 4096),  # the trained maximum caps the wish
        ({"loaded": False, "modelfile_num_ctx": 6144}, 8192, 6144),  # the Modelfile's num_ctx caps it
        # loaded above the Modelfile cap (someone asked for it): kept rather than shrunk to the cap
        ({"loaded": True, "context_length": 6144, "modelfile_num_ctx": 4096}, 8192, 6144),
        ({"loaded": False, "modelfile_num_ctx": 65536, "trained_context": 4096}, 32768, 32768),  # Modelfile wins
        ({"loaded": False}, None, ollama.DEFAULT_CONTEXT),  # no wish given: Ollama's own default
    ],
)
async def test_context_rule(fake_kw: dict[str, object], wish: int | None, expected: int) -> None:
    fake = FakeLLM("ollama", **fake_kw)  # type: ignore[arg-type]
    backend = backend_for(fake, wish=wish)
    assert (await backend.info()).context_length == expected
    await collect(backend)
    await backend.complete(MESSAGES, PARAMS)
    assert [r.json["options"]["num_ctx"] for r in fake.native_chat_requests()] == [expected, expected]
    assert fake.context_length == expected and fake.loaded  # Ollama allocated exactly what we report
    assert (await backend.info(refresh=True)).context_length == expected  # stable once loaded


async def test_context_rule_without_show() -> None:
    fake = FakeLLM("ollama", loaded=False)
    fake.set_fault("status", code=500, path=ollama.SHOW_PATH)
    assert (await backend_for(fake, wish=12000).info()).context_length == 12000


@pytest.mark.parametrize(
    ("show", "trained", "modelfile"),
    [
        ({"parameters": 'stop "<|eot_id|>"\nnum_ctx 8192', "model_info": {"llama.context_length": 131072}},
         131072, 8192),
        ({"parameters": "num_ctx     2048\ntemperature 0.7", "model_info": {"qwen2.context_length": 32768,
                                                                            "general.architecture": "qwen2"}},
         32768, 2048),
        ({"parameters": "num_keep 24", "model_info": {}}, None, None),
        (None, None, None),
    ],
)
def test_show_parsing(show: object, trained: int | None, modelfile: int | None) -> None:
    assert ollama.trained_context(show) == trained
    assert ollama.modelfile_context(show) == modelfile


def test_loaded_context_matches_tags() -> None:
    ps = {"models": [{"name": "llama3.2:1b", "context_length": 2048},
                     {"name": "llama3.2:latest", "context_length": 8192}]}
    assert ollama.loaded_context(ps, "llama3.2") == 8192
    assert ollama.loaded_context(ps, "llama3.2:1b") == 2048
    assert ollama.loaded_context(ps, "mistral") is None
    assert ollama.loaded_context({"models": []}, "llama3.2") is None


@pytest.mark.parametrize(
    ("line", "chunk"),
    [
        ('{"message":{"role":"assistant","content":"Well"},"done":false}', StreamChunk("Well")),
        ('{"message":{"role":"assistant","content":""},"done":true,"done_reason":"length"}',
         StreamChunk("", "length")),
        ('{"message":{"role":"assistant","content":""},"done":true}', StreamChunk("", "stop")),
        ('{"message":{"role":"assistant","content":""},"done":false}', None),
        ("", None),
    ],
)
def test_decode_line(line: str, chunk: StreamChunk | None) -> None:
    assert ollama.decode_line(line) == chunk


def test_decode_line_error() -> None:
    with pytest.raises(BackendBadResponse, match="failed mid-reply: model runner crashed"):
        ollama.decode_line('{"error": "model runner crashed"}')
