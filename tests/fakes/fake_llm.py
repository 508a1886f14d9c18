"""A fake local LLM server speaking the OpenAI-compatible API with per-backend quirks (and Ollama's native chat).

`FakeLLM(flavour="openai", context_length=8192, model=None, api_key=None, kobold_legacy=False, pings=True,
hang_timeout=30.0, loaded=True, trained_context=131072, modelfile_num_ctx=None)` builds a FastAPI app in
`.app`.  Use it in-process with `httpx.AsyncClient(transport=httpx.ASGITransport(app=fake.app),
base_url="http://fake")` (that transport buffers whole responses, so streams arrive complete) or on a real port
with `tests.fakes.live.LiveServer`.

Flavours (see shared/reference/api-contracts.md §3): "llamacpp", "koboldcpp", "tabbyapi", "ollama", "openai".
They differ in stream chunk shapes (role in every delta for koboldcpp, never for tabbyapi, first chunk for
ollama/openai, a role-only first chunk for llamacpp), finish chunks, CRLF framing and `: ping` comments
(tabbyapi), the `[DONE]` terminator (`kobold_legacy=True`: `"finish_reason": "null"` strings and a final
`data: [DONE]` with no line ending), error bodies and the info endpoints each backend has.

Replies: `fake.enqueue("text", ...)` queues canned replies (FIFO).  With an empty queue the reply is
`"Reply N to: <first 40 chars of the last user message>"` (N counts answered generations from 1;
for /v1/completions the start of the prompt is used).
Each reply is split into pieces (`split_reply`): one piece per word/punctuation token, leading whitespace
kept, so `"".join(pieces) == reply`.  One piece is one stream chunk and one completion token.
`max_tokens` (per-flavour aliases) truncates to that many pieces with finish_reason "length"; a `stop`
string truncates with "stop".  Prompt tokens use `count_tokens` (words and punctuation marks); for chat,
the sum over message contents.  tabbyapi, llamacpp and openai reject prompts longer than `context_length`
with their real 400 body; koboldcpp and ollama accept them silently, as the real servers do.
ollama answers 404 for a `model` it does not know (`model` defaults to "llama3.2:latest").

Ollama's native API (flavour "ollama" only, §3.4/§4.4): `POST /api/chat` takes `{"model", "messages",
"stream" (default true!), "options": {"num_ctx", "num_predict", "stop", ...}}`; `num_predict` and `stop` cut the
reply like `max_tokens`/`stop` above.  Streams are NDJSON (`application/x-ndjson`): one object per piece with
`message.content`, then `{"done": true, "done_reason", "prompt_eval_count", "eval_count", durations}`;
`stream: false` answers that final object with the whole text.  Errors are `{"error": "<message>"}` (404 for an
unknown model, 400 without `model` or with a bad body).  A native chat "loads" the model: `/api/ps` then lists
it with `context_length` = `options.num_ctx` (or the Modelfile's, else 4096, when none is sent).  `/api/ps`
lists the model only while `loaded` is true (initially `context_length`); `/api/show` reports
`model_info["llama.context_length"] = trained_context` and, when `modelfile_num_ctx` is set, `num_ctx N` in its
`parameters` text.  Helpers: `native_chat_requests()`, `last_native_chat_request()`.

Recording: every request lands in `fake.requests` as a `RecordedRequest(method, path, headers, json,
time, query, body)`.  Helpers: `requests_to(path)`, `last_request(path=None)`, `chat_requests()`,
`last_chat_request()`, `completion_requests()`, `last_completion_request()`.  Counters: `disconnects`
(client left while a response was still being produced), `aborts` (koboldcpp `/api/extra/abort`),
`generations`; `in_flight` is the number of running generations.  `wait_for_disconnect(timeout)` (sync)
and `await wait_disconnect(timeout)` block until at least one disconnect was seen.

Faults: `fake.fault(kind, times=1, path=None, **params)` arms a fault for the next `times` matching
requests (`times=None`: until `clear_faults()`); `fake.set_fault(kind, path=None, **params)` is the
persistent form.  `path=None` targets the generation routes (`/v1/chat/completions`, `/v1/completions`,
`/api/chat`); any other exact path can be given (e.g. `fault("status", code=503, path="/health")`).  All armed
faults that match a request apply to it together.  Kinds and parameters:

* `status`: `code=500`, `message=None`, `body=None` - answer with that status and the flavour's real error
  body (`body` overrides it; Ollama's `/api/...` paths get the native `{"error": "..."}`).  Checked before the
  handler runs, so it works on any path.
* `context_overflow` - the flavour's 400 "prompt too long" answer (inferred shapes for koboldcpp/ollama,
  whose real servers truncate silently instead).
* `slow`: `first=0.0`, `between=0.0` - seconds before the first chunk (or the JSON body) and between chunks.
* `cut`: `after=2` - send `after` data chunks, then close without finish chunk or `[DONE]` (native: without
  the `done` line).
* `malformed`: `after=1`, `text="{not json"` - insert a garbage `data:` line (native: a garbage line) after
  `after` chunks.
* `error_event`: `after=1`, `message="generation failed"` - after `after` chunks send the flavour's
  mid-stream error (llamacpp `error: {...}` line, tabbyapi/ollama/openai `data: {"error": ...}`, Ollama native
  a `{"error": "..."}` line, koboldcpp just ends the stream) and close.
* `hang`: `after=1` - after `after` chunks stall until the client disconnects (counted in `disconnects`),
  a koboldcpp abort, or `hang_timeout` seconds.  Non-stream requests hang before the body is sent.
  Use a LiveServer for this: ASGITransport only returns when the response is complete.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import threading
import time
import zlib
from collections import deque
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from .sse import Message, Receive, Scope, Send, StreamBody, comment, frame

FLAVOURS = ("llamacpp", "koboldcpp", "tabbyapi", "ollama", "openai")
CHAT_PATH = "/v1/chat/completions"
COMPLETIONS_PATH = "/v1/completions"
NATIVE_CHAT_PATH = "/api/chat"
OLLAMA_DEFAULT_CTX = 4096
OLLAMA_TIMINGS = {"total_duration": 812000000, "load_duration": 12000000, "prompt_eval_duration": 90000000,
                  "eval_duration": 600000000}
CREATED = 1735700000

Faults = dict[str, dict[str, Any]]

_TOKEN_RE = re.compile(r"\w+|[^\w\s]")
_PIECE_RE = re.compile(r"\s*(?:\w+|[^\w\s])")


# --------------------------------------------------------------------------- tokens


def fake_tokens(text: str) -> list[str]:
    """Split text into fake tokens: runs of word characters and single punctuation marks."""
    return _TOKEN_RE.findall(text)


def count_tokens(text: str) -> int:
    """Count fake tokens in text."""
    return len(fake_tokens(text))


def fake_token_ids(text: str, *, bos: bool = False) -> list[int]:
    """Deterministic fake token ids (crc32-based), with id 1 prepended when `bos` is true."""
    ids = [zlib.crc32(tok.encode()) % 30000 + 100 for tok in fake_tokens(text)]
    return ([1] if bos else []) + ids


def split_reply(text: str) -> list[str]:
    """Split a reply into stream pieces, one per fake token, so that the pieces join back to `text`."""
    pieces = _PIECE_RE.findall(text)
    rest = text[len("".join(pieces)) :]
    if pieces:
        pieces[-1] += rest
    elif rest:
        pieces = [rest]
    return pieces


def message_text(content: Any) -> str:
    """Text of a chat message `content` (a string or a list of content parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text", "") for p in content if isinstance(p, dict)]
        return "\n".join(p for p in parts if isinstance(p, str))
    return ""


def prompt_tokens(body: dict[str, Any]) -> int:
    """Fake prompt token count of a chat (`messages`) or completion (`prompt`) request body."""
    messages = body.get("messages")
    if isinstance(messages, list):
        return sum(count_tokens(message_text(m.get("content"))) for m in messages if isinstance(m, dict))
    prompt = body.get("prompt")
    if isinstance(prompt, list):
        prompt = "\n".join(str(p) for p in prompt)
    return count_tokens(prompt) if isinstance(prompt, str) else 0


# --------------------------------------------------------------------------- recording and faults


@dataclass
class RecordedRequest:
    """One request as the fake saw it."""

    method: str
    path: str
    headers: dict[str, str]
    json: Any
    time: float
    query: str = ""
    body: bytes = b""


@dataclass
class Fault:
    """An armed fault: `kind` with `params`, for `times` more requests (None = persistent) on `path`."""

    kind: str
    params: dict[str, Any]
    times: int | None = 1
    path: str | None = None


async def _read_body(receive: Receive) -> bytes:
    """Read the whole request body from an ASGI receive callable."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive callable that yields the buffered body once, then defers to the real one."""
    sent = False

    async def inner() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return inner


def parse_json(body: bytes) -> Any:
    """Parse a JSON body, or None when empty or invalid."""
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


class _Recorder:
    """ASGI middleware: records each request, applies early faults, then calls the app."""

    def __init__(self, app: Any, owner: FakeServerBase) -> None:
        self.app = app
        self.owner = owner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Record and dispatch one ASGI call."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        record = self.owner._record(scope, body)
        faults = self.owner.take_faults(record.path)
        early = self.owner._early_response(record, faults)
        if early is not None:
            await early(scope, _replay(body, receive), send)
            return
        scope["fake.faults"] = faults
        await self.app(scope, _replay(body, receive), send)


class FakeServerBase:
    """Shared recording and fault bookkeeping for the fake servers."""

    fault_kinds: dict[str, frozenset[str]] = {}
    default_fault_paths: tuple[str, ...] = ()

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self.app = FastAPI()
        self.app.add_middleware(_Recorder, owner=self)

    def fault(self, kind: str, *, times: int | None = 1, path: str | None = None, **params: Any) -> Fault:
        """Arm a fault for the next `times` matching requests (None = until cleared)."""
        allowed = self.fault_kinds.get(kind)
        if allowed is None:
            raise ValueError(f"unknown fault kind {kind!r}; known: {sorted(self.fault_kinds)}")
        unknown = set(params) - allowed
        if unknown:
            raise ValueError(f"fault {kind!r} does not take {sorted(unknown)}")
        armed = Fault(kind, dict(params), times, path)
        with self._lock:
            self._faults.append(armed)
        return armed

    def set_fault(self, kind: str, *, path: str | None = None, **params: Any) -> Fault:
        """Arm a persistent fault (until `clear_faults()`)."""
        return self.fault(kind, times=None, path=path, **params)

    def clear_faults(self) -> None:
        """Disarm every fault."""
        with self._lock:
            self._faults.clear()

    def take_faults(self, path: str) -> Faults:
        """Collect the faults matching `path` as {kind: params}, using up one-shot ones."""
        taken: Faults = {}
        with self._lock:
            for armed in list(self._faults):
                hit = path == armed.path if armed.path else path in self.default_fault_paths
                if not hit:
                    continue
                taken.setdefault(armed.kind, {}).update(armed.params)
                if armed.times is not None:
                    armed.times -= 1
                    if armed.times <= 0:
                        self._faults.remove(armed)
        return taken

    def requests_to(self, path: str, method: str | None = None) -> list[RecordedRequest]:
        """All recorded requests to `path` (optionally only with `method`)."""
        return [r for r in self.requests if r.path == path and (method is None or r.method == method)]

    def last_request(self, path: str | None = None) -> RecordedRequest:
        """The most recent request (to `path` if given); AssertionError when there is none."""
        found = self.requests if path is None else self.requests_to(path)
        assert found, f"no request recorded{'' if path is None else ' to ' + path}"
        return found[-1]

    def reset(self) -> None:
        """Forget recorded requests and faults."""
        self.requests.clear()
        self.clear_faults()

    def _record(self, scope: Scope, body: bytes) -> RecordedRequest:
        """Append a RecordedRequest for this ASGI scope."""
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        record = RecordedRequest(
            method=scope["method"],
            path=scope["path"],
            headers=headers,
            json=parse_json(body),
            time=time.time(),
            query=scope.get("query_string", b"").decode("latin-1"),
            body=body,
        )
        self.requests.append(record)
        return record

    def _early_response(self, record: RecordedRequest, faults: Faults) -> Response | None:
        """A response to send instead of calling the app (auth failures, status faults)."""
        return None


def kobold_not_found(method: str) -> Response:
    """KoboldCpp's answer to an unknown route: 404 text/html for GET, an empty 404 otherwise."""
    if method == "GET":
        text = "Error: KoboldCpp HTTP Server is running, but this endpoint does not exist. Please check the URL."
        return HTMLResponse(text, status_code=404)
    return Response(status_code=404)


# --------------------------------------------------------------------------- flavour shapes


_DEFAULT_MODELS = {
    "koboldcpp": "koboldcpp/Mistral-Nemo-12B-Q4_K_M",
    "tabbyapi": "Mistral-Nemo-12B-exl3-4.0bpw",
    "ollama": "llama3.2:latest",
    "llamacpp": "/models/llama-3.1-8b-instruct-q4_k_m.gguf",
    "openai": "gpt-fake",
}

_DEFAULT_MESSAGES = {
    ("koboldcpp", 503): "Server is busy; please try again later.",
    ("koboldcpp", 500): "Error parsing input.",
    ("tabbyapi", 503): "No models are currently loaded.",
    ("tabbyapi", 401): "Invalid API key",
    ("llamacpp", 503): "Loading model",
    ("llamacpp", 401): "Invalid API Key",
    ("ollama", 404): 'model "{model}" not found, try pulling it first',
    ("openai", 401): "Incorrect API key provided",
}
_GENERIC_MESSAGES = {400: "Bad request", 401: "Unauthorized", 404: "Not found", 422: "Unprocessable request"}
_KOBOLD_TYPES = {400: "bad_input", 500: "bad_input", 503: "service_unavailable"}
_LLAMA_TYPES = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error",
                501: "not_supported_error", 503: "unavailable_error"}


