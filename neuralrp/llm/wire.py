"""Request payloads and error decoding for each OpenAI-compatible server dialect."""

from __future__ import annotations

import json
from typing import Any

import httpx

from neuralrp.errors import BackendBadResponse, BackendError, BackendUnavailable, ContextOverflow
from neuralrp.llm.types import BackendKind, ChatMessage, SamplingParams, StreamChunk

# Name each server gives the repetition penalty on its OpenAI routes (Ollama ignores it there; its chat
# replies use the native API in neuralrp/llm/ollama.py, and only completion mode comes here).
# llama-cpp-python 0.3.36 (llama_cpp/server/types.py) knows only `repeat_penalty` (default 1.1) and silently
# drops `repetition_penalty`; KoboldCpp takes the largest of rep_pen / repetition_penalty / repeat_penalty.
REP_PEN_FIELD: dict[str, str | None] = {
    "koboldcpp": "rep_pen",
    "tabbyapi": "repetition_penalty",
    "llamacpp": "repeat_penalty",
    "llamacpp_python": "repeat_penalty",
    "openai": "repetition_penalty",
    "ollama": None,
}


def llm_root(base_url: str | None) -> str | None:
    """The server root of an LLM URL (a trailing /v1 is removed)."""
    if not base_url:
        return None
    root = base_url.rstrip("/")
    return root[:-3] if root.endswith("/v1") else root


def sampler_fields(kind: BackendKind, params: SamplingParams) -> dict[str, Any]:
    """Sampler fields in the dialect of this server kind."""
    fields: dict[str, Any] = {
        "max_tokens": params.max_tokens,
        "temperature": params.temperature,
        "top_p": params.top_p,
    }
    if params.stop:
        fields["stop"] = list(params.stop)
    rep = REP_PEN_FIELD[kind]
    if rep is not None:
        fields.update(top_k=params.top_k, min_p=params.min_p)
        fields[rep] = params.repetition_penalty
    return fields


def chat_payload(
    kind: BackendKind, model: str, messages: list[ChatMessage], params: SamplingParams,
    *, stream: bool, continue_last: bool = False,
) -> dict[str, Any]:
    """Body for POST /v1/chat/completions."""
    body: dict[str, Any] = {"model": model, "messages": [m.as_dict() for m in messages], "stream": stream}
    body.update(sampler_fields(kind, params))
    if continue_last and kind in ("tabbyapi", "openai"):
        # TabbyAPI (endpoints/OAI/utils/chat_completion.py) and vLLM continue the final message this way.
        body.update(add_generation_prompt=False, continue_final_message=True)
    return body


def completion_payload(
    kind: BackendKind, model: str, prompt: str, params: SamplingParams, *, stream: bool, stops: tuple[str, ...]
) -> dict[str, Any]:
    """Body for POST /v1/completions (text mode with our own template)."""
    body: dict[str, Any] = {"model": model, "prompt": prompt, "stream": stream}
    body.update(sampler_fields(kind, params))
    all_stops = list(dict.fromkeys([*params.stop, *stops]))
    if all_stops:
        body["stop"] = all_stops
    return body


def message_from_body(body: Any) -> str:
    """The human message inside an error body (OpenAI, FastAPI or Ollama native shape); "" if none."""
    if isinstance(body, dict):
        for key in ("error", "detail"):
            value = body.get(key)
            if isinstance(value, dict):
                return str(value.get("message") or value.get("msg") or value.get("error") or json.dumps(value))
            if isinstance(value, str) and value:
                return value
            if isinstance(value, list) and value:
                return json.dumps(value)[:300]
    return ""


def _is_overflow(status: int, body: Any, message: str) -> bool:
    if status != 400:
        return False
    err = body.get("error") if isinstance(body, dict) else None
    if isinstance(err, dict) and (
        err.get("code") == "context_length_exceeded" or err.get("type") == "exceed_context_size_error"
    ):
        return True
    text = message.lower()
    return "context" in text and ("exceed" in text or "maximum" in text)


def error_for_status(response: httpx.Response, raw: bytes) -> BackendError:
    """Turn a non-2xx answer into our exception with a human sentence."""
    try:
        body: Any = json.loads(raw) if raw else None
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    message = message_from_body(body) or raw[:200].decode("utf-8", "replace").strip() or "no details"
    status = response.status_code
    if _is_overflow(status, body, message):
        return ContextOverflow(f"The prompt is longer than the model's context window: {message}", status=status)
    if status in (401, 403):
        return BackendBadResponse(
            f"The LLM server refused the request (HTTP {status}: {message}); set llm.api_key", status=status
        )
    if status == 503:
        return BackendUnavailable(f"The LLM server is busy or has no model loaded (HTTP 503: {message})")
    if status == 404:
        return BackendBadResponse(f"The LLM server answered 404 Not Found: {message}", status=status)
    return BackendBadResponse(f"The LLM server answered HTTP {status}: {message}", status=status)


