"""A fake local LLM server speaking the OpenAI-compatible API with per-backend quirks (and Ollama's native chat).

`FakeLLM(flavour="openai", context_length=8192, model=None, api_key=None, kobold_legacy=False, pings=True,
hang_timeout=30.0, loaded=True, trained_context=131072, modelfile_num_ctx=None)` builds a FastAPI app in
`.app`.  Use it in-process with `httpx.AsyncClient(transport=httpx.ASGITransport(app=fake.app),
base_url="http://fake")` (that transport buffers whole responses, so streams arrive complete) or on a real port
with `tests.fakes.live.LiveServer`.

Flavours (see shared/reference/api-contracts.md §3): "llamacpp", "koboldcpp", "tabbyapi", "ollama", "openai",
"llamacpp_python" (llama-cpp-python 0.3.36's server: `/extras/tokenize[/count]`, CRLF SSE, no /props).
What each does with prompts, samplers, Continue and thinking as the real server does is in `llm_dialects`
(`fake.prompts`: the prompt text the server would feed its model; `fake.samplers`: the sampler values it
would use). More options: `version` (KoboldCpp's, "1.102" by default; "1.76" has no placeholders),
`thinking` (text a thinking model writes first: llama.cpp `reasoning_content`, Ollama `thinking`),
`legacy_errors` (llama.cpp's old `error:` stream lines), and for Ollama `capabilities` of the main model,
`others` (more models: dicts with name, capabilities, family, modified_at) and `tags_capabilities` (False: an
Ollama whose /api/tags lists no capabilities; /api/show still does).
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
`generations`; `in_flight` is the number of running generations.  `wait_for_disconnect(timeout=30)` (sync)
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
* `interrupt`: `after=2` - send `after` data chunks, then `[DONE]` with no finish chunk (what llama-cpp-python
  sends when another request interrupts a stream; native: like `cut`).
* `malformed`: `after=1`, `text="{not json"` - insert a garbage `data:` line (native: a garbage line) after
  `after` chunks.
* `error_event`: `after=1`, `message="generation failed"` - after `after` chunks send the flavour's
  mid-stream error (llamacpp `data: {"error": {...}}`, with legacy_errors an `error: {...}` line;
  tabbyapi/ollama/openai `data: {"error": ...}`, Ollama native
  a `{"error": "..."}` line, koboldcpp just ends the stream) and close.
* `hang`: `after=1` - after `after` chunks stall until the client disconnects (counted in `disconnects`),
  a koboldcpp abort, or `hang_timeout` seconds.  Non-stream requests hang before the body is sent.
  Use a LiveServer for this: ASGITransport only returns when the response is complete.

The pieces live in sibling modules: `llm_tokens` (fake tokens, reply pieces), `llm_shapes` (paths, error
bodies, per-flavour response and chunk shapes), `llm_stream` (stream bodies and faults), `llm_info` (info
endpoints) and `base` (recording and fault book-keeping shared with `FakeA1111`).
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from collections.abc import Iterable
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from tests.waiting import DEFAULT_TIMEOUT, async_wait_until

from .base import FakeServerBase, Faults, RecordedRequest, parse_json
from .llm_dialects import LLMDialects
from .llm_info import LLMInfoEndpoints
from .llm_shapes import (
    CHAT_PATH,
    COMPLETIONS_PATH,
    FLAVOURS,
    NATIVE_CHAT_PATH,
    NATIVE_GENERATE_PATH,
    Generation,
    Shapes,
    error_body,
    native_error_body,
    overflow_body,
)
from .llm_stream import LLMStreaming, StreamState
from .llm_tokens import message_text, prompt_tokens, split_reply
from .sse import StreamBody

OLLAMA_DEFAULT_CTX = 4096

_DEFAULT_MODELS = {
    "koboldcpp": "koboldcpp/Mistral-Nemo-12B-Q4_K_M",
    "tabbyapi": "Mistral-Nemo-12B-exl3-4.0bpw",
    "ollama": "llama3.2:latest",
    "llamacpp": "/models/llama-3.1-8b-instruct-q4_k_m.gguf",
    "openai": "gpt-fake",
    "llamacpp_python": "smollm2-135m-instruct",
}


class FakeLLM(LLMInfoEndpoints, LLMStreaming, LLMDialects, FakeServerBase):
    """An OpenAI-compatible fake LLM server with the quirks of one real backend (`flavour`)."""

    fault_kinds = {
        "status": frozenset({"code", "message", "body"}),
        "context_overflow": frozenset(),
        "slow": frozenset({"first", "between"}),
        "cut": frozenset({"after"}),
        "interrupt": frozenset({"after"}),
        "malformed": frozenset({"after", "text"}),
        "error_event": frozenset({"after", "message"}),
        "hang": frozenset({"after"}),
    }
    default_fault_paths = (CHAT_PATH, COMPLETIONS_PATH, NATIVE_CHAT_PATH, NATIVE_GENERATE_PATH)

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
        version: str = "1.102",
        thinking: str = "",
        legacy_errors: bool = False,
        capabilities: list[str] | None = None,
        others: list[dict[str, Any]] | None = None,
        tags_capabilities: bool = True,
        slots: int = 1,
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
        self._streams: set[StreamState] = set()
        self._ids = itertools.count(1)
        self._shapes = Shapes(flavour, kobold_legacy, legacy_errors)
        self.version = version
        self.thinking = thinking
        self.capabilities = capabilities or ["completion", "tools", *(["thinking"] if thinking else [])]
        self.others = others or []
        self.tags_capabilities = tags_capabilities
        self.slots = slots  # llama.cpp: /props total_slots; an `id_slot` past them is refused
        self.prompts: list[str] = []
        self.samplers: list[dict[str, Any]] = []
        self.stop_reason = -1  # KoboldCpp's last stop reason: 0 out of tokens, 1 EOS, 2 stop string
        if flavour == "llamacpp_python":
            self.app.title = "\U0001f999 llama.cpp Python API"  # llama_cpp/server/app.py create_app
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

    def wait_for_disconnect(self, timeout: float = DEFAULT_TIMEOUT) -> bool:
        """Block until a client disconnect was seen; False on timeout."""
        return self._disconnected.wait(timeout)

    async def wait_disconnect(self, timeout: float = DEFAULT_TIMEOUT) -> bool:
        """Await a client disconnect without blocking the event loop; False on timeout."""
        try:
            await async_wait_until(self._disconnected.is_set, timeout=timeout, what="a client disconnect")
        except AssertionError:
            return False
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
        if self.flavour == "tabbyapi" and record.path == "/.well-known/serviceinfo":
            return True  # TabbyAPI endpoints/core/router.py: no check_api_key on this route
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
        rejected = self._reject(body, faults) or self._prefill_refused(body) or self._tabby_unloaded()
        if rejected is not None:
            return rejected
        gen = self._plan(self._note_request(body, kind), kind)
        if body.get("stream"):
            return StreamBody(self._stream(gen, faults), self._note_disconnect)
        if "slow" in faults or "hang" in faults:
            return StreamBody(self._slow_json(self._shapes.response(gen), faults), self._note_disconnect,
                              media_type="application/json")
        return JSONResponse(self._shapes.response(gen))

    async def _ollama_chat(self, request: Request) -> Response:
        """POST /api/chat (Ollama native): NDJSON stream unless `stream` is false."""
        return await self._ollama_native(request, "chat")

    async def _ollama_generate(self, request: Request) -> Response:
        """POST /api/generate (Ollama native): `response` instead of `message`; `raw` skips the template."""
        return await self._ollama_native(request, "generate")

    async def _ollama_native(self, request: Request, kind: str) -> Response:
        body = parse_json(await request.body())
        faults: Faults = request.scope.get("fake.faults", {})
        rejected = self._native_reject(body, faults)
        if rejected is not None:
            return rejected
        assert isinstance(body, dict)
        options = body.get("options") if isinstance(body.get("options"), dict) else {}
        self._ollama_load(options.get("num_ctx"))
        body = self._note_request(body, kind)
        gen = self._plan({**body, "stop": options.get("stop"), "max_tokens": options.get("num_predict")}, kind)
        done = self._shapes.native_done(gen, gen.text, "".join(gen.thinking))
        if body.get("stream", True):
            return StreamBody(self._stream(gen, faults, native=True), self._note_disconnect,
                              media_type="application/x-ndjson")
        if "slow" in faults or "hang" in faults:
            return StreamBody(self._slow_json(done, faults), self._note_disconnect, media_type="application/json")
        return JSONResponse(done)

    def _tabby_unloaded(self) -> Response | None:
        """TabbyAPI with no model loaded answers 503 (common/model.py check_model_container)."""
        if self.flavour == "tabbyapi" and not self.loaded:
            return JSONResponse(error_body("tabbyapi", 503), status_code=503)
        return None

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
        slot = body.get("id_slot", -1)
        if self.flavour == "llamacpp" and slot != -1 and not (isinstance(slot, int) and 0 <= slot < self.slots):
            return JSONResponse(error_body("llamacpp", 400, "Invalid slot ID"), status_code=400)
        n_prompt = prompt_tokens(body)
        strict = self.flavour in ("tabbyapi", "llamacpp", "openai", "llamacpp_python")
        if "context_overflow" in faults or (strict and n_prompt > self.context_length):
            n_shown = n_prompt if n_prompt > self.context_length else self.context_length + 1
            return JSONResponse(overflow_body(self.flavour, n_shown, self.context_length), status_code=400)
        return None

    def _plan(self, body: dict[str, Any], kind: str) -> Generation:
        """Pick the reply, apply stop strings and max_tokens, and build a Generation."""
        self.generations += 1
        text = self.replies.popleft() if self.replies else self._default_reply(body)
        text, stopped = _apply_stop(text, body.get("stop", body.get("stop_sequence")))
        pieces, thinking = split_reply(text), split_reply(self.thinking) if self._thinks(body) else []
        finish, self.stop_reason = "stop", (2 if stopped else 1)
        limit = self._max_tokens(body)
        if limit is not None and len(thinking) + len(pieces) > limit:  # thinking uses up the same budget
            thinking, pieces = thinking[:limit], pieces[:max(0, limit - len(thinking))]
            finish, self.stop_reason = "length", 0
        if self.flavour == "koboldcpp" and self.stop_reason != 1:
            finish = "length"  # koboldcpp.py: `"length" if stopreason != 1`, a stop string included
        model = str(body.get("model") or self.model) if self.flavour == "ollama" else self.model
        prefix = "chatcmpl" if kind == "chat" else "cmpl"
        options = body.get("stream_options") or {}
        include_usage = bool(isinstance(options, dict) and options.get("include_usage"))
        return Generation(kind, pieces, finish, prompt_tokens(body), model, f"{prefix}-fake{next(self._ids)}",
                          include_usage, thinking)

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
            "llamacpp_python": ("max_tokens",),
        }[self.flavour]
        for name in names:
            value = body.get(name)
            if isinstance(value, int) and not isinstance(value, bool):
                if value < 0 or (value == 0 and self.flavour == "koboldcpp"):
                    return None
                return value
        return None


def _apply_stop(text: str, stop: Any) -> tuple[str, bool]:
    """Cut `text` at the earliest stop string; report whether one was found."""
    stops: Iterable[Any] = [stop] if isinstance(stop, str) else (stop if isinstance(stop, list) else [])
    cut = min((text.find(s) for s in stops if isinstance(s, str) and s and s in text), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)