def error_body(flavour: str, status: int, message: str | None = None, model: str = "") -> dict[str, Any]:
    """The JSON error body `flavour` sends with HTTP `status`."""
    default = _DEFAULT_MESSAGES.get((flavour, status)) or _GENERIC_MESSAGES.get(status, "Internal server error")
    msg = message or default.format(model=model)
    if flavour == "koboldcpp":
        if status == 401:
            return {"detail": {"error": "Unauthorized", "msg": message or
                               "Authentication key is missing or invalid.", "type": "unauthorized"}}
        return {"detail": {"msg": msg, "type": _KOBOLD_TYPES.get(status, "server_error")}}
    if flavour == "tabbyapi":
        return {"detail": msg}
    if flavour == "llamacpp":
        return {"error": {"code": status, "message": msg, "type": _LLAMA_TYPES.get(status, "server_error")}}
    if status == 404:
        kind = "not_found_error"
    elif status < 500:
        kind = "invalid_request_error"
    else:
        kind = "api_error" if flavour == "ollama" else "server_error"
    code = "invalid_api_key" if flavour == "openai" and status == 401 else None
    return {"error": {"message": msg, "type": kind, "param": None, "code": code}}


def native_error_body(status: int, message: str | None = None, model: str = "") -> dict[str, str]:
    """Ollama's native API error body: `{"error": "<message>"}`."""
    return {"error": str(error_body("ollama", status, message, model)["error"]["message"])}


