"""Backends as they really behave (issue 16): Continue, samplers, thinking and detection per server.

Each test drives the client against a fake that reproduces the real server's behaviour (see
tests/fakes/llm_dialects.py for the source each behaviour was read in) and fails on the client as it was
before: Continue that started a new reply, a dropped `repeat_penalty`, thinking that ate the reply, an
embedding model chosen to chat, a cached failed detection, a refused prefill, trimmed summaries.
"""

from __future__ import annotations

import struct
from pathlib import Path

import httpx
import pytest

from neuralrp.config import LLMSettings
from neuralrp.errors import BackendBadResponse, NotSupportedByBackend
from neuralrp.llm import gguf
from neuralrp.llm.client import OpenAICompatBackend
from neuralrp.llm.types import ChatMessage, Completion, SamplingParams, StreamChunk
from neuralrp.turns.summarizer import clean_summary
from tests.fakes import FakeLLM, count_tokens

MESSAGES = [ChatMessage("system", "You are Seraphina."), ChatMessage("user", "Hello there, traveller.")]
PARTIAL = [*MESSAGES, ChatMessage("assistant", "Half a reply")]
PARAMS = SamplingParams(temperature=0.5, top_p=0.9, top_k=30, min_p=0.02, repetition_penalty=1.15, max_tokens=64,
                        stop=("\nUser:",))
THOUGHTS = "Okay, the user greets me. I should answer in character, warmly, and keep it short and vivid."


def backend_for(fake: FakeLLM, base_url: str = "http://llm.test/v1", **kw: object) -> OpenAICompatBackend:
    llm = {k: v for k, v in kw.items() if k in LLMSettings.model_fields}
    extra = {k: v for k, v in kw.items() if k not in llm}
    return OpenAICompatBackend(LLMSettings(base_url=base_url, **llm),  # type: ignore[arg-type]
                               transport=httpx.ASGITransport(app=fake.app), **extra)  # type: ignore[arg-type]


async def collect(backend: OpenAICompatBackend, messages: list[ChatMessage] = MESSAGES,
                  params: SamplingParams = PARAMS, **kw: bool) -> list[StreamChunk]:
    return [chunk async for chunk in backend.stream(messages, params, **kw)]


def reply(chunks: list[StreamChunk]) -> str:
    return "".join(c.text for c in chunks)


# ---- 1. KoboldCpp: Continue through its instruct placeholders (1.102), refused on 1.76


async def test_kobold_continue_writes_on_in_the_same_message() -> None:
    fake = FakeLLM("koboldcpp")
    fake.enqueue(" and more.")
    chunks = await collect(backend_for(fake), messages=PARTIAL, continue_last=True)
    assert reply(chunks) == " and more."
    assert fake.chat_requests() == []  # its chat route would close the reply and open a new one
    body = fake.last_completion_request().json
    assert body["prompt"] == ("{{[SYSTEM]}}You are Seraphina.{{[SYSTEM_END]}}{{[INPUT]}}Hello there, traveller."
                              "{{[INPUT_END]}}{{[OUTPUT]}}Half a reply")
    assert body["stop"] == ["\nUser:", "{{[INPUT]}}", "{{[OUTPUT]}}"] and body["rep_pen"] == 1.15
    # what KoboldCpp feeds the model: its adapter's tags, and the prompt ends inside the reply
    assert fake.prompts[-1].endswith("\n### Response:\nHalf a reply")


async def test_kobold_chat_route_would_have_started_a_new_reply() -> None:
    fake = FakeLLM("koboldcpp")
    await collect(backend_for(fake), messages=MESSAGES)
    assert fake.prompts[-1].endswith("Hello there, traveller.\n### Response:\n")  # a normal reply: new turn


async def test_kobold_176_continue_is_refused_with_a_sentence() -> None:
    fake = FakeLLM("koboldcpp", version="1.76")
    with pytest.raises(NotSupportedByBackend, match="Continue is not supported by this server: KoboldCpp 1.76"):
        await collect(backend_for(fake), messages=PARTIAL, continue_last=True)
    assert fake.generations == 0


