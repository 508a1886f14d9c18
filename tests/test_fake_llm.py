"""The fake LLM follows the backend contracts in shared/reference/api-contracts.md: replies, streams, faults."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.fake_helpers import CHAT, COMPLETIONS, HELLO, chat_body, client, content_of, post
from tests.fakes import FakeLLM, count_tokens, data_payloads, fake_token_ids, json_chunks, split_reply, sse_fields

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
    old_llama = FakeLLM("llamacpp", legacy_errors=True)
    for fake in (llama, tabby, kobold, old_llama):
        fake.fault("error_event", after=2, message="boom")
    llama_fields = sse_fields(await stream_raw(llama))  # current llama.cpp: a `data:` event with an error object
    assert llama_fields[-1][0] == "data" and json.loads(llama_fields[-1][1])["error"]["message"] == "boom"
    assert ("data", "[DONE]") not in llama_fields
    old_fields = sse_fields(await stream_raw(old_llama))  # older builds: an `error:` line
    assert old_fields[-1][0] == "error" and json.loads(old_fields[-1][1])["message"] == "boom"
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