def ndjson(obj: Any) -> bytes:
    """One NDJSON line."""
    return json.dumps(obj).encode() + b"\n"


def overflow_body(flavour: str, n_prompt: int, n_ctx: int) -> dict[str, Any]:
    """The 400 body for a prompt of `n_prompt` tokens that does not fit `n_ctx`."""
    if flavour == "llamacpp":
        msg = (f"request ({n_prompt} tokens) exceeds the available context size ({n_ctx} tokens), "
               "try increasing it")
        return {"error": {"code": 400, "message": msg, "type": "exceed_context_size_error",
                          "n_prompt_tokens": n_prompt, "n_ctx": n_ctx}}
    if flavour == "tabbyapi":
        msg = f"Prompt length {n_prompt} exceeds the available context size of {n_ctx} tokens"
        return {"error": {"message": msg, "type": "invalid_request_error", "param": None,
                          "code": "context_length_exceeded"}}
    if flavour == "koboldcpp":
        return {"detail": {"msg": f"Prompt of {n_prompt} tokens exceeds the context size of {n_ctx}.",
                           "type": "bad_input"}}
    if flavour == "ollama":
        return {"error": {"message": "the input length exceeds the context length", "type":
                          "invalid_request_error", "param": None, "code": None}}
    msg = (f"This model's maximum context length is {n_ctx} tokens. However, your messages resulted in "
           f"{n_prompt} tokens.")
    return {"error": {"message": msg, "type": "invalid_request_error", "param": "messages",
                      "code": "context_length_exceeded"}}


@dataclass
class _Gen:
    """One planned generation: reply pieces plus everything the response shapes need."""

    kind: str
    pieces: list[str]
    finish: str
    prompt_tokens: int
    model: str
    id: str
    include_usage: bool

    @property
    def text(self) -> str:
        """The whole reply text."""
        return "".join(self.pieces)

    def usage(self) -> dict[str, int]:
        """OpenAI-style usage counts."""
        done = len(self.pieces)
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": done,
                "total_tokens": self.prompt_tokens + done}