def transport_error(exc: httpx.HTTPError, url: str, timeout_s: float) -> BackendError:
    """A human sentence for connect errors, timeouts, broken connections and undecodable answers."""
    if isinstance(exc, httpx.DecodingError):
        return BackendBadResponse(f"The LLM server at {url} sent an answer that could not be decoded ({exc})")
    if isinstance(exc, httpx.ConnectTimeout | httpx.ConnectError):
        return BackendUnavailable(f"Cannot reach the LLM server at {url}: is it running?")
    if isinstance(exc, httpx.TimeoutException):
        return BackendUnavailable(f"The LLM server at {url} did not answer within {timeout_s:g} s")
    return BackendUnavailable(f"The connection to the LLM server at {url} broke ({type(exc).__name__})")


def stream_object(payload: str) -> dict[str, Any]:
    """One streamed JSON object (SSE data or NDJSON line); BackendBadResponse if unreadable or an in-band error."""
    try:
        data = json.loads(payload)
    except json.JSONDecodeError as e:
        raise BackendBadResponse(f"The LLM server sent an unreadable stream chunk: {payload[:80]!r}") from e
    if not isinstance(data, dict):
        raise BackendBadResponse(f"The LLM server sent a stream chunk that is {shown(data)}, not a JSON object")
    if "error" in data:
        message = message_from_body(data) or json.dumps(data.get("error"))[:300]
        raise BackendBadResponse(f"The LLM server failed mid-reply: {message}")
    return data


def shown(value: Any) -> str:
    """A short JSON rendering of a value from the wire, for error sentences."""
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


def bad_chunk(field: str, value: Any, expected: str) -> BackendBadResponse:
    """The error for a stream chunk whose `field` has the wrong shape."""
    return BackendBadResponse(f"The LLM server sent a chunk whose '{field}' is {shown(value)}, not {expected}")


def optional_text(container: dict[str, Any], key: str, field: str) -> str | None:
    """container[key] when it is a string; None when absent or null; BackendBadResponse for anything else."""
    value = container.get(key)
    if value is None or isinstance(value, str):
        return value
    raise bad_chunk(field, value, "a string")


def _first_choice(data: dict[str, Any]) -> dict[str, Any] | None:
    """The first choice of a chunk; None when it carries none (usage-only or filter-result chunks)."""
    choices = data.get("choices")
    if choices is None:
        return None
    if not isinstance(choices, list):
        raise bad_chunk("choices", choices, "a list")
    if not choices:
        return None
    if not isinstance(choices[0], dict):
        raise bad_chunk("choices[0]", choices[0], "an object")
    return choices[0]


# Where servers put a thinking model's reasoning, apart from the reply: llama.cpp server and TabbyAPI
# `reasoning_content`, vLLM and Ollama's /v1 `reasoning`.
REASONING_FIELDS = ("reasoning_content", "reasoning")


def _delta(choice: dict[str, Any]) -> dict[str, Any] | None:
    delta = choice.get("delta")
    if delta is not None and not isinstance(delta, dict):
        raise bad_chunk("choices[0].delta", delta, "an object")
    return delta


def reasoning(container: dict[str, Any], where: str) -> str:
    """The reasoning text of a delta or message ("" when it has none)."""
    for key in REASONING_FIELDS:
        text = optional_text(container, key, f"{where}.{key}")
        if text:
            return text
    return ""


def decode_chunk(payload: str, *, chat: bool) -> StreamChunk | None:
    """One SSE data payload -> a chunk; None for chunks that carry no text, reasoning or finish.

    A chunk of the wrong shape (choices not a list, a choice or delta not an object, text not a string)
    raises BackendBadResponse naming the field; chunks without choices (usage, filter results) carry nothing.
    """
    choice = _first_choice(stream_object(payload))
    if choice is None:
        return None
    thinking = ""
    if chat:
        delta = _delta(choice)
        text = optional_text(delta, "content", "choices[0].delta.content") if delta else None
        thinking = reasoning(delta, "choices[0].delta") if delta else ""
    else:
        text = optional_text(choice, "text", "choices[0].text")
    finish = optional_text(choice, "finish_reason", "choices[0].finish_reason")
    finish = None if finish in (None, "null", "") else finish
    if not text and not thinking and finish is None:
        return None
    return StreamChunk(text=text or "", finish_reason=finish, thinking=thinking)
