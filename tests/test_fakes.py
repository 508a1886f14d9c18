"""The fakes follow the backend contracts in shared/reference/api-contracts.md."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from PIL import Image

from tests.fakes import (
    NATIVE_CHAT_PATH,
    FakeA1111,
    FakeLLM,
    LiveServer,
    count_tokens,
    data_payloads,
    fake_token_ids,
    json_chunks,
    make_png,
    png_text,
    split_reply,
    sse_fields,
)

CHAT = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"
HELLO = [{"role": "system", "content": "You are a knight."}, {"role": "user", "content": "Hello there, traveller."}]


def client(app: Any) -> httpx.AsyncClient:
    """An in-process client (whole responses are buffered by ASGITransport)."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://fake")


def live_client(server: LiveServer, timeout: float) -> httpx.AsyncClient:
    """A real-socket client for a LiveServer (ignores proxy settings from the environment)."""
    return httpx.AsyncClient(base_url=server.url, timeout=timeout, trust_env=False)


def chat_body(stream: bool = True, **extra: Any) -> dict[str, Any]:
    """A chat request body for the llama3.2 model (accepted by every flavour)."""
    return {"model": "llama3.2", "messages": HELLO, "stream": stream, **extra}


async def post(app: Any, path: str, body: Any) -> httpx.Response:
    """POST JSON to an app in-process."""
    async with client(app) as c:
        return await c.post(path, json=body)


def content_of(chunks: list[dict[str, Any]]) -> str:
    """Join the delta contents of chat chunks."""
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])


# --------------------------------------------------------------------------- tokens and replies


def test_tokenizer_and_reply_split_are_predictable() -> None:
    assert count_tokens("Hello there, traveller.") == 5
    assert fake_token_ids("Hello there, traveller.", bos=True)[0] == 1
    assert fake_token_ids("abc") == fake_token_ids("abc")
    pieces = split_reply("Well met,  traveller! ")
    assert pieces == ["Well", " met", ",", "  traveller", "! "]
    assert "".join(pieces) == "Well met,  traveller! "


async def test_enqueued_replies_then_default_reply() -> None:
    fake = FakeLLM("openai")
    fake.enqueue("First canned.", "Second canned.")
    texts = [(await post(fake.app, CHAT, chat_body(False))).json()["choices"][0]["message"]["content"]
             for _ in range(3)]
    assert texts == ["First canned.", "Second canned.", "Reply 3 to: Hello there, traveller."]


