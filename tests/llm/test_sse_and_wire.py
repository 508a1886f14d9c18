"""The SSE reader and the wire dialects, on the exact framings from the API contracts."""

from __future__ import annotations

import json

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neuralrp.errors import BackendBadResponse, BackendUnavailable, ContextOverflow
from neuralrp.llm import templates, wire
from neuralrp.llm.sse import SSEEvent, iter_events
from neuralrp.llm.types import ChatMessage, SamplingParams, StreamChunk

KOBOLD = (
    'data: {"id": "koboldcpp", "choices": [{"index": 0, "finish_reason": null, "delta": {"role": "assistant",'
    ' "content": "Well"}}]}\n\n'
    'data: {"id": "koboldcpp", "choices": [{"index": 0, "finish_reason": "stop", "delta": {"role": "assistant",'
    ' "content": ""}}]}\n\ndata: [DONE]\n\n'
)
TABBY_CRLF = (
    'data: {"choices": [{"index": 0, "delta": {"content": "Well"}, "finish_reason": null}]}\r\n\r\n'
    ": ping - 2025-01-01 12:00:15.000000+00:00\r\n\r\n"
    'data: {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}\r\n\r\ndata: [DONE]\r\n\r\n'
)
LLAMA_ERROR = (
    'data: {"choices":[{"finish_reason":null,"index":0,"delta":{"role":"assistant","content":null}}]}\n\n'
    'error: {"code":500,"message":"generation failed","type":"server_error"}\n\n'
)


def test_kobold_stream_decodes() -> None:
    events = list(iter_events(KOBOLD.split("\n")))
    assert [e.kind for e in events] == ["data", "data", "data"]
    chunks = [wire.decode_chunk(e.payload, chat=True) for e in events[:2]]
    assert chunks == [StreamChunk("Well", None), StreamChunk("", "stop")]
    assert events[2].payload == "[DONE]"


def test_crlf_framing_and_ping_comments() -> None:
    events = list(iter_events(TABBY_CRLF.split("\n")))
    assert len(events) == 3
    assert wire.decode_chunk(events[0].payload, chat=True) == StreamChunk("Well", None)
    assert wire.decode_chunk(events[1].payload, chat=True) == StreamChunk("", "stop")


def test_llama_error_line_is_an_error_event() -> None:
    events = list(iter_events(LLAMA_ERROR.split("\n")))
    assert events[-1] == SSEEvent("error", '{"code":500,"message":"generation failed","type":"server_error"}')
    assert wire.decode_chunk(events[0].payload, chat=True) is None


def test_done_without_trailing_blank_line_is_flushed() -> None:
    events = list(iter_events(['data: {"choices": []}', "", "data: [DONE]"]))
    assert events[-1].payload == "[DONE]"


def test_legacy_null_string_finish_reason_means_not_finished() -> None:
    payload = json.dumps({"choices": [{"delta": {"content": "x"}, "finish_reason": "null"}]})
    assert wire.decode_chunk(payload, chat=True) == StreamChunk("x", None)


def test_usage_only_chunk_and_error_payload() -> None:
    assert wire.decode_chunk('{"choices": [], "usage": {"prompt_tokens": 3}}', chat=True) is None
    with pytest.raises(BackendBadResponse, match="failed mid-reply: Prompt length"):
        wire.decode_chunk('{"error": {"message": "Prompt length 9 exceeds", "trace": null}}', chat=True)
    with pytest.raises(BackendBadResponse, match="unreadable stream chunk"):
        wire.decode_chunk("{not json", chat=True)


def test_completion_chunks_use_text() -> None:
    assert wire.decode_chunk('{"choices": [{"text": "hi", "finish_reason": null}]}', chat=False) == StreamChunk("hi")


@given(st.lists(st.text(max_size=40), max_size=30))
@settings(max_examples=300, deadline=None)
def test_sse_reader_never_crashes(raw_lines: list[str]) -> None:
    for event in iter_events(raw_lines):
        assert event.kind in ("data", "error")
        try:
            wire.decode_chunk(event.payload, chat=True)
        except BackendBadResponse:
            pass


