"""Ollama's native API: request bodies, NDJSON stream decoding, the context window rule and model choice.

Ollama's OpenAI routes (/v1) cannot set `num_ctx`, ignore top_k, min_p and repeat_penalty, and /v1/completions
has no `raw` (a rendered prompt would be wrapped in the model's template again). So chat replies go to
`POST /api/chat` and completion mode to `POST /api/generate` with `raw: true`, every sampler under `options`.
The stream is NDJSON, not SSE: one JSON object per line, text in `message.content` (/api/generate: `response`),
a thinking model's reasoning in `message.thinking` (`thinking`), and a last object with `done: true`.

Thinking (Ollama server/routes.go, ChatHandler/GenerateHandler): a request without `think` to a model with the
"thinking" capability thinks; its reasoning uses up `num_predict`. NeuralRP sends `think: false` unless
llm.thinking allows it; `false` is accepted by every model (only `true` is refused by models that cannot think).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any

import httpx

from neuralrp.errors import BackendBadResponse, StreamCutShort
from neuralrp.llm.types import ChatMessage, Completion, SamplingParams, StreamChunk
from neuralrp.llm.wire import bad_chunk, optional_text, stream_object

CHAT_PATH = "/api/chat"
GENERATE_PATH = "/api/generate"
TAGS_PATH = "/api/tags"
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
                 num_ctx: int | None, stream: bool, think: bool = False) -> dict[str, Any]:
    """Body for POST /api/chat; the library templates continue a final assistant message (a prefill).

    `think`: False sends `think: false`; True leaves it out, so a thinking model thinks (Ollama's default).
    """
    body: dict[str, Any] = {"model": model, "messages": [m.as_dict() for m in messages], "stream": stream,
                            "options": options(params, num_ctx)}
    if not think:
        body["think"] = False
    return body


def generate_payload(model: str, prompt: str, params: SamplingParams, *, num_ctx: int | None, stream: bool,
                     stops: tuple[str, ...], think: bool = False) -> dict[str, Any]:
    """Body for POST /api/generate with `raw: true`: the prompt NeuralRP rendered goes to the model as it is."""
    opts = options(params, num_ctx)
    all_stops = list(dict.fromkeys([*params.stop, *stops]))
    if all_stops:
        opts["stop"] = all_stops
    body: dict[str, Any] = {"model": model, "prompt": prompt, "raw": True, "stream": stream, "options": opts}
    if not think:
        body["think"] = False
    return body


def decode_line(line: str) -> StreamChunk | None:
    """One NDJSON line -> a chunk (finish_reason set on the `done` line); None when it carries nothing.

    A line of the wrong shape (message not an object, content not a string, done not a boolean) raises
    BackendBadResponse naming the field.
    """
    if not line.strip():
        return None
    data = stream_object(line)
    text, thinking = _texts(data)
    done = data.get("done")
    if done is not None and not isinstance(done, bool):
        raise bad_chunk("done", done, "true or false")
    finish = (optional_text(data, "done_reason", "done_reason") or "stop") if done else None
    if not text and not thinking and finish is None:
        return None
    return StreamChunk(text=text or "", finish_reason=finish, thinking=thinking or "")


def _texts(data: dict[str, Any]) -> tuple[str | None, str | None]:
    """Reply text and thinking of an /api/chat object (`message`) or an /api/generate one (`response`)."""
    if "response" in data or "message" not in data:
        return optional_text(data, "response", "response"), optional_text(data, "thinking", "thinking")
    message = data.get("message")
    if message is None:
        return None, None
    if not isinstance(message, dict):
        raise bad_chunk("message", message, "an object")
    return (optional_text(message, "content", "message.content"),
            optional_text(message, "thinking", "message.thinking"))


async def decode_stream(lines: AsyncIterable[str]) -> AsyncIterator[StreamChunk]:
    """NDJSON lines -> chunks; a stream that ends before `done: true` is an error."""
    async for line in lines:
        chunk = decode_line(line)
        if chunk is None:
            continue
        yield chunk
        if chunk.finish_reason is not None:
            return
    raise StreamCutShort()


def parse_completion(resp: httpx.Response) -> Completion:
    """A non-streamed /api/chat or /api/generate answer -> Completion, usage from the eval counts."""
    try:
        data = resp.json()
        text, thinking = _texts(data)
        if text is None and not data.get("done"):
            raise KeyError("message")
    except (ValueError, KeyError, TypeError, AttributeError, BackendBadResponse) as e:
        raise BackendBadResponse(f"The LLM server's reply could not be read: {resp.text[:200]!r}") from e
    usage = {ours: data[theirs] for ours, theirs in (("prompt_tokens", "prompt_eval_count"),
                                                     ("completion_tokens", "eval_count"))
             if isinstance(data.get(theirs), int)}
    finish = data.get("done_reason") or ("stop" if data.get("done") else None)
    return Completion(text=str(text or ""), finish_reason=finish, usage=usage, thinking=thinking or "")


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


# ---- which model to use when llm.model is empty

def listed_models(tags: Any) -> list[dict[str, Any]]:
    """The model entries of /api/tags, in Ollama's order (most recently modified first)."""
    models = tags.get("models") if isinstance(tags, dict) else None
    return [m for m in models if isinstance(m, dict) and (m.get("model") or m.get("name"))] if isinstance(
        models, list) else []


def entry_name(entry: dict[str, Any]) -> str:
    """The name to send as `model` for a /api/tags or /api/ps entry."""
    return str(entry.get("model") or entry.get("name") or "")


def capabilities(entry: Any) -> list[str] | None:
    """The `capabilities` list of a /api/tags entry or /api/show answer; None where the server lists none."""
    caps = entry.get("capabilities") if isinstance(entry, dict) else None
    return [str(c) for c in caps] if isinstance(caps, list) else None


def can_chat(caps: list[str] | None, entry: dict[str, Any]) -> bool:
    """Whether a model can write replies: "completion" and not "embedding" by its capabilities.

    Ollama before capabilities existed gives none; then embedding models are told by their BERT-family
    architecture or an "embed" name (nomic-embed-text, mxbai-embed-large, all-minilm, bge-m3).
    """
    if caps is not None:
        return "completion" in caps and "embedding" not in caps
    raw = entry.get("details")
    details: dict[str, Any] = raw if isinstance(raw, dict) else {}
    families = [str(details.get("family") or ""), *map(str, details.get("families") or [])]
    name = entry_name(entry).lower()
    return not any("bert" in f.lower() for f in families) and "embed" not in name and "minilm" not in name