async def test_non_stream_response_has_usage_and_is_recorded() -> None:
    fake = FakeLLM("llamacpp")
    fake.enqueue("Well met, traveller!")
    async with client(fake.app) as c:
        response = await c.post(CHAT, json=chat_body(False, temperature=0.7, max_tokens=50),
                                headers={"Authorization": "Bearer abc"})
    body = response.json()
    assert body["object"] == "chat.completion"
    assert body["choices"][0] == {"index": 0, "message": {"role": "assistant", "content": "Well met, traveller!"},
                                  "finish_reason": "stop"}
    assert body["usage"] == {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
    assert body["timings"]["predicted_n"] == 5
    request = fake.last_chat_request()
    assert request.method == "POST" and request.json["messages"] == HELLO
    assert request.json["temperature"] == 0.7 and request.json["max_tokens"] == 50
    assert request.headers["authorization"] == "Bearer abc"
    assert request.time <= time.time() and fake.chat_requests() == [request]


async def test_max_tokens_and_stop_truncate() -> None:
    fake = FakeLLM("openai")
    fake.enqueue("one two three four five", "alpha beta END gamma")
    first = (await post(fake.app, CHAT, chat_body(False, max_tokens=2))).json()
    second = (await post(fake.app, CHAT, chat_body(False, stop=["END"]))).json()
    assert first["choices"][0]["message"]["content"] == "one two"
    assert first["choices"][0]["finish_reason"] == "length"
    assert second["choices"][0]["message"]["content"] == "alpha beta "
    assert second["choices"][0]["finish_reason"] == "stop"


async def test_tabby_fills_usage_only_with_include_usage() -> None:
    fake = FakeLLM("tabbyapi")
    plain = (await post(fake.app, CHAT, chat_body(False))).json()
    asked = (await post(fake.app, CHAT, chat_body(False, stream_options={"include_usage": True}))).json()
    assert plain["usage"] is None
    assert asked["usage"]["prompt_tokens"] == 10


# --------------------------------------------------------------------------- stream framing


async def stream_raw(fake: FakeLLM, path: str = CHAT, **extra: Any) -> bytes:
    """Raw bytes of a streamed request (buffered in-process)."""
    body = chat_body(True, **extra) if path == CHAT else {"model": "llama3.2", "prompt": "Once", "stream": True}
    response = await post(fake.app, path, body)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    return response.content


async def test_llamacpp_stream_shape() -> None:
    fake = FakeLLM("llamacpp")
    fake.enqueue("Well met, traveller!")
    raw = await stream_raw(fake)
    chunks = json_chunks(raw)
    assert b"\r" not in raw and raw.endswith(b"data: [DONE]\n\n")
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": None}
    assert all("role" not in c["choices"][0]["delta"] for c in chunks[1:])
    assert chunks[-1]["choices"][0] == {"index": 0, "delta": {}, "finish_reason": "stop"}
    assert "timings" in chunks[-1] and chunks[1]["system_fingerprint"]
    assert content_of(chunks) == "Well met, traveller!"
    assert len(chunks) == 1 + 5 + 1


async def test_koboldcpp_stream_shape() -> None:
    fake = FakeLLM("koboldcpp")
    fake.enqueue("Well met!")
    chunks = json_chunks(raw := await stream_raw(fake))
    assert raw.endswith(b"data: [DONE]\n\n")
    assert all(c["id"] == "koboldcpp" for c in chunks)
    assert all(c["choices"][0]["delta"]["role"] == "assistant" for c in chunks)
    assert [c["choices"][0]["finish_reason"] for c in chunks] == [None, None, None, "stop"]
    assert chunks[-1]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert content_of(chunks) == "Well met!"


async def test_koboldcpp_legacy_null_strings_and_bare_done() -> None:
    fake = FakeLLM("koboldcpp", kobold_legacy=True)
    fake.enqueue("Well met!")
    raw = await stream_raw(fake, stream_options={"include_usage": True})
    chunks = json_chunks(raw)
    assert raw.endswith(b"\n\ndata: [DONE]")
    assert [c["choices"][0]["finish_reason"] for c in chunks] == ["null", "null", "null", "stop"]


async def test_tabbyapi_stream_shape() -> None:
    fake = FakeLLM("tabbyapi")
    fake.enqueue("Well met!")
    raw = await stream_raw(fake, stream_options={"include_usage": True})
    assert b"\n" not in raw.replace(b"\r\n", b"")
    assert raw.endswith(b"data: [DONE]\r\n\r\n")
    assert any(field == "" and value.startswith("ping - ") for field, value in sse_fields(raw))
    chunks = json_chunks(raw)
    assert all("role" not in c["choices"][0]["delta"] for c in chunks if c["choices"])
    finish = chunks[-2]["choices"][0]
    assert finish["delta"] == {} and finish["finish_reason"] == "stop" and finish["eos_reason"]
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 3


@pytest.mark.parametrize("flavour", ["ollama", "openai"])
async def test_role_only_in_first_chunk(flavour: str) -> None:
    fake = FakeLLM(flavour)
    fake.enqueue("Well met!")
    raw = await stream_raw(fake, stream_options={"include_usage": True})
    chunks = json_chunks(raw)
    assert raw.endswith(b"data: [DONE]\n\n")
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": "Well"}
    assert chunks[1]["choices"][0]["delta"] == {"content": " met"}
    assert chunks[-2]["choices"][0] == {"index": 0, "delta": {}, "finish_reason": "stop"}
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] == 13
    assert (chunks[0].get("system_fingerprint") == "fp_ollama") == (flavour == "ollama")


async def test_no_usage_chunk_without_include_usage() -> None:
    chunks = json_chunks(await stream_raw(FakeLLM("ollama")))
    assert all(c["choices"] for c in chunks) and "usage" not in chunks[-1]


async def test_text_completion_stream() -> None:
    fake = FakeLLM("llamacpp")
    fake.enqueue("upon a time")
    chunks = json_chunks(await stream_raw(fake, COMPLETIONS))
    assert all(c["object"] == "text_completion" for c in chunks)
    assert "".join(c["choices"][0]["text"] for c in chunks) == "upon a time"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert fake.last_completion_request().json["prompt"] == "Once"


# --------------------------------------------------------------------------- errors and faults