# ---- 2. llama-cpp-python: detected, `repeat_penalty`, its tokenizer, Continue on the built-in server


async def test_llama_cpp_python_is_detected_and_gets_repeat_penalty() -> None:
    fake = FakeLLM("llamacpp_python", model="smollm2")
    backend = backend_for(fake)
    info = await backend.info()
    assert (info.kind, info.model, info.can_tokenize) == ("llamacpp_python", "smollm2", True)
    fake.enqueue("Well met.")
    assert reply(await collect(backend)) == "Well met."
    body = fake.last_chat_request().json
    assert body["repeat_penalty"] == 1.15 and "repetition_penalty" not in body
    assert fake.samplers[-1] == {"repeat_penalty": 1.15}  # the server's default would be 1.1
    assert await backend.count_tokens("Hello there, traveller.") == count_tokens("Hello there, traveller.")
    assert fake.requests_to("/extras/tokenize/count")


async def test_llama_cpp_python_elsewhere_cannot_continue() -> None:
    fake = FakeLLM("llamacpp_python")
    with pytest.raises(NotSupportedByBackend, match="llama-cpp-python always starts a new reply"):
        await collect(backend_for(fake), messages=PARTIAL, continue_last=True)
    assert fake.generations == 0


def write_gguf(path: Path, template: str | None) -> Path:
    """A GGUF header (no tensors) with a vocabulary, BOS/EOS ids and, optionally, a chat template."""
    def text(value: str) -> bytes:
        raw = value.encode()
        return struct.pack("<Q", len(raw)) + raw

    tokens = ["<unk>", "<|im_start|>", "<|im_end|>", "hello"]
    kvs = [text("general.architecture") + struct.pack("<I", 8) + text("llama"),
           text("tokenizer.ggml.scores") + struct.pack("<IIQ", 9, 6, 4) + struct.pack("<4f", 0, 0, 0, 0),
           text("tokenizer.ggml.tokens") + struct.pack("<IIQ", 9, 8, len(tokens)) + b"".join(map(text, tokens)),
           text("tokenizer.ggml.bos_token_id") + struct.pack("<II", 4, 1),
           text("tokenizer.ggml.eos_token_id") + struct.pack("<II", 4, 2),
           text("tokenizer.ggml.add_bos_token") + struct.pack("<I?", 7, True)]
    if template is not None:
        kvs.append(text("tokenizer.chat_template") + struct.pack("<I", 8) + text(template))
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, len(kvs)) + b"".join(kvs))
    return path


JINJA_CHATML = ("{{ bos_token }}{% for m in messages %}{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
                "{% if add_generation_prompt %}assistant\n{% endif %}")


@pytest.mark.parametrize(("template", "chat_format", "prompt_end", "stop"), [
    (JINJA_CHATML, None, "assistant\nHalf a reply", ["\nUser:", "<|im_end|>"]),
    (None, "chatml", "<|im_start|>assistant\nHalf a reply", ["\nUser:", "<|im_end|>"]),
    (None, None, "Hello there, traveller. [/INST]Half a reply", ["\nUser:"]),  # no template: "llama-2"
])
async def test_built_in_server_continue_renders_like_its_chat_route(
        tmp_path: Path, template: str | None, chat_format: str | None, prompt_end: str, stop: list[str]) -> None:
    model = gguf.LocalModel(write_gguf(tmp_path / "m.gguf", template), chat_format)
    fake = FakeLLM("llamacpp_python")
    fake.enqueue(" and more.")
    chunks = await collect(backend_for(fake, local_model=model), messages=PARTIAL, continue_last=True)
    assert reply(chunks) == " and more."
    body = fake.last_completion_request().json
    assert body["prompt"].endswith(prompt_end) and body["stop"] == stop and body["repeat_penalty"] == 1.15
    assert not body["prompt"].startswith("<|im_start|>system") or chat_format == "chatml"
    assert fake.chat_requests() == []