@pytest.mark.parametrize(
    ("kind", "rep_key"),
    [("koboldcpp", "rep_pen"), ("tabbyapi", "repetition_penalty"), ("llamacpp", "repeat_penalty"),
     ("openai", "repetition_penalty")],
)
def test_sampler_dialects(kind: str, rep_key: str) -> None:
    params = SamplingParams(temperature=0.7, top_k=50, min_p=0.1, repetition_penalty=1.1, max_tokens=99,
                            stop=("\nUser:",))
    body = wire.chat_payload(kind, "m", [ChatMessage("user", "hi")], params, stream=True)  # type: ignore[arg-type]
    assert body[rep_key] == 1.1
    assert body["top_k"] == 50 and body["min_p"] == 0.1
    assert body["max_tokens"] == 99 and "max_completion_tokens" not in body
    assert body["stop"] == ["\nUser:"]
    assert body["messages"] == [{"role": "user", "content": "hi"}]


def test_ollama_gets_only_fields_it_reads() -> None:
    body = wire.chat_payload("ollama", "llama3.2", [ChatMessage("user", "hi")], SamplingParams(), stream=False)
    assert body["model"] == "llama3.2"
    assert not {"top_k", "min_p", "repetition_penalty", "rep_pen", "repeat_penalty"} & set(body)


def response(status: int, body: object) -> tuple[httpx.Response, bytes]:
    raw = json.dumps(body).encode() if not isinstance(body, bytes) else body
    return httpx.Response(status, content=raw), raw


@pytest.mark.parametrize(
    ("status", "body", "exc", "text"),
    [
        (400, {"error": {"message": "Prompt length 17000 exceeds the available context size of 16384 tokens",
                         "type": "invalid_request_error", "code": "context_length_exceeded"}},
         ContextOverflow, "longer than the model's context window"),
        (400, {"error": {"code": 400, "message": "request (9412 tokens) exceeds the available context size",
                         "type": "exceed_context_size_error"}}, ContextOverflow, "9412 tokens"),
        (503, {"detail": {"msg": "Server is busy; please try again later.", "type": "service_unavailable"}},
         BackendUnavailable, "Server is busy"),
        (503, {"detail": "No models are currently loaded."}, BackendUnavailable, "no model loaded"),
        (401, {"detail": "Invalid API key"}, BackendBadResponse, "set llm.api_key"),
        (404, {"error": {"message": 'model "nope" not found, try pulling it first', "type": "not_found_error"}},
         BackendBadResponse, "try pulling it first"),
        (500, b"<html>oops</html>", BackendBadResponse, "HTTP 500: <html>oops</html>"),
    ],
)
def test_error_bodies_become_human_sentences(status: int, body: object, exc: type, text: str) -> None:
    resp, raw = response(status, body)
    err = wire.error_for_status(resp, raw)
    assert type(err) is exc
    assert text in err.message


def test_llm_root_strips_v1() -> None:
    assert wire.llm_root("http://127.0.0.1:5001/v1/") == "http://127.0.0.1:5001"
    assert wire.llm_root("http://h:1") == "http://h:1"
    assert wire.llm_root(None) is None


MSGS = [ChatMessage("system", "S"), ChatMessage("user", "U"), ChatMessage("assistant", "A")]


def test_templates_render_chatml_and_continue() -> None:
    text = templates.render(MSGS[:2], "chatml")
    assert text == "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n"
    cont = templates.render(MSGS, "chatml", continue_last=True)
    assert cont.endswith("<|im_start|>assistant\nA")


@pytest.mark.parametrize("name", sorted(templates.TEMPLATES))
def test_every_template_ends_at_the_assistant(name: str) -> None:
    tpl = templates.TEMPLATES[name]
    text = templates.render(MSGS[:2], name)
    assert text.startswith(tpl.bos)
    assert text.endswith(tpl.assistant[0])
    assert "U" in text and "S" in text