async def test_context_overflow_is_rejected_by_strict_backends() -> None:
    long_chat = chat_body(False, messages=[{"role": "user", "content": "word " * 40}])
    tabby = await post(FakeLLM("tabbyapi", context_length=32).app, CHAT, long_chat)
    llama = await post(FakeLLM("llamacpp", context_length=32).app, CHAT, long_chat)
    kobold = await post(FakeLLM("koboldcpp", context_length=32).app, CHAT, long_chat)
    assert tabby.status_code == 400 and tabby.json()["error"]["code"] == "context_length_exceeded"
    assert "Prompt length 40 exceeds the available context size of 32" in tabby.json()["error"]["message"]
    assert llama.status_code == 400
    assert llama.json()["error"] | {"message": ""} == {"code": 400, "message": "", "type": "exceed_context_size_error",
                                                       "n_prompt_tokens": 40, "n_ctx": 32}
    assert kobold.status_code == 200


async def test_context_overflow_fault_even_when_streaming() -> None:
    fake = FakeLLM("tabbyapi")
    fake.fault("context_overflow")
    first = await post(fake.app, CHAT, chat_body(True))
    second = await post(fake.app, CHAT, chat_body(True))
    assert first.status_code == 400 and first.json()["error"]["type"] == "invalid_request_error"
    assert second.status_code == 200


@pytest.mark.parametrize(
    ("flavour", "code", "expected"),
    [
        ("koboldcpp", 503, {"detail": {"msg": "Server is busy; please try again later.",
                                       "type": "service_unavailable"}}),
        ("tabbyapi", 503, {"detail": "No models are currently loaded."}),
        ("llamacpp", 503, {"error": {"code": 503, "message": "Loading model", "type": "unavailable_error"}}),
        ("ollama", 500, {"error": {"message": "Internal server error", "type": "api_error", "param": None,
                                   "code": None}}),
    ],
)
async def test_status_fault_uses_flavour_error_body(flavour: str, code: int, expected: dict[str, Any]) -> None:
    fake = FakeLLM(flavour)
    fake.fault("status", code=code)
    response = await post(fake.app, CHAT, chat_body())
    assert response.status_code == code and response.json() == expected
    assert (await post(fake.app, CHAT, chat_body(False))).status_code == 200
    assert len(fake.chat_requests()) == 2


async def test_ollama_unknown_model_is_404() -> None:
    response = await post(FakeLLM("ollama").app, CHAT, chat_body(model="nope"))
    assert response.status_code == 404
    assert response.json() == {"error": {"message": 'model "nope" not found, try pulling it first',
                                         "type": "not_found_error", "param": None, "code": None}}


# --------------------------------------------------------------------------- Ollama native /api/chat


def native_body(**extra: Any) -> dict[str, Any]:
    """An Ollama native chat body (no `stream` key: the native default is to stream)."""
    return {"model": "llama3.2", "messages": HELLO, **extra}


def ndjson_lines(raw: bytes) -> list[dict[str, Any]]:
    """Every NDJSON line of a body, decoded."""
    return [json.loads(line) for line in raw.decode().splitlines() if line.strip()]


async def test_native_chat_streams_ndjson_by_default() -> None:
    fake = FakeLLM("ollama", loaded=False)
    fake.enqueue("Well met!")
    response = await post(fake.app, NATIVE_CHAT_PATH, native_body(options={"num_ctx": 16384}))
    assert response.status_code == 200 and response.headers["content-type"] == "application/x-ndjson"
    lines = ndjson_lines(response.content)
    assert [line["message"]["content"] for line in lines] == ["Well", " met", "!", ""]
    assert [line["done"] for line in lines] == [False, False, False, True]
    last = lines[-1]
    assert last["done_reason"] == "stop" and last["eval_count"] == 3
    assert last["prompt_eval_count"] == sum(count_tokens(m["content"]) for m in HELLO)
    assert fake.last_native_chat_request().json["options"] == {"num_ctx": 16384}
    async with client(fake.app) as c:
        ps = (await c.get("/api/ps")).json()
    assert ps["models"][0]["context_length"] == 16384  # the request loaded the model with its num_ctx


async def test_native_chat_non_stream_and_options() -> None:
    fake = FakeLLM("ollama")
    fake.enqueue("One two three four. Stop here")
    body = native_body(stream=False, options={"num_predict": 3, "stop": ["Stop"]})
    response = await post(fake.app, NATIVE_CHAT_PATH, body)
    data = response.json()
    assert data["message"] == {"role": "assistant", "content": "One two three"}
    assert data["done"] is True and data["done_reason"] == "length" and data["eval_count"] == 3


