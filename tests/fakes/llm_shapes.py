"""The wire shapes of the fake LLM's flavours: paths, error and overflow bodies, response and stream chunks.

`error_body`/`native_error_body`/`overflow_body` give each backend's real (or, for koboldcpp/ollama overflow,
inferred) error JSON; `Generation` is one planned reply and `Shapes` turns it into the flavour's non-stream
response, SSE chunks, Ollama native NDJSON objects, mid-stream error frame and `[DONE]` terminator
(see shared/reference/api-contracts.md §3).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .sse import frame

FLAVOURS = ("llamacpp", "koboldcpp", "tabbyapi", "ollama", "openai", "llamacpp_python")
CHAT_PATH = "/v1/chat/completions"
COMPLETIONS_PATH = "/v1/completions"
NATIVE_CHAT_PATH = "/api/chat"
NATIVE_GENERATE_PATH = "/api/generate"
OLLAMA_TIMINGS = {"total_duration": 812000000, "load_duration": 12000000, "prompt_eval_duration": 90000000,
                  "eval_duration": 600000000}
CREATED = 1735700000

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
class Generation:
    """One planned generation: reply pieces plus everything the response shapes need."""

    kind: str
    pieces: list[str]
    finish: str
    prompt_tokens: int
    model: str
    id: str
    include_usage: bool
    thinking: list[str] = field(default_factory=list)  # reasoning pieces a thinking model writes first

    @property
    def text(self) -> str:
        """The whole reply text."""
        return "".join(self.pieces)

    def usage(self) -> dict[str, int]:
        """OpenAI-style usage counts."""
        done = len(self.pieces)
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": done,
                "total_tokens": self.prompt_tokens + done}


class Shapes:
    """Builds the chunk and response JSON shapes for one flavour."""

    def __init__(self, flavour: str, kobold_legacy: bool, legacy_errors: bool = False) -> None:
        self.flavour = flavour
        self.legacy = kobold_legacy and flavour == "koboldcpp"
        self.legacy_errors = legacy_errors and flavour == "llamacpp"
        self.crlf = flavour in ("tabbyapi", "llamacpp_python")  # sse-starlette frames with CRLF

    def envelope(self, gen: Generation, obj: str, choices: list[dict[str, Any]]) -> dict[str, Any]:
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

    def _finish_choice(self, gen: Generation) -> dict[str, Any]:
        """The choice of the final chunk of a chat stream."""
        if gen.kind == "text":
            return {"index": 0, "text": "", "finish_reason": gen.finish, "logprobs": None}
        if self.flavour == "koboldcpp":
            return {"index": 0, "finish_reason": gen.finish, "delta": {"role": "assistant", "content": ""}}
        choice: dict[str, Any] = {"index": 0, "delta": {}, "finish_reason": gen.finish}
        if self.flavour == "tabbyapi":
            choice["eos_reason"] = "eos_token" if gen.finish == "stop" else "max_new_tokens"
        return choice

    def _content_choice(self, gen: Generation, piece: str, first: bool) -> dict[str, Any]:
        """The choice of one content chunk."""
        if gen.kind == "text":
            return {"index": 0, "text": piece, "finish_reason": self._pending(), "logprobs": None}
        return {"index": 0, "delta": self._delta(piece, first), "finish_reason": self._pending()}

    def chunks(self, gen: Generation) -> tuple[list[dict[str, Any]], int]:
        """All stream chunks and how many of them carry content (the rest are finish/usage)."""
        obj = "chat.completion.chunk" if gen.kind == "chat" else "text_completion"
        body = [self.envelope(gen, obj, [self._content_choice(gen, p, i == 0)])
                for i, p in enumerate(gen.pieces)]
        if gen.kind == "chat":
            # llama.cpp server and TabbyAPI stream a thinking template's reasoning as `reasoning_content`.
            body[:0] = [self.envelope(gen, obj, [{"index": 0, "delta": {"reasoning_content": p},
                                                  "finish_reason": self._pending()}]) for p in gen.thinking]
        if self.flavour in ("llamacpp", "llamacpp_python") and gen.kind == "chat":
            # llama-cpp-python's first chunk is {"role": "assistant"} (llama_chat_format.py
            # _convert_text_completion_chunks_to_chat); llama.cpp's also has `content: null`.
            delta: dict[str, Any] = {"role": "assistant"}
            if self.flavour == "llamacpp":
                delta["content"] = None
            body.insert(0, self.envelope(gen, obj, [{"index": 0, "delta": delta, "finish_reason": None}]))
        final = self.envelope(gen, obj, [self._finish_choice(gen)])
        if self.flavour == "llamacpp":
            final["timings"] = self.timings(gen)
        tail = [final]
        if gen.include_usage and self.flavour != "koboldcpp":
            tail.append({**self.envelope(gen, obj, []), "usage": gen.usage()})
        return body + tail, len(body)

    def timings(self, gen: Generation) -> dict[str, float]:
        """llama.cpp-style timings."""
        done = len(gen.pieces)
        return {"prompt_n": gen.prompt_tokens, "prompt_ms": 1.0, "predicted_n": done, "predicted_ms": 1.0,
                "prompt_per_second": 1000.0 * gen.prompt_tokens, "predicted_per_second": 1000.0 * done}

    def response(self, gen: Generation) -> dict[str, Any]:
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

    def _message_choice(self, gen: Generation) -> dict[str, Any]:
        """The choice of a non-streaming chat response."""
        message: dict[str, Any] = {"role": "assistant", "content": gen.text}
        if gen.thinking:
            message["reasoning_content"] = "".join(gen.thinking)
        choice: dict[str, Any] = {"index": 0, "message": message, "finish_reason": gen.finish}
        if self.flavour == "koboldcpp":
            message["tool_calls"] = []
            choice["logprobs"] = None
        if self.flavour == "tabbyapi":
            message.update(reasoning_content=message.get("reasoning_content"), tool_calls=None)
            choice.update(eos_reason=self._finish_choice(gen).get("eos_reason"), stop_str=None, logprobs=None)
        return choice

    def native_done(self, gen: Generation, text: str, thinking: str = "") -> dict[str, Any]:
        """Ollama's final /api/chat (/api/generate: `response`) object; the whole answer when not streamed."""
        done: dict[str, Any] = {"model": gen.model, "created_at": "2025-01-01T12:00:00.3Z"}
        done.update(self._native_text(gen, text, thinking))
        done.update(done=True, done_reason=gen.finish, prompt_eval_count=gen.prompt_tokens,
                    eval_count=len(gen.pieces) + len(gen.thinking), **OLLAMA_TIMINGS)
        return done

    def _native_text(self, gen: Generation, text: str, thinking: str) -> dict[str, Any]:
        """The text fields of a native object: `message` for /api/chat, `response` for /api/generate."""
        if gen.kind == "generate":
            return {"response": text, **({"thinking": thinking} if thinking else {})}
        message = {"role": "assistant", "content": text}
        return {"message": {**message, "thinking": thinking} if thinking else message}

    def native_chunks(self, gen: Generation) -> list[dict[str, Any]]:
        """Ollama's native stream objects: thinking pieces, then one per piece, then the `done` object."""
        texts = [("", t) for t in gen.thinking] + [(p, "") for p in gen.pieces]
        body = [{"model": gen.model, "created_at": f"2025-01-01T12:00:00.{i + 1}Z",
                 **self._native_text(gen, text, thinking), "done": False}
                for i, (text, thinking) in enumerate(texts)]
        return [*body, self.native_done(gen, "")]

    def stream_error(self, message: str) -> bytes | None:
        """The mid-stream error frame (None for koboldcpp, whose stream just ends)."""
        crlf = self.crlf
        if self.flavour == "llamacpp":
            # tools/server/server-context.cpp (current): `format_oai_sse(json {{ "error", res_json }})`, a
            # `data:` event; builds before that sent an `error:` line (legacy_errors=True).
            payload = {"code": 500, "message": message, "type": "server_error"}
            if self.legacy_errors:
                return frame(json.dumps(payload), field="error")
            return frame(json.dumps({"error": payload}))
        if self.flavour == "tabbyapi":
            return frame(json.dumps({"error": {"message": message, "trace": None}}), crlf=crlf)
        if self.flavour in ("ollama", "openai", "llamacpp_python"):
            kind = "api_error" if self.flavour == "ollama" else "server_error"
            payload = {"error": {"message": message, "type": kind, "param": None, "code": None}}
            return frame(json.dumps(payload))
        return None

    def done(self) -> bytes:
        """The `[DONE]` terminator."""
        if self.legacy:
            return b"data: [DONE]"
        return frame("[DONE]", crlf=self.crlf)
