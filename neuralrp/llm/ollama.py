"""Ollama's native chat API: request bodies, NDJSON stream decoding and the context window rule.

Ollama's OpenAI routes (/v1) cannot set `num_ctx` and ignore top_k, min_p and repeat_penalty, so chat
replies go to `POST /api/chat` with every sampler under `options`. Its stream is NDJSON, not SSE: one
JSON object per line, text in `message.content`, and a last object with `done: true` and `done_reason`.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any

import httpx

from neuralrp.errors import BackendBadResponse
from neuralrp.llm.types import ChatMessage, Completion, SamplingParams, StreamChunk
from neuralrp.llm.wire import stream_object

CHAT_PATH = "/api/chat"
SHOW_PATH = "/api/show"
PS_PATH = "/api/ps"
DEFAULT_CONTEXT = 4096  # Ollama's own default window on small GPUs; used when nothing better is known

_NUM_CTX_RE = re.compile(r"^\s*num_ctx\s+(\d+)\s*$", re.MULTILINE)


def options(params: SamplingParams, num_ctx: int | None) -> dict[str, Any]:
    """SamplingParams as Ollama `options` (num_predict is max_tokens)."""
    opts: dict[str, Any] = {} if num_ctx is None else {"num_ctx": num_ctx}
    opts.update(num_predict=params.max_tokens, temperature=params.temperature, top_p=params.top_p,
                top_k=params.top_k, min_p=params.min_p, repeat_penalty=params.repetition_penalty)
    if params.stop:
        opts["stop"] = list(params.stop)
    return opts


def chat_payload(model: str, messages: list[ChatMessage], params: SamplingParams, *,
                 num_ctx: int | None, stream: bool) -> dict[str, Any]:
    """Body for POST /api/chat; Ollama continues a final assistant message by itself."""
    return {"model": model, "messages": [m.as_dict() for m in messages], "stream": stream,
            "options": options(params, num_ctx)}


def decode_line(line: str) -> StreamChunk | None:
    """One NDJSON line -> a chunk (finish_reason set on the `done` line); None when it carries nothing."""
    if not line.strip():
        return None
    data = stream_object(line)
    message = data.get("message")
    text = message.get("content") if isinstance(message, dict) else None
    finish = str(data.get("done_reason") or "stop") if data.get("done") else None
    if not text and finish is None:
        return None
    return StreamChunk(text=str(text or ""), finish_reason=finish)


async def decode_stream(lines: AsyncIterable[str]) -> AsyncIterator[StreamChunk]:
    """NDJSON lines -> chunks; a stream that ends before `done: true` is an error."""
    async for line in lines:
        chunk = decode_line(line)
        if chunk is None:
            continue
        yield chunk
        if chunk.finish_reason is not None:
            return
    raise BackendBadResponse("The LLM server's stream ended before the reply was finished")


def parse_completion(resp: httpx.Response) -> Completion:
    """A non-streamed /api/chat answer -> Completion, usage from the eval counts."""
    try:
        data = resp.json()
        text = data["message"]["content"]
    except (ValueError, KeyError, TypeError) as e:
        raise BackendBadResponse(f"The LLM server's reply could not be read: {resp.text[:200]!r}") from e
    usage = {ours: data[theirs] for ours, theirs in (("prompt_tokens", "prompt_eval_count"),
                                                     ("completion_tokens", "eval_count"))
             if isinstance(data.get(theirs), int)}
    finish = data.get("done_reason") or ("stop" if data.get("done") else None)
    return Completion(text=str(text or ""), finish_reason=finish, usage=usage)


def _positive(value: Any) -> int | None:
    """A positive int, or None."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _tagged(name: str) -> str:
    """A model name with its tag (Ollama reads a missing tag as `:latest`)."""
    return name if ":" in name else f"{name}:latest"


def loaded_context(ps: Any, model: str) -> int | None:
    """The window Ollama allocated for `model` per /api/ps; None when it is not loaded."""
    entries = ps.get("models") if isinstance(ps, dict) else None
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict) and _tagged(str(entry.get("name") or entry.get("model") or "")) == _tagged(model):
            return _positive(entry.get("context_length"))
    return None


def trained_context(show: Any) -> int | None:
    """The trained maximum from /api/show `model_info` (the key ending in `.context_length`)."""
    info = show.get("model_info") if isinstance(show, dict) else None
    if not isinstance(info, dict):
        return None
    return next((_positive(v) for k, v in info.items() if k.endswith(".context_length") and _positive(v)), None)


def modelfile_context(show: Any) -> int | None:
    """`num_ctx N` from the Modelfile parameters text of /api/show, if set."""
    text = show.get("parameters") if isinstance(show, dict) else None
    found = _NUM_CTX_RE.search(text) if isinstance(text, str) else None
    return _positive(int(found.group(1))) if found else None


def choose_context(*, loaded: int | None, trained: int | None, modelfile: int | None, wish: int) -> int:
    """The num_ctx NeuralRP sends on every /api/chat request (and reports as the context length).

    `wish` is `context.max_tokens`. A model already loaded with a window at least that big keeps it (no
    reload). Otherwise the window is the wish, capped by the Modelfile's `num_ctx` when it sets one, else
    by the model's trained maximum; a window already loaded above that cap (someone asked for it) is kept
    rather than shrunk, up to the wish.
    """
    if loaded is not None and loaded >= wish:
        return loaded
    cap = modelfile or trained
    chosen = min(cap, wish) if cap else wish
    return max(chosen, loaded) if loaded is not None else chosen