async def test_native_chat_errors_are_native() -> None:
    fake = FakeLLM("ollama")
    response = await post(fake.app, NATIVE_CHAT_PATH, native_body(model="nope"))
    assert response.status_code == 404
    assert response.json() == {"error": 'model "nope" not found, try pulling it first'}
    assert (await post(fake.app, NATIVE_CHAT_PATH, {"messages": HELLO})).json() == {"error": "model is required"}
    fake.fault("status", code=500, message="llama runner process has terminated")
    response = await post(fake.app, NATIVE_CHAT_PATH, native_body())
    assert response.status_code == 500 and response.json() == {"error": "llama runner process has terminated"}


@pytest.mark.parametrize(
    ("fault", "params", "check"),
    [
        ("error_event", {"after": 2, "message": "boom"}, lambda lines: lines[-1] == '{"error": "boom"}'),
        ("cut", {"after": 2}, lambda lines: len(lines) == 2 and '"done": true' not in lines[-1]),
        ("malformed", {"after": 1}, lambda lines: lines[1] == "{not json" and '"done": true' in lines[-1]),
    ],
)
async def test_native_stream_faults(fault: str, params: dict[str, Any], check: Any) -> None:
    fake = FakeLLM("ollama")
    fake.enqueue("one two three four")
    fake.fault(fault, **params)
    response = await post(fake.app, NATIVE_CHAT_PATH, native_body())
    assert check(response.text.splitlines())


async def test_persistent_fault_times_and_paths() -> None:
    fake = FakeLLM("llamacpp")
    fake.set_fault("status", code=503, path="/health")
    fake.fault("status", code=500, times=2)
    async with client(fake.app) as c:
        health = [(await c.get("/health")).status_code for _ in range(2)]
        chats = [(await c.post(CHAT, json=chat_body(False))).status_code for _ in range(3)]
        fake.clear_faults()
        assert (await c.get("/health")).json() == {"status": "ok"}
    assert health == [503, 503] and chats == [500, 500, 200]
    with pytest.raises(ValueError):
        fake.fault("explode")


async def test_cut_stream_has_no_done() -> None:
    fake = FakeLLM("openai")
    fake.enqueue("one two three four")
    fake.fault("cut", after=2)
    raw = await stream_raw(fake)
    assert data_payloads(raw)[-1] != "[DONE]" and len(json_chunks(raw)) == 2


async def test_malformed_line_mid_stream() -> None:
    fake = FakeLLM("ollama")
    fake.fault("malformed", after=1)
    payloads = data_payloads(await stream_raw(fake))
    assert payloads[1] == "{not json" and payloads[-1] == "[DONE]"


async def test_error_events_per_flavour() -> None:
    llama, tabby, kobold = FakeLLM("llamacpp"), FakeLLM("tabbyapi"), FakeLLM("koboldcpp")
    for fake in (llama, tabby, kobold):
        fake.fault("error_event", after=2, message="boom")
    llama_fields = sse_fields(await stream_raw(llama))
    assert llama_fields[-1][0] == "error" and json.loads(llama_fields[-1][1])["message"] == "boom"
    assert ("data", "[DONE]") not in llama_fields
    tabby_payloads = data_payloads(await stream_raw(tabby))
    assert json.loads(tabby_payloads[-1]) == {"error": {"message": "boom", "trace": None}}
    kobold_raw = await stream_raw(kobold)
    assert len(json_chunks(kobold_raw)) == 2 and b"[DONE]" not in kobold_raw


async def test_slow_delays_first_chunk() -> None:
    fake = FakeLLM("openai")
    fake.fault("slow", first=0.2, between=0.01)
    started = time.monotonic()
    await stream_raw(fake)
    assert time.monotonic() - started >= 0.2


@pytest.mark.parametrize("flavour", ["tabbyapi", "koboldcpp", "llamacpp", "openai"])
async def test_api_key_rejects_with_flavour_401(flavour: str) -> None:
    fake = FakeLLM(flavour, api_key="sekrit")
    async with client(fake.app) as c:
        denied = await c.post(CHAT, json=chat_body(False))
        allowed = await c.post(CHAT, json=chat_body(False), headers={"Authorization": "Bearer sekrit"})
    assert denied.status_code == 401 and allowed.status_code == 200
    if flavour == "tabbyapi":
        assert denied.json() == {"detail": "Invalid API key"}
    if flavour == "koboldcpp":
        assert denied.json()["detail"]["type"] == "unauthorized"