def test_gguf_reader_reads_template_and_bos(tmp_path: Path) -> None:
    fmt = gguf.chat_format(gguf.LocalModel(write_gguf(tmp_path / "m.gguf", JINJA_CHATML)))
    assert (fmt.name, fmt.template, fmt.bos_token, fmt.eos_token, fmt.add_bos) == (
        None, JINJA_CHATML, "<|im_start|>", "<|im_end|>", True)
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF\x03\x00")
    with pytest.raises(BackendBadResponse, match="cannot be read for Continue"):
        gguf.chat_format(gguf.LocalModel(bad))


# ---- 3. Ollama thinking models: off by default, allowed by llm.thinking, never the reply


async def test_ollama_thinking_is_off_by_default() -> None:
    fake = FakeLLM("ollama", thinking=THOUGHTS, model="qwen3")
    fake.enqueue("Well met, traveller!")
    chunks = await collect(backend_for(fake, base_url="http://o:11434", model="qwen3"),
                           params=SamplingParams(max_tokens=12))
    assert reply(chunks) == "Well met, traveller!" and chunks[-1].finish_reason == "stop"
    assert fake.last_native_chat_request().json["think"] is False
    assert not any(c.thinking for c in chunks)


async def test_ollama_thinking_allowed_is_kept_apart() -> None:
    fake = FakeLLM("ollama", thinking=THOUGHTS, model="qwen3")
    fake.enqueue("Well met, traveller!")
    backend = backend_for(fake, base_url="http://o:11434", model="qwen3", thinking=True)
    chunks = await collect(backend, params=SamplingParams(max_tokens=200))
    assert "think" not in fake.last_native_chat_request().json  # Ollama's default: a thinking model thinks
    assert reply(chunks) == "Well met, traveller!"
    assert "".join(c.thinking for c in chunks) == THOUGHTS
    fake.enqueue("Again.")
    result = await backend.complete(MESSAGES, SamplingParams(max_tokens=200))
    assert (result.text, result.thinking) == ("Again.", THOUGHTS)


# ---- 4. Ollama model choice: by capability, never an embedding model


@pytest.mark.parametrize("tags_capabilities", [True, False])  # newer /api/tags list them; else /api/show
async def test_ollama_picks_a_chat_model_not_the_newest_embedding_model(tags_capabilities: bool) -> None:
    embed = {"name": "nomic-embed-text:latest", "capabilities": ["embedding"], "family": "nomic-bert",
             "modified_at": "2026-01-02T10:00:00Z"}
    fake = FakeLLM("ollama", others=[embed], tags_capabilities=tags_capabilities)
    info = await backend_for(fake, base_url="http://o:11434").info()
    assert info.model == "llama3.2:latest"
    assert (await httpx.AsyncClient(transport=httpx.ASGITransport(app=fake.app), base_url="http://o").get(
        "/v1/models")).json()["data"][0]["id"] == "nomic-embed-text:latest"  # what was taken before


async def test_ollama_without_capabilities_skips_bert_embedders() -> None:
    embed = {"name": "mxbai-embed-large:latest", "family": "bert", "modified_at": "2026-01-02T10:00:00Z"}
    fake = FakeLLM("ollama", others=[embed], tags_capabilities=False)
    fake.capabilities = None  # type: ignore[assignment]  # an Ollama too old to report capabilities anywhere
    assert (await backend_for(fake, base_url="http://o:11434").info()).model == "llama3.2:latest"


# ---- 6. TabbyAPI: a refused first contact is not kept


async def test_tabby_without_a_loaded_model_is_asked_again() -> None:
    fake = FakeLLM("tabbyapi", context_length=16384, loaded=False)
    backend = backend_for(fake, context_length=None)
    first = await backend.info()
    assert first.kind == "tabbyapi" and first.context_length is None and first.can_tokenize
    fake.loaded = True
    second = await backend.info()
    assert second.context_length == 16384
    asked = len(fake.requests)
    assert await backend.info() is second and len(fake.requests) == asked  # now it is kept