class _Shapes:
    """Builds the chunk and response JSON shapes for one flavour."""

    def __init__(self, flavour: str, kobold_legacy: bool) -> None:
        self.flavour = flavour
        self.legacy = kobold_legacy and flavour == "koboldcpp"

    def envelope(self, gen: _Gen, obj: str, choices: list[dict[str, Any]]) -> dict[str, Any]:
        """The outer object of a chunk or response."""
        body: dict[str, Any] = {"id": gen.id, "object": obj, "created": CREATED, "model": gen.model,
                                "choices": choices}
        if self.flavour == "koboldcpp" and obj.endswith("chunk"):
            body["id"] = "koboldcpp"
        if self.flavour == "ollama":
            body["system_fingerprint"] = "fp_ollama"
        if self.flavour == "llamacpp":
            body["system_fingerprint"] = "b5000-fake0"
        return body

    def _pending(self) -> str | None:
        """finish_reason value of an unfinished chunk."""
        return "null" if self.legacy else None

    def _delta(self, piece: str, first: bool) -> dict[str, Any]:
        """The delta of a content chunk."""
        if self.flavour == "koboldcpp" or (first and self.flavour in ("ollama", "openai")):
            return {"role": "assistant", "content": piece}
        return {"content": piece}

    def _finish_choice(self, gen: _Gen) -> dict[str, Any]:
        """The choice of the final chunk of a chat stream."""
        if gen.kind == "text":
            return {"index": 0, "text": "", "finish_reason": gen.finish, "logprobs": None}
        if self.flavour == "koboldcpp":
            return {"index": 0, "finish_reason": gen.finish, "delta": {"role": "assistant", "content": ""}}
        choice: dict[str, Any] = {"index": 0, "delta": {}, "finish_reason": gen.finish}
        if self.flavour == "tabbyapi":
            choice["eos_reason"] = "eos_token" if gen.finish == "stop" else "max_new_tokens"
        return choice

    def _content_choice(self, gen: _Gen, piece: str, first: bool) -> dict[str, Any]:
        """The choice of one content chunk."""
        if gen.kind == "text":
            return {"index": 0, "text": piece, "finish_reason": self._pending(), "logprobs": None}
        return {"index": 0, "delta": self._delta(piece, first), "finish_reason": self._pending()}

    def chunks(self, gen: _Gen) -> tuple[list[dict[str, Any]], int]:
        """All stream chunks and how many of them carry content (the rest are finish/usage)."""
        obj = "chat.completion.chunk" if gen.kind == "chat" else "text_completion"
        body = [self.envelope(gen, obj, [self._content_choice(gen, p, i == 0)])
                for i, p in enumerate(gen.pieces)]
        if self.flavour == "llamacpp" and gen.kind == "chat":
            role = {"index": 0, "delta": {"role": "assistant", "content": None}, "finish_reason": None}
            body.insert(0, self.envelope(gen, obj, [role]))
        final = self.envelope(gen, obj, [self._finish_choice(gen)])
        if self.flavour == "llamacpp":
            final["timings"] = self.timings(gen)
        tail = [final]
        if gen.include_usage and self.flavour != "koboldcpp":
            tail.append({**self.envelope(gen, obj, []), "usage": gen.usage()})
        return body + tail, len(body)

    def timings(self, gen: _Gen) -> dict[str, float]:
        """llama.cpp-style timings."""
        done = len(gen.pieces)
        return {"prompt_n": gen.prompt_tokens, "prompt_ms": 1.0, "predicted_n": done, "predicted_ms": 1.0,
                "prompt_per_second": 1000.0 * gen.prompt_tokens, "predicted_per_second": 1000.0 * done}

    def response(self, gen: _Gen) -> dict[str, Any]:
        """The non-streaming response body."""
        if gen.kind == "text":
            choice: dict[str, Any] = {"index": 0, "text": gen.text, "finish_reason": gen.finish,
                                      "logprobs": None}
            body = self.envelope(gen, "text_completion", [choice])
        else:
            body = self.envelope(gen, "chat.completion", [self._message_choice(gen)])
        if self.flavour == "koboldcpp":
            body["id"] = "chatcmpl-A1" if gen.kind == "chat" else "cmpl-A1"
        usage: dict[str, int] | None = gen.usage()
        if self.flavour == "tabbyapi" and not gen.include_usage:
            usage = None
        body["usage"] = usage
        if self.flavour == "llamacpp":
            body["timings"] = self.timings(gen)
        return body

    def _message_choice(self, gen: _Gen) -> dict[str, Any]:
        """The choice of a non-streaming chat response."""
        message: dict[str, Any] = {"role": "assistant", "content": gen.text}
        choice: dict[str, Any] = {"index": 0, "message": message, "finish_reason": gen.finish}
        if self.flavour == "koboldcpp":
            message["tool_calls"] = []
            choice["logprobs"] = None
        if self.flavour == "tabbyapi":
            message.update(reasoning_content=None, tool_calls=None)
            choice.update(eos_reason=self._finish_choice(gen).get("eos_reason"), stop_str=None, logprobs=None)
        return choice

    def native_done(self, gen: _Gen, text: str) -> dict[str, Any]:
        """Ollama's final /api/chat object (the whole answer when not streamed)."""
        return {"model": gen.model, "created_at": "2025-01-01T12:00:00.3Z",
                "message": {"role": "assistant", "content": text}, "done": True, "done_reason": gen.finish,
                "prompt_eval_count": gen.prompt_tokens, "eval_count": len(gen.pieces), **OLLAMA_TIMINGS}

    def native_chunks(self, gen: _Gen) -> list[dict[str, Any]]:
        """Ollama's /api/chat stream objects: one per piece, then the `done` object."""
        body = [{"model": gen.model, "created_at": f"2025-01-01T12:00:00.{i + 1}Z",
                 "message": {"role": "assistant", "content": piece}, "done": False}
                for i, piece in enumerate(gen.pieces)]
        return [*body, self.native_done(gen, "")]

    def stream_error(self, message: str) -> bytes | None:
        """The mid-stream error frame (None for koboldcpp, whose stream just ends)."""
        crlf = self.flavour == "tabbyapi"
        if self.flavour == "llamacpp":
            payload = {"code": 500, "message": message, "type": "server_error"}
            return frame(json.dumps(payload), field="error")
        if self.flavour == "tabbyapi":
            return frame(json.dumps({"error": {"message": message, "trace": None}}), crlf=crlf)
        if self.flavour in ("ollama", "openai"):
            kind = "api_error" if self.flavour == "ollama" else "server_error"
            payload = {"error": {"message": message, "type": kind, "param": None, "code": None}}
            return frame(json.dumps(payload))
        return None

    def done(self) -> bytes:
        """The `[DONE]` terminator."""
        if self.legacy:
            return b"data: [DONE]"
        return frame("[DONE]", crlf=self.flavour == "tabbyapi")


# --------------------------------------------------------------------------- the fake


@dataclass(eq=False)
class _StreamState:
    """Book-keeping for one running generation."""

    aborted: bool = False
    started: float = field(default_factory=time.monotonic)


def _param(faults: Faults, kind: str, key: str, default: Any) -> Any:
    """A fault parameter, or `default` when that fault (or key) is not armed."""
    return faults[kind].get(key, default) if kind in faults else default