# --------------------------------------------------------------------------- info endpoints


INFO_CASES: list[tuple[str, str, str, Any, Any]] = [
    ("koboldcpp", "GET", "/api/extra/version", None, lambda b: b["result"] == "KoboldCpp"),
    ("koboldcpp", "GET", "/api/extra/true_max_context_length", None, lambda b: b == {"value": 4096}),
    ("koboldcpp", "POST", "/api/extra/tokencount", {"prompt": "Hello there, traveller.", "special": True},
     lambda b: b["value"] == 6 and len(b["ids"]) == 6 and b["ids"][0] == 1),
    ("koboldcpp", "POST", "/api/extra/abort", {"genkey": "KCPP1"}, lambda b: b["done"] == "true"),
    ("koboldcpp", "GET", "/api/v1/model", None, lambda b: b["result"].startswith("koboldcpp/")),
    ("koboldcpp", "GET", "/v1/models", None, lambda b: b["data"][0]["owned_by"] == "koboldcpp"),
    ("tabbyapi", "GET", "/health", None, lambda b: b == {"status": "healthy", "issues": []}),
    ("tabbyapi", "GET", "/v1/model", None, lambda b: b["parameters"]["max_seq_len"] == 4096),
    ("tabbyapi", "POST", "/v1/token/encode", {"text": "Hello there, traveller.", "add_bos_token": True},
     lambda b: b["length"] == 6 and len(b["tokens"]) == 6),
    ("tabbyapi", "POST", "/v1/token/encode", {"text": HELLO, "add_bos_token": False}, lambda b: b["length"] == 10),
    ("tabbyapi", "GET", "/v1/models", None, lambda b: b["data"][0]["owned_by"] == "tabbyAPI"),
    ("ollama", "GET", "/", None, "Ollama is running"),
    ("ollama", "GET", "/api/version", None, lambda b: "version" in b),
    ("ollama", "GET", "/api/tags", None, lambda b: b["models"][0]["name"] == "llama3.2:latest"),
    ("ollama", "GET", "/api/ps", None, lambda b: b["models"][0]["context_length"] == 4096),
    ("ollama", "POST", "/api/show", {"model": "llama3.2"},
     lambda b: b["model_info"]["llama.context_length"] == 131072 and "num_ctx" not in b["parameters"]),
    ("ollama", "GET", "/v1/models", None, lambda b: b["data"][0]["owned_by"] == "library"),
    ("llamacpp", "GET", "/health", None, lambda b: b == {"status": "ok"}),
    ("llamacpp", "GET", "/props", None, lambda b: b["default_generation_settings"]["n_ctx"] == 4096),
    ("llamacpp", "POST", "/tokenize", {"content": "Hello there, traveller."}, lambda b: len(b["tokens"]) == 5),
    ("llamacpp", "GET", "/v1/models", None, lambda b: b["data"][0]["meta"]["n_ctx_train"] >= 4096),
    ("openai", "GET", "/v1/models", None, lambda b: b["object"] == "list"),
]


@pytest.mark.parametrize(("flavour", "method", "path", "body", "check"), INFO_CASES)
async def test_info_endpoints(flavour: str, method: str, path: str, body: Any, check: Any) -> None:
    fake = FakeLLM(flavour, context_length=4096)
    async with client(fake.app) as c:
        response = await c.request(method, path, json=body)
    assert response.status_code == 200, response.text
    assert response.text == check if isinstance(check, str) else check(response.json())
    assert fake.last_request().path == path


@pytest.mark.parametrize(
    ("flavour", "path", "status", "text"),
    [("openai", "/props", 404, '{"detail":"Not Found"}'), ("openai", "/health", 404, '{"detail":"Not Found"}'),
     ("koboldcpp", "/nope", 404, "Error: KoboldCpp HTTP Server is running"), ("ollama", "/nope", 404, "404 page")],
)
async def test_missing_endpoints(flavour: str, path: str, status: int, text: str) -> None:
    async with client(FakeLLM(flavour).app) as c:
        response = await c.get(path)
    assert response.status_code == status and response.text.startswith(text)


async def test_ollama_show_unknown_model() -> None:
    response = await post(FakeLLM("ollama").app, "/api/show", {"model": "nope"})
    assert response.status_code == 404 and "error" in response.json()