async def test_tabby_without_its_key_is_still_tabby_and_asked_again() -> None:
    fake = FakeLLM("tabbyapi", api_key="s3cret", context_length=16384)
    backend = backend_for(fake)
    info = await backend.info()
    assert info.kind == "tabbyapi"  # /.well-known/serviceinfo needs no key
    assert (await backend.info()) is not info  # not kept: the 401 on /v1/model was no answer


async def test_a_detection_the_server_answered_is_kept() -> None:
    fake = FakeLLM("openai")
    backend = backend_for(fake)
    first = await backend.info()
    asked = len(fake.requests)
    assert first.kind == "openai" and await backend.info() is first and len(fake.requests) == asked


# ---- 7. llama.cpp server: Continue on thinking templates, mid-stream errors, reasoning apart


async def test_llamacpp_continue_on_a_thinking_template() -> None:
    fake = FakeLLM("llamacpp", thinking=THOUGHTS)
    fake.enqueue(" and more.")
    chunks = await collect(backend_for(fake, thinking=True), messages=PARTIAL, continue_last=True)
    assert reply(chunks) == " and more."
    body = fake.last_chat_request().json
    assert body["messages"][-1] == {"role": "assistant", "content": "Half a reply"}
    assert body["chat_template_kwargs"] == {"enable_thinking": False}


async def test_llamacpp_prefill_refusal_reads_as_a_sentence() -> None:
    fake = FakeLLM("llamacpp", thinking=THOUGHTS)
    backend = backend_for(fake)
    raw = {"model": "m", "messages": [m.as_dict() for m in PARTIAL]}
    response = await backend._http.post("/v1/chat/completions", json=raw)
    assert response.status_code == 400 and "prefill is incompatible with enable_thinking" in response.text


@pytest.mark.parametrize("legacy", [False, True])
async def test_llamacpp_mid_stream_error(legacy: bool) -> None:
    fake = FakeLLM("llamacpp", legacy_errors=legacy)
    fake.enqueue("one two three four five")
    backend = backend_for(fake)
    await backend.info()
    fake.fault("error_event", after=2, message="out of memory")
    got: list[str] = []
    with pytest.raises(BackendBadResponse, match="failed mid-reply: .*out of memory"):
        async for chunk in backend.stream(MESSAGES, PARAMS):
            got.append(chunk.text)
    assert got


@pytest.mark.parametrize("flavour", ["llamacpp", "tabbyapi"])
async def test_reasoning_content_is_kept_apart(flavour: str) -> None:
    fake = FakeLLM(flavour, thinking=THOUGHTS)
    fake.enqueue("Well met!")
    off = await collect(backend_for(fake))
    assert fake.last_chat_request().json["chat_template_kwargs"] == {"enable_thinking": False}
    assert reply(off) == "Well met!" and not any(c.thinking for c in off)
    fake.enqueue("Well met!")
    on = await collect(backend_for(fake, thinking=True), params=SamplingParams(max_tokens=200))
    assert "chat_template_kwargs" not in fake.last_chat_request().json
    assert reply(on) == "Well met!" and "".join(c.thinking for c in on) == THOUGHTS


# ---- 8. KoboldCpp reports a stop string as "length"; /api/extra/perf tells the truth


async def test_kobold_stop_string_is_a_stop_not_a_cut() -> None:
    fake = FakeLLM("koboldcpp")
    summary = "Mira and the traveller crossed the glade at dusk, wary of the ridge"
    fake.enqueue(summary + ". The end was near\nUser: more")
    backend = backend_for(fake)
    result = await backend.complete(MESSAGES, SamplingParams(max_tokens=300, stop=("\nUser:",)))
    assert fake.last_chat_request().json["stop"] == ["\nUser:"]
    assert result.finish_reason == "stop"  # KoboldCpp itself said "length"
    assert clean_summary(result) == summary + ". The end was near"  # not trimmed to the last full sentence
    fake.enqueue("one two three four five six")
    chunks = await collect(backend, params=SamplingParams(max_tokens=3))
    assert chunks[-1].finish_reason == "length"  # a real cut stays a cut
    cut = Completion(summary + ". The end was near", "length")
    assert clean_summary(cut) == summary + "."  # what "length" did to good summaries