class FakeLLM(FakeServerBase):
    """An OpenAI-compatible fake LLM server with the quirks of one real backend (`flavour`)."""

    fault_kinds = {
        "status": frozenset({"code", "message", "body"}),
        "context_overflow": frozenset(),
        "slow": frozenset({"first", "between"}),
        "cut": frozenset({"after"}),
        "malformed": frozenset({"after", "text"}),
        "error_event": frozenset({"after", "message"}),
        "hang": frozenset({"after"}),
    }
    default_fault_paths = (CHAT_PATH, COMPLETIONS_PATH, NATIVE_CHAT_PATH)

    def __init__(
        self,
        flavour: str = "openai",
        *,
        context_length: int = 8192,
        model: str | None = None,
        api_key: str | None = None,
        kobold_legacy: bool = False,
        pings: bool = True,
        hang_timeout: float = 30.0,
        loaded: bool = True,
        trained_context: int = 131072,
        modelfile_num_ctx: int | None = None,
    ) -> None:
        if flavour not in FLAVOURS:
            raise ValueError(f"flavour must be one of {FLAVOURS}, not {flavour!r}")
        super().__init__()
        self.flavour = flavour
        self.context_length = context_length
        self.model = model or _DEFAULT_MODELS[flavour]
        self.api_key = api_key
        self.pings = pings
        self.hang_timeout = hang_timeout
        self.loaded = loaded
        self.trained_context = trained_context
        self.modelfile_num_ctx = modelfile_num_ctx
        self.replies: deque[str] = deque()
        self.generations = 0
        self.disconnects = 0
        self.aborts = 0
        self._disconnected = threading.Event()
        self._streams: set[_StreamState] = set()
        self._ids = itertools.count(1)
        self._shapes = _Shapes(flavour, kobold_legacy)
        self._add_routes()

    # ---- public helpers

    def enqueue(self, *replies: str) -> None:
        """Queue canned reply texts, used first-in first-out."""
        self.replies.extend(replies)

    def chat_requests(self) -> list[RecordedRequest]:
        """Recorded POSTs to /v1/chat/completions."""
        return self.requests_to(CHAT_PATH, "POST")

    def last_chat_request(self) -> RecordedRequest:
        """The latest recorded chat completion request."""
        return self.last_request(CHAT_PATH)

    def native_chat_requests(self) -> list[RecordedRequest]:
        """Recorded POSTs to Ollama's native /api/chat."""
        return self.requests_to(NATIVE_CHAT_PATH, "POST")

    def last_native_chat_request(self) -> RecordedRequest:
        """The latest recorded native /api/chat request."""
        return self.last_request(NATIVE_CHAT_PATH)

    def completion_requests(self) -> list[RecordedRequest]:
        """Recorded POSTs to /v1/completions."""
        return self.requests_to(COMPLETIONS_PATH, "POST")

    def last_completion_request(self) -> RecordedRequest:
        """The latest recorded text completion request."""
        return self.last_request(COMPLETIONS_PATH)

    @property
    def in_flight(self) -> int:
        """Number of generations currently being produced."""
        return len(self._streams)

    def wait_for_disconnect(self, timeout: float = 5.0) -> bool:
        """Block until a client disconnect was seen; False on timeout."""
        return self._disconnected.wait(timeout)

    async def wait_disconnect(self, timeout: float = 5.0) -> bool:
        """Await a client disconnect without blocking the event loop; False on timeout."""
        deadline = time.monotonic() + timeout
        while not self._disconnected.is_set():
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.01)
        return True

    # ---- routes

    def _add_routes(self) -> None:
        """Register the OpenAI routes plus the flavour's own endpoints."""
        routes: list[tuple[str, str, Any]] = [
            ("POST", CHAT_PATH, self._chat),
            ("POST", COMPLETIONS_PATH, self._completions),
            ("GET", "/v1/models", self._models),
        ]
        routes += getattr(self, f"_{self.flavour}_routes")()
        for method, path, endpoint in routes:
            self.app.add_api_route(path, endpoint, methods=[method])
        if self.flavour in ("koboldcpp", "ollama"):
            self.app.add_exception_handler(StarletteHTTPException, self._not_found)

    def _koboldcpp_routes(self) -> list[tuple[str, str, Any]]:
        """KoboldCpp's info, token count and abort endpoints."""
        return [
            ("GET", "/api/extra/version", self._kcpp_version),
            ("GET", "/api/extra/true_max_context_length", self._ctx_value),
            ("GET", "/api/v1/config/max_context_length", self._ctx_value),
            ("POST", "/api/extra/tokencount", self._kcpp_tokencount),
            ("POST", "/api/extra/tokenize", self._kcpp_tokencount),
            ("POST", "/api/extra/abort", self._kcpp_abort),
            ("GET", "/api/v1/model", self._kcpp_model),
        ]

    def _tabbyapi_routes(self) -> list[tuple[str, str, Any]]:
        """TabbyAPI's health, model card and token endpoints."""
        return [
            ("GET", "/health", self._tabby_health),
            ("GET", "/v1/model", self._tabby_model),
            ("GET", "/v1/model/list", self._models),
            ("POST", "/v1/token/encode", self._tabby_encode),
        ]

    def _ollama_routes(self) -> list[tuple[str, str, Any]]:
        """Ollama's root, version, tags, ps, show and native chat endpoints."""
        return [
            ("GET", "/", self._ollama_root),
            ("HEAD", "/", self._ollama_root),
            ("GET", "/api/version", self._ollama_version),
            ("GET", "/api/tags", self._ollama_tags),
            ("GET", "/api/ps", self._ollama_ps),
            ("POST", "/api/show", self._ollama_show),
            ("POST", NATIVE_CHAT_PATH, self._ollama_chat),
        ]

    def _llamacpp_routes(self) -> list[tuple[str, str, Any]]:
        """llama.cpp server's health, props and tokenize endpoints."""
        return [
            ("GET", "/health", self._llama_health),
            ("GET", "/props", self._llama_props),
            ("POST", "/tokenize", self._llama_tokenize),
        ]

    def _openai_routes(self) -> list[tuple[str, str, Any]]:
        """Plain OpenAI has nothing beyond the common routes."""
        return []

    async def _not_found(self, request: Request, exc: Exception) -> Response:
        """Unknown routes the way KoboldCpp / Ollama answer them."""
        status = getattr(exc, "status_code", 500)
        if status not in (404, 405):
            return JSONResponse({"detail": getattr(exc, "detail", "")}, status_code=status)
        if self.flavour == "ollama":
            text = "404 page not found" if status == 404 else "405 method not allowed"
            return PlainTextResponse(text, status_code=status)
        return kobold_not_found(request.method)

    # ---- early responses (auth, status faults)

    def _early_response(self, record: RecordedRequest, faults: Faults) -> Response | None:
        """Reject unauthorised requests and apply `status` faults before routing."""
        if self.api_key and not self._authorised(record):
            return JSONResponse(error_body(self.flavour, 401), status_code=401)
        if "status" in faults:
            params = faults["status"]
            code = int(params.get("code", 500))
            sent = str((record.json.get("model") if isinstance(record.json, dict) else None) or self.model)
            native = self.flavour == "ollama" and record.path.startswith("/api/")
            body = params.get("body") or (native_error_body(code, params.get("message"), sent) if native
                                          else error_body(self.flavour, code, params.get("message"), sent))
            return JSONResponse(body, status_code=code)
        return None

    def _authorised(self, record: RecordedRequest) -> bool:
        """Whether the request carries the API key (health/root endpoints are open)."""
        if record.path in ("/health", "/") or (self.flavour == "ollama" and record.path.startswith("/api/")):
            return True
        bearer = record.headers.get("authorization", "")
        if bearer == f"Bearer {self.api_key}":
            return True
        return self.flavour == "tabbyapi" and record.headers.get("x-api-key") == self.api_key

    # ---- generation

    async def _chat(self, request: Request) -> Response:
        """POST /v1/chat/completions."""
        return await self._generate(request, "chat")

    async def _completions(self, request: Request) -> Response:
        """POST /v1/completions."""
        return await self._generate(request, "text")

    async def _generate(self, request: Request, kind: str) -> Response:
        """Validate, plan and answer one generation request (JSON or SSE)."""
        body = parse_json(await request.body())
        if not isinstance(body, dict):
            return JSONResponse(error_body(self.flavour, 400, "Invalid JSON body"), status_code=400)
        faults: Faults = request.scope.get("fake.faults", {})
        rejected = self._reject(body, faults)
        if rejected is not None:
            return rejected
        gen = self._plan(body, kind)
        if body.get("stream"):
            return StreamBody(self._stream(gen, faults), self._note_disconnect)
        if "slow" in faults or "hang" in faults:
            return StreamBody(self._slow_json(self._shapes.response(gen), faults), self._note_disconnect,
                              media_type="application/json")
        return JSONResponse(self._shapes.response(gen))

    async def _ollama_chat(self, request: Request) -> Response:
        """POST /api/chat (Ollama native): NDJSON stream unless `stream` is false."""
        body = parse_json(await request.body())
        faults: Faults = request.scope.get("fake.faults", {})
        rejected = self._native_reject(body, faults)
        if rejected is not None:
            return rejected
        assert isinstance(body, dict)
        options = body.get("options") if isinstance(body.get("options"), dict) else {}
        self._ollama_load(options.get("num_ctx"))
        gen = self._plan({**body, "stop": options.get("stop"), "max_tokens": options.get("num_predict")}, "chat")
        if body.get("stream", True):
            return StreamBody(self._stream(gen, faults, native=True), self._note_disconnect,
                              media_type="application/x-ndjson")
        if "slow" in faults or "hang" in faults:
            return StreamBody(self._slow_json(self._shapes.native_done(gen, gen.text), faults),
                              self._note_disconnect, media_type="application/json")
        return JSONResponse(self._shapes.native_done(gen, gen.text))

    def _native_reject(self, body: Any, faults: Faults) -> Response | None:
        """Native /api/chat rejections: bad body, no or unknown model, an armed context overflow."""
        if not isinstance(body, dict):
            return JSONResponse({"error": "invalid request body"}, status_code=400)
        if not body.get("model"):
            return JSONResponse({"error": "model is required"}, status_code=400)
        if not self._ollama_known(body.get("model")):
            return JSONResponse(native_error_body(404, model=str(body["model"])), status_code=404)
        if "context_overflow" in faults:
            return JSONResponse({"error": "the input length exceeds the context length"}, status_code=400)
        return None

    def _ollama_load(self, num_ctx: Any) -> None:
        """Load the model the way a native request does: with its num_ctx, else the Modelfile's or 4096."""
        if isinstance(num_ctx, int) and num_ctx > 0:
            self.context_length = num_ctx
        elif not self.loaded:
            self.context_length = self.modelfile_num_ctx or OLLAMA_DEFAULT_CTX
        self.loaded = True

    def _reject(self, body: dict[str, Any], faults: Faults) -> Response | None:
        """Unknown-model and context-overflow rejections."""
        if self.flavour == "ollama" and not self._ollama_known(body.get("model")):
            error = error_body("ollama", 404, model=str(body.get("model") or ""))
            return JSONResponse(error, status_code=404)
        n_prompt = prompt_tokens(body)
        strict = self.flavour in ("tabbyapi", "llamacpp", "openai")
        if "context_overflow" in faults or (strict and n_prompt > self.context_length):
            n_shown = n_prompt if n_prompt > self.context_length else self.context_length + 1
            return JSONResponse(overflow_body(self.flavour, n_shown, self.context_length), status_code=400)
        return None

    def _plan(self, body: dict[str, Any], kind: str) -> _Gen:
        """Pick the reply, apply stop strings and max_tokens, and build a _Gen."""
        self.generations += 1
        text = self.replies.popleft() if self.replies else self._default_reply(body)
        text, _ = _apply_stop(text, body.get("stop", body.get("stop_sequence")))
        pieces = split_reply(text)
        finish = "stop"
        limit = self._max_tokens(body)
        if limit is not None and len(pieces) > limit:
            pieces, finish = pieces[:limit], "length"
        model = str(body.get("model") or self.model) if self.flavour == "ollama" else self.model
        prefix = "chatcmpl" if kind == "chat" else "cmpl"
        options = body.get("stream_options") or {}
        include_usage = bool(isinstance(options, dict) and options.get("include_usage"))
        return _Gen(kind, pieces, finish, prompt_tokens(body), model, f"{prefix}-fake{next(self._ids)}",
                    include_usage)

    def _default_reply(self, body: dict[str, Any]) -> str:
        """`Reply N to: <start of the last user message>`."""
        source = ""
        messages = body.get("messages")
        if isinstance(messages, list):
            users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
            source = message_text(users[-1].get("content")) if users else ""
        elif isinstance(body.get("prompt"), str):
            source = body["prompt"]
        snippet = " ".join(source.split())[:40] or "(nothing)"
        return f"Reply {self.generations} to: {snippet}"

    def _max_tokens(self, body: dict[str, Any]) -> int | None:
        """The reply length limit this flavour honours, or None."""
        names = {
            "ollama": ("max_tokens",),
            "llamacpp": ("max_tokens", "n_predict"),
            "tabbyapi": ("max_tokens", "max_completion_tokens", "max_length"),
            "koboldcpp": ("max_tokens", "max_completion_tokens"),
            "openai": ("max_completion_tokens", "max_tokens"),
        }[self.flavour]
        for name in names:
            value = body.get(name)
            if isinstance(value, int) and not isinstance(value, bool):
                if value < 0 or (value == 0 and self.flavour == "koboldcpp"):
                    return None
                return value
        return None

    def _ollama_known(self, name: Any) -> bool:
        """Whether Ollama would find model `name` (a missing tag means `:latest`)."""
        if not isinstance(name, str) or not name:
            return False
        full = name if ":" in name else f"{name}:latest"
        mine = self.model if ":" in self.model else f"{self.model}:latest"
        return full == mine

    # ---- streaming

    def _frame(self, payload: str) -> bytes:
        """A `data:` frame in this flavour's line endings."""
        return frame(payload, crlf=self.flavour == "tabbyapi")

    async def _stream(self, gen: _Gen, faults: Faults, *, native: bool = False) -> AsyncIterator[bytes]:
        """The SSE (native: NDJSON) body of one streamed generation, with faults applied."""
        if native:
            frames, n_content = [ndjson(c) for c in self._shapes.native_chunks(gen)], len(gen.pieces)
        else:
            chunks, n_content = self._shapes.chunks(gen)
            frames = [self._frame(json.dumps(c)) for c in chunks] + [self._shapes.done()]
        state = _StreamState()
        self._streams.add(state)
        try:
            await self._pause(_param(faults, "slow", "first", 0.0), state)
            async for out in self._emit(frames, n_content, faults, state, native):
                yield out
        finally:
            self._streams.discard(state)

    async def _emit(
        self, frames: list[bytes], n_content: int, faults: Faults, state: _StreamState, native: bool = False
    ) -> AsyncIterator[bytes]:
        """Yield frames one by one, injecting the armed stream faults at their chunk index."""
        between = float(_param(faults, "slow", "between", 0.0))
        index = 0
        while index < len(frames):
            if _at(faults, "malformed", index, 1):
                garbage = str(faults["malformed"].get("text", "{not json"))
                yield garbage.encode() + b"\n" if native else self._frame(garbage)
            if _at(faults, "error_event", index, 1):
                message = str(faults["error_event"].get("message", "generation failed"))
                error = ndjson({"error": message}) if native else self._shapes.stream_error(message)
                if error is not None:
                    yield error
                return
            if _at(faults, "cut", index, 2):
                return
            if _at(faults, "hang", index, 1) and not await self._hang(state):
                return
            if state.aborted and index < n_content:
                index = n_content
            yield frames[index]
            if index == 0 and self.flavour == "tabbyapi" and self.pings:
                yield comment(f"ping - {datetime.now(UTC)}", crlf=True)
            index += 1
            if between and index < len(frames):
                await self._pause(between, state)

    async def _pause(self, seconds: float, state: _StreamState) -> None:
        """Sleep up to `seconds`, waking early on abort."""
        deadline = time.monotonic() + float(seconds)
        while not state.aborted and time.monotonic() < deadline:
            await asyncio.sleep(min(0.01, max(0.0, deadline - time.monotonic())))

    async def _hang(self, state: _StreamState) -> bool:
        """Stall until abort (True) or `hang_timeout` (False); a disconnect cancels us meanwhile."""
        await self._pause(self.hang_timeout, state)
        return state.aborted

    async def _slow_json(self, payload: dict[str, Any], faults: Faults) -> AsyncIterator[bytes]:
        """A non-stream JSON body sent after the `slow`/`hang` delay."""
        state = _StreamState()
        self._streams.add(state)
        try:
            await self._pause(_param(faults, "slow", "first", 0.0), state)
            if "hang" in faults:
                await self._hang(state)
            yield json.dumps(payload).encode()
        finally:
            self._streams.discard(state)

    def _note_disconnect(self) -> None:
        """Count a client that left before its response was complete."""
        self.disconnects += 1
        self._disconnected.set()

    # ---- flavour info endpoints

    async def _models(self, request: Request) -> dict[str, Any]:
        """GET /v1/models in this flavour's shape."""
        card: dict[str, Any] = {"id": self.model, "object": "model", "created": CREATED}
        if self.flavour == "koboldcpp":
            card.update(owned_by="koboldcpp", permission=[], root="koboldcpp")
        elif self.flavour == "tabbyapi":
            card = self._tabby_card()
        elif self.flavour == "ollama":
            card["owned_by"] = "library"
        elif self.flavour == "llamacpp":
            card["owned_by"] = "llamacpp"
            card["meta"] = {"vocab_type": 2, "n_vocab": 128256, "n_ctx_train": max(self.context_length, 131072),
                            "n_embd": 4096, "n_params": 8030261312, "size": 4912898304}
        else:
            card["owned_by"] = "system"
        return {"object": "list", "data": [card]}

    async def _ctx_value(self, request: Request) -> dict[str, Any]:
        """KoboldCpp context length endpoints."""
        return {"value": self.context_length}

    async def _kcpp_version(self, request: Request) -> dict[str, Any]:
        """GET /api/extra/version."""
        return {"result": "KoboldCpp", "version": "1.102", "protected": bool(self.api_key),
                "txt2img": False, "vision": False, "transcribe": False}

    async def _kcpp_model(self, request: Request) -> dict[str, Any]:
        """GET /api/v1/model."""
        return {"result": self.model}

    async def _kcpp_tokencount(self, request: Request) -> Response:
        """POST /api/extra/tokencount: `{"value": n, "ids": [...]}` (BOS added when `special`)."""
        body = parse_json(await request.body())
        if not isinstance(body, dict) or not isinstance(body.get("prompt"), str):
            return JSONResponse({"value": -1}, status_code=400)
        ids = fake_token_ids(body["prompt"], bos=bool(body.get("special", True)))
        return JSONResponse({"value": len(ids), "ids": ids})

    async def _kcpp_abort(self, request: Request) -> dict[str, str]:
        """POST /api/extra/abort: stop every running generation."""
        self.aborts += 1
        running = bool(self._streams)
        for state in self._streams:
            state.aborted = True
        return {"success": "true" if running else "false", "done": "true"}

    def _tabby_card(self) -> dict[str, Any]:
        """TabbyAPI's ModelCard for the loaded model."""
        params = {"max_seq_len": self.context_length, "cache_size": self.context_length, "cache_mode": "FP16",
                  "rope_scale": 1.0, "rope_alpha": 1.0, "max_batch_size": 1, "chunk_size": 2048,
                  "prompt_template": "chatml", "prompt_template_content": "...", "use_vision": False,
                  "draft": None}
        return {"id": self.model, "object": "model", "created": CREATED, "owned_by": "tabbyAPI",
                "logging": None, "parameters": params}

    async def _tabby_health(self, request: Request) -> dict[str, Any]:
        """GET /health (TabbyAPI)."""
        return {"status": "healthy", "issues": []}

    async def _tabby_model(self, request: Request) -> dict[str, Any]:
        """GET /v1/model."""
        return self._tabby_card()

    async def _tabby_encode(self, request: Request) -> Response:
        """POST /v1/token/encode: text or chat messages (contents joined) to tokens."""
        body = parse_json(await request.body())
        text = body.get("text") if isinstance(body, dict) else None
        if isinstance(text, list):
            text = "\n".join(message_text(m.get("content")) for m in text if isinstance(m, dict))
        if not isinstance(text, str):
            return JSONResponse({"detail": "text is required"}, status_code=422)
        ids = fake_token_ids(text, bos=bool(body.get("add_bos_token", True)))
        return JSONResponse({"tokens": ids, "length": len(ids)})

    async def _ollama_root(self, request: Request) -> Response:
        """GET / (Ollama)."""
        return PlainTextResponse("Ollama is running")

    async def _ollama_version(self, request: Request) -> dict[str, Any]:
        """GET /api/version."""
        return {"version": "0.13.5"}

    def _ollama_entry(self) -> dict[str, Any]:
        """The shared part of /api/tags and /api/ps model entries."""
        details = {"parent_model": "", "format": "gguf", "family": "llama", "families": ["llama"],
                   "parameter_size": "3.2B", "quantization_level": "Q4_K_M"}
        return {"name": self.model, "model": self.model, "size": 2019393189,
                "digest": "a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72", "details": details}

    async def _ollama_tags(self, request: Request) -> dict[str, Any]:
        """GET /api/tags."""
        return {"models": [{**self._ollama_entry(), "modified_at": "2025-05-04T17:37:44.706015396-07:00"}]}

    async def _ollama_ps(self, request: Request) -> dict[str, Any]:
        """GET /api/ps with the allocated `context_length` (no models while not `loaded`)."""
        if not self.loaded:
            return {"models": []}
        entry = {**self._ollama_entry(), "expires_at": "2025-01-01T12:05:00Z", "size_vram": 3400000000,
                 "context_length": self.context_length}
        return {"models": [entry]}

    async def _ollama_show(self, request: Request) -> Response:
        """POST /api/show: model details, the trained context length and the Modelfile parameters."""
        body = parse_json(await request.body())
        name = body.get("model") if isinstance(body, dict) else None
        if not self._ollama_known(name):
            return JSONResponse({"error": f"model '{name}' not found"}, status_code=404)
        num_ctx = "" if self.modelfile_num_ctx is None else f"\nnum_ctx {self.modelfile_num_ctx}"
        return JSONResponse({
            "parameters": f'stop "<|eot_id|>"{num_ctx}',
            "template": "...",
            "details": self._ollama_entry()["details"],
            "model_info": {"general.architecture": "llama", "llama.context_length": self.trained_context,
                           "llama.embedding_length": 3072},
            "capabilities": ["completion", "tools"],
        })

    async def _llama_health(self, request: Request) -> dict[str, Any]:
        """GET /health (llama.cpp)."""
        return {"status": "ok"}

    async def _llama_props(self, request: Request) -> dict[str, Any]:
        """GET /props with default_generation_settings.n_ctx."""
        params = {"n_predict": -1, "temperature": 0.8, "top_k": 40, "top_p": 0.95, "min_p": 0.05,
                  "repeat_penalty": 1.0, "repeat_last_n": 64, "stop": [], "max_tokens": -1, "n_keep": 0}
        settings = {"id": 0, "id_task": -1, "n_ctx": self.context_length, "speculative": False,
                    "is_processing": bool(self._streams), "params": params}
        return {"default_generation_settings": settings, "total_slots": 1, "model_path": self.model,
                "chat_template": "...", "modalities": {"vision": False}, "build_info": "b5000-fake0"}

    async def _llama_tokenize(self, request: Request) -> Response:
        """POST /tokenize: `{"tokens": [...]}`, or id/piece pairs with `with_pieces`."""
        body = parse_json(await request.body())
        content = body.get("content") if isinstance(body, dict) else None
        if not isinstance(content, str):
            return JSONResponse(error_body("llamacpp", 400, "content is required"), status_code=400)
        ids = fake_token_ids(content, bos=bool(body.get("add_special", False)))
        if body.get("with_pieces"):
            pieces = (["<s>"] if body.get("add_special") else []) + fake_tokens(content)
            return JSONResponse({"tokens": [{"id": i, "piece": p} for i, p in zip(ids, pieces, strict=True)]})
        return JSONResponse({"tokens": ids})


def _at(faults: Faults, kind: str, index: int, default_after: int) -> bool:
    """Whether fault `kind` fires before frame `index`."""
    return kind in faults and int(faults[kind].get("after", default_after)) == index


def _apply_stop(text: str, stop: Any) -> tuple[str, bool]:
    """Cut `text` at the earliest stop string; report whether one was found."""
    stops: Iterable[Any] = [stop] if isinstance(stop, str) else (stop if isinstance(stop, list) else [])
    cut = min((text.find(s) for s in stops if isinstance(s, str) and s and s in text), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)