# --------------------------------------------------------------------------- live server


def test_live_server_sync_client_and_lifespan() -> None:
    events: list[str] = []

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        events.append("startup")
        yield
        events.append("shutdown")

    app = FastAPI(lifespan=lifespan)

    @app.get("/ping")
    async def ping() -> dict[str, str]:
        return {"pong": "yes"}

    with LiveServer(app) as server:
        assert events == ["startup"] and server.url == f"http://127.0.0.1:{server.port}"
        assert httpx.get(server.url + "/ping", trust_env=False).json() == {"pong": "yes"}
    assert events == ["startup", "shutdown"]


def test_live_server_reports_failed_startup() -> None:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        raise RuntimeError("no")
        yield

    with pytest.raises(RuntimeError, match="did not start"):
        LiveServer(FastAPI(lifespan=lifespan), startup_timeout=5).start()


async def test_real_stream_arrives_in_chunks_over_live_server() -> None:
    fake = FakeLLM("tabbyapi")
    fake.enqueue("one two three")
    fake.fault("slow", between=0.05)
    parts: list[bytes] = []
    async with LiveServer(fake.app) as server, live_client(server, 5) as c:
        async with c.stream("POST", CHAT, json=chat_body()) as response:
            parts = [part async for part in response.aiter_raw()]
    assert len(parts) > 2 and b"".join(parts).endswith(b"data: [DONE]\r\n\r\n")
    assert fake.disconnects == 0


async def test_hang_until_client_disconnects() -> None:
    fake = FakeLLM("llamacpp")
    fake.fault("hang", after=2)
    async with LiveServer(fake.app) as server, live_client(server, 5) as c:
        async with c.stream("POST", CHAT, json=chat_body()) as response:
            seen = b""
            async for part in response.aiter_raw():
                seen += part
                if seen.count(b"data: ") >= 2:
                    break
            assert fake.in_flight == 1 and fake.disconnects == 0
        assert await fake.wait_disconnect(3.0)
    assert fake.disconnects == 1 and fake.in_flight == 0


async def test_non_stream_hang_detects_disconnect() -> None:
    fake = FakeLLM("openai")
    fake.fault("hang")
    async with LiveServer(fake.app) as server, live_client(server, 0.3) as c:
        with pytest.raises(httpx.ReadTimeout):
            await c.post(CHAT, json=chat_body(False))
        assert await fake.wait_disconnect(3.0)


async def test_kobold_abort_finishes_a_hanging_stream() -> None:
    fake = FakeLLM("koboldcpp")
    fake.enqueue("a b c d e f")
    fake.fault("hang", after=1)
    async with LiveServer(fake.app) as server, live_client(server, 5) as c:
        task = asyncio.create_task(c.post(CHAT, json=chat_body()))
        for _ in range(300):
            if fake.in_flight:
                break
            await asyncio.sleep(0.01)
        abort = await c.post("/api/extra/abort", json={"genkey": "KCPP1"})
        response = await task
    assert abort.json() == {"success": "true", "done": "true"} and fake.aborts == 1
    chunks = json_chunks(response.content)
    assert content_of(chunks) == "a" and chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert data_payloads(response.content)[-1] == "[DONE]" and fake.disconnects == 0
    assert fake.requests_to("/api/extra/abort")[0].json == {"genkey": "KCPP1"}


# --------------------------------------------------------------------------- A1111


TXT2IMG = {"prompt": "a knight in a forest", "negative_prompt": "blurry", "seed": 1234, "sampler_name": "Euler a",
           "scheduler": "Automatic", "steps": 20, "cfg_scale": 7, "width": 64, "height": 48,
           "override_settings": {"CLIP_stop_at_last_layers": 2}, "unknown_key": 1}


def decode_png(b64: str) -> tuple[Image.Image, dict[str, str]]:
    """Open a base64 PNG; return the image and its text chunks."""
    data = base64.b64decode(b64)
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    return image, png_text(data)


async def test_a1111_txt2img_contract() -> None:
    fake = FakeA1111()
    response = await post(fake.app, "/sdapi/v1/txt2img", TXT2IMG)
    body = response.json()
    assert response.status_code == 200 and isinstance(body["info"], str)
    info = json.loads(body["info"])
    assert info["seed"] == 1234 and info["all_seeds"] == [1234] and info["sampler_name"] == "Euler a"
    assert info["clip_skip"] == 2 and info["index_of_first_image"] == 0
    params = body["parameters"]
    assert params["steps"] == 20 and params["sampler_index"] == "Euler" and params["cfg_scale"] == 7.0
    assert "unknown_key" not in params and params["denoising_strength"] == 0.75
    image, chunks = decode_png(body["images"][0])
    assert image.size == (64, 48)
    assert chunks["parameters"] == info["infotexts"][0]
    assert chunks["parameters"].startswith("a knight in a forest\nNegative prompt: blurry\nSteps: 20, Sampler: Euler a")
    assert "Clip skip: 2" in chunks["parameters"]
    assert fake.last_txt2img_request().json["prompt"] == "a knight in a forest"


async def test_a1111_defaults_and_sampler_quirks() -> None:
    fake = FakeA1111()
    plain = (await post(fake.app, "/sdapi/v1/txt2img", {"prompt": "x", "width": 32, "height": 32})).json()
    combo = (await post(fake.app, "/sdapi/v1/txt2img", {"prompt": "x", "sampler_name": "DPM++ 2M Karras",
                                                        "width": 32, "height": 32, "steps": "12"})).json()
    unknown = (await post(fake.app, "/sdapi/v1/txt2img", {"prompt": "x", "sampler_name": "Nope",
                                                          "width": 32, "height": 32})).json()
    assert plain["parameters"]["steps"] == 50 and json.loads(plain["info"])["sampler_name"] == "Euler"
    assert json.loads(plain["info"])["seed"] != -1
    assert combo["parameters"]["steps"] == 12
    assert "Sampler: DPM++ 2M, Schedule type: Automatic" in json.loads(combo["info"])["infotexts"][0]
    assert json.loads(unknown["info"])["sampler_name"] == "DPM++ 2M"


async def test_a1111_validation_error_is_pydantic_v1_shape() -> None:
    response = await post(FakeA1111().app, "/sdapi/v1/txt2img", {"steps": "many"})
    assert response.status_code == 422
    assert response.json() == {"detail": [{"loc": ["body", "steps"], "msg": "value is not a valid integer",
                                           "type": "type_error.integer"}]}


async def test_a1111_batch_with_grid() -> None:
    body = {"prompt": "x", "width": 16, "height": 16, "batch_size": 2, "seed": 7, "save_images": True}
    result = (await post(FakeA1111().app, "/sdapi/v1/txt2img", body)).json()
    info = json.loads(result["info"])
    assert len(result["images"]) == 3 and info["index_of_first_image"] == 1 and info["all_seeds"] == [7, 8]


async def test_img2img_without_init_images_is_404() -> None:
    response = await post(FakeA1111().app, "/sdapi/v1/img2img", {"prompt": "x"})
    assert response.status_code == 404
    assert response.json() == {"error": "HTTPException", "detail": "Init image not found", "body": "", "errors": ""}


async def test_img2img_inpaint_and_bad_image() -> None:
    fake = FakeA1111()
    init = base64.b64encode(make_png(8, 8, 1)).decode()
    body = {"init_images": [init], "mask": init, "prompt": "a red scarf", "denoising_strength": 0.6,
            "mask_blur": 4, "inpainting_fill": 1, "inpaint_full_res": True, "inpaint_full_res_padding": 32,
            "steps": 20, "width": 32, "height": 32}
    good = (await post(fake.app, "/sdapi/v1/img2img", body)).json()
    bad = await post(fake.app, "/sdapi/v1/img2img", {**body, "init_images": ["not an image"]})
    assert good["parameters"]["init_images"] is None and good["parameters"]["mask"] is None
    text = json.loads(good["info"])["infotexts"][0]
    assert "Denoising strength: 0.6, Mask blur: 4, Inpaint area: Only masked, Masked area padding: 32" in text
    assert bad.status_code == 500 and bad.json()["detail"] == "Invalid encoded image"
    assert fake.img2img_requests()[0].json["mask"] == init


async def test_a1111_options_models_and_png_info() -> None:
    fake = FakeA1111()
    async with client(fake.app) as c:
        models = (await c.get("/sdapi/v1/sd-models")).json()
        assert (await c.post("/sdapi/v1/options", json={"sd_model_checkpoint": "anime_animagineXL_v31"})).json() is None
        missing = await c.post("/sdapi/v1/options", json={"sd_model_checkpoint": "nope.safetensors"})
        options = (await c.get("/sdapi/v1/options")).json()
        schedulers = (await c.get("/sdapi/v1/schedulers")).json()
        samplers = (await c.get("/sdapi/v1/samplers")).json()
        png = base64.b64encode(make_png(8, 8, 1, "a cat\nSteps: 20, Sampler: Euler, Seed: 5, Size: 8x8")).decode()
        info = (await c.post("/sdapi/v1/png-info", json={"image": png})).json()
    assert models[0]["title"] == "v1-5-pruned-emaonly.safetensors [6ce0161689]"
    assert options["sd_model_checkpoint"] == "anime/animagineXL_v31.safetensors"
    assert missing.status_code == 500 and missing.json() == {
        "error": "RuntimeError", "detail": "", "body": "", "errors": "model 'nope.safetensors' not found"}
    assert schedulers[0]["name"] == "automatic" and samplers[0]["name"] == "DPM++ 2M"
    assert info["info"].startswith("a cat") and info["parameters"]["Steps"] == 20
    assert info["parameters"]["Prompt"] == "a cat" and info["parameters"]["Size-1"] == 8


async def test_a1111_progress_and_interrupt() -> None:
    fake = FakeA1111()
    fake.fault("slow", seconds=5.0)
    async with client(fake.app) as c:
        idle = (await c.get("/sdapi/v1/progress")).json()
        started = time.monotonic()
        task = asyncio.create_task(c.post("/sdapi/v1/txt2img", json={"prompt": "x", "width": 8, "height": 8}))
        for _ in range(300):
            if fake.job is not None:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        running = (await c.get("/sdapi/v1/progress")).json()
        assert (await c.post("/sdapi/v1/interrupt")).json() == {}
        result = await task
    assert idle["progress"] == 0 and idle["state"]["job_count"] == 0
    assert 0.01 <= running["progress"] < 0.99 and running["state"]["job_count"] == 1
    assert running["state"]["sampling_steps"] == 50 and running["eta_relative"] > 0
    assert result.status_code == 200 and len(result.json()["images"]) == 1
    assert time.monotonic() - started < 2 and fake.interrupts == 1


async def test_a1111_error_fault_body() -> None:
    fake = FakeA1111()
    fake.fault("status", code=500, error="OutOfMemoryError", errors="CUDA out of memory. Tried to allocate 2.00 GiB")
    response = await post(fake.app, "/sdapi/v1/txt2img", {"prompt": "x"})
    assert response.status_code == 500
    assert response.json() == {"error": "OutOfMemoryError", "detail": "", "body": "",
                               "errors": "CUDA out of memory. Tried to allocate 2.00 GiB"}


async def test_koboldcpp_image_variant() -> None:
    fake = FakeA1111("koboldcpp")
    fake.fault("status", code=503)
    async with client(fake.app) as c:
        busy = await c.post("/sdapi/v1/txt2img", json={"prompt": "x"})
        result = (await c.post("/sdapi/v1/txt2img", json={"prompt": "x", "batch_size": 3, "width": 64,
                                                          "height": 32})).json()
        img2img = await c.post("/sdapi/v1/img2img", json={"prompt": "x", "width": 16, "height": 16})
        missing = [(await c.request(m, f"/sdapi/v1/{p}")).status_code
                   for m, p in [("GET", "progress"), ("POST", "interrupt"), ("GET", "schedulers"), ("POST", "options")]]
        options = (await c.get("/sdapi/v1/options")).json()
    assert busy.status_code == 503 and busy.json()["detail"]["type"] == "service_unavailable"
    assert result["info"] == "" and result["parameters"] == {} and result["animated"] is False
    assert len(result["images"]) == 1 and decode_png(result["images"][0])[0].size == (64, 32)
    assert img2img.status_code == 200 and missing == [404, 404, 404, 404]
    assert options == {"samples_format": "png", "sd_model_checkpoint": "sd15_dreamshaper"}


async def test_noapi_variant_is_all_404() -> None:
    fake = FakeA1111("noapi")
    async with client(fake.app) as c:
        responses = [await c.get("/sdapi/v1/sd-models"), await c.post("/sdapi/v1/txt2img", json={})]
    assert all(r.status_code == 404 and r.json() == {"detail": "Not Found"} for r in responses)
    assert [r.path for r in fake.requests] == ["/sdapi/v1/sd-models", "/sdapi/v1/txt2img"]
