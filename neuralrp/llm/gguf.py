"""Continue on the built-in llama-cpp-python server: a raw prompt rendered the way its chat route renders chats.

llama-cpp-python's chat route always closes the last message and opens a fresh assistant turn (0.3.36,
llama_cpp/llama_chat_format.py: no `continue_final_message`, no `add_generation_prompt`). So Continue goes to
`/v1/completions` with a prompt rendered by the very formatter the server uses for the model, cut open inside
the partial reply. NeuralRP started that server with the GGUF (and its `--chat_format`), so it knows both.

Which formatter the server uses (llama_cpp/llama.py, `Llama.__init__`): the `--chat_format` given; else a
template in the GGUF that equals a known one gets that named format, any other template the Jinja formatter,
and a GGUF without a template the "llama-2" format.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from neuralrp.errors import BackendBadResponse
from neuralrp.llm.types import ChatMessage

log = logging.getLogger(__name__)

_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9
_WANTED = ("tokenizer.chat_template", "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
           "tokenizer.ggml.tokens", "tokenizer.ggml.add_bos_token", "tokenizer.ggml.model")
_SENTINEL = "\ue000NEURALRP-CONTINUE\ue000"  # a private-use marker no template writes on its own
_FALLBACK_FORMAT = "llama-2"


@dataclass(frozen=True)
class LocalModel:
    """The GGUF the built-in server runs and the `--chat_format` it was started with (None: the GGUF's own)."""

    path: Path
    chat_format: str | None = None


@dataclass(frozen=True)
class ChatFormat:
    """What rendering needs: a named llama-cpp-python format or a Jinja template, and the model's BOS rule."""

    name: str | None
    template: str | None = None
    bos_token: str = ""
    eos_token: str = ""
    add_bos: bool = False


def _read(f: BinaryIO, fmt: str) -> Any:
    size = struct.calcsize(fmt)
    data = f.read(size)
    if len(data) != size:
        raise ValueError("the file ends inside its metadata")
    return struct.unpack(fmt, data)[0]


def _string(f: BinaryIO) -> str:
    length = _read(f, "<Q")
    return f.read(length).decode("utf-8", "replace")


def _value(f: BinaryIO, kind: int, keep: bool) -> Any:
    """One metadata value (arrays are read element by element; skipped ones are not kept)."""
    if kind in _SCALARS:
        return _read(f, _SCALARS[kind])
    if kind == _STRING:
        return _string(f)
    if kind != _ARRAY:
        raise ValueError(f"unknown metadata value type {kind}")
    elem, count = _read(f, "<I"), _read(f, "<Q")
    if elem in _SCALARS and not keep:
        f.seek(struct.calcsize(_SCALARS[elem]) * count, 1)
        return None
    items = [_value(f, elem, keep) for _ in range(count)]
    return items if keep else None


def read_metadata(path: Path, keep: Callable[[str], bool] | None = None) -> dict[str, Any]:
    """The chat template, BOS/EOS facts and token texts from a GGUF file's header (nothing else is kept), or the
    keys `keep` says."""
    wanted = keep or _WANTED.__contains__
    found: dict[str, Any] = {}
    with Path(path).open("rb") as f:
        if f.read(4) != b"GGUF":
            raise ValueError(f"{path} is not a GGUF file")
        _read(f, "<I")  # format version
        _read(f, "<Q")  # tensor count
        for _ in range(_read(f, "<Q")):
            key, kind = _string(f), _read(f, "<I")
            value = _value(f, kind, wanted(key))
            if wanted(key):
                found[key] = value
    return found


def kv_bytes_per_token(path: Path) -> int | None:
    """Bytes of KV cache one token takes at llama.cpp's default f16 cache type, from the GGUF header (None when
    the header does not say)."""
    meta = read_metadata(path, lambda key: not key.startswith("tokenizer."))
    arch = meta.get("general.architecture")
    layers, heads = meta.get(f"{arch}.block_count"), meta.get(f"{arch}.attention.head_count")
    width = meta.get(f"{arch}.embedding_length")
    if not (isinstance(layers, int) and isinstance(width, int) and isinstance(heads, int | list) and heads):
        return None
    head_dim = width // (max(heads) if isinstance(heads, list) else heads)
    kv = meta.get(f"{arch}.attention.head_count_kv", heads)
    kv_total = sum(kv) if isinstance(kv, list) else int(kv) * layers
    key_len = int(meta.get(f"{arch}.attention.key_length", head_dim))
    value_len = int(meta.get(f"{arch}.attention.value_length", key_len))
    return kv_total * (key_len + value_len) * 2


PROMPT_CACHE_STATES = 4  # the reply's prompt plus the background prompts run between two replies
PROMPT_CACHE_FALLBACK_MB = 512
PROMPT_CACHE_MAX_MB = 2048


def prompt_cache_mb(path: Path, n_ctx: int) -> int:
    """A RAM prompt cache for the built-in server that holds PROMPT_CACHE_STATES full contexts of this model."""
    try:
        per_token = kv_bytes_per_token(path)
    except (OSError, ValueError) as e:
        log.warning("could not read %s to size its prompt cache (%s); %d MiB it is", path, e,
                    PROMPT_CACHE_FALLBACK_MB)
        per_token = None
    if per_token is None:
        return PROMPT_CACHE_FALLBACK_MB
    return max(64, min(PROMPT_CACHE_MAX_MB, PROMPT_CACHE_STATES * n_ctx * per_token // 2**20 + 1))


def chat_format(model: LocalModel) -> ChatFormat:
    """How the built-in server formats chats for this model (reads the GGUF header; run it off the event loop)."""
    try:
        meta = read_metadata(model.path)
    except (OSError, ValueError) as e:
        raise BackendBadResponse(f"The built-in model's file {model.path} cannot be read for Continue ({e})") from e
    tokens = meta.get("tokenizer.ggml.tokens") or []

    def text(key: str) -> str:
        index = meta.get(key)
        return str(tokens[index]) if isinstance(index, int) and 0 <= index < len(tokens) else ""

    add_bos = meta.get("tokenizer.ggml.add_bos_token")
    if not isinstance(add_bos, bool):  # llama.cpp's default: SentencePiece vocabularies add BOS, BPE ones do not
        add_bos = meta.get("tokenizer.ggml.model") == "llama"
    source = meta.get("tokenizer.chat_template")
    name = model.chat_format or (_known_format(source) if isinstance(source, str) and source else _FALLBACK_FORMAT)
    return ChatFormat(name=name, template=source if name is None else None, bos_token=text(
        "tokenizer.ggml.bos_token_id"), eos_token=text("tokenizer.ggml.eos_token_id"), add_bos=add_bos)


def _known_format(source: str) -> str | None:
    from llama_cpp import llama_chat_format as formats  # comes with the [local] extra that runs the server

    named = formats.guess_chat_format_from_gguf_metadata({"tokenizer.chat_template": source})
    return str(named) if named else None


def _formatter(fmt: ChatFormat) -> Callable[..., Any]:
    """llama-cpp-python's own formatter for this format (the server's code, imported lazily)."""
    from llama_cpp import llama_chat_format as formats

    if fmt.name is None:
        return formats.Jinja2ChatFormatter(template=fmt.template or "", eos_token=fmt.eos_token,
                                           bos_token=fmt.bos_token)
    function = getattr(formats, "format_" + {"llama-2": "llama2", "llama-3": "llama3"}.get(
        fmt.name, fmt.name.replace("-", "_")), None)
    if function is None:
        raise BackendBadResponse(f"Continue does not know the built-in server's chat format {fmt.name!r}")
    return function


@dataclass(frozen=True)
class Rendered:
    """A formatter's prompt, whether it wrote the BOS text itself, and the stop strings the chat route adds."""

    prompt: str
    wrote_bos: bool
    stop: tuple[str, ...]


def render(fmt: ChatFormat, messages: list[ChatMessage]) -> Rendered:
    """What llama-cpp-python's chat route makes of these messages (with its fresh assistant turn)."""
    try:
        result = _formatter(fmt)(messages=[m.as_dict() for m in messages])
    except BackendBadResponse:
        raise
    except Exception as e:  # a template may raise anything (jinja2 errors, its own raise_exception)
        raise BackendBadResponse(f"The model's chat template cannot render this chat for Continue ({e})") from e
    stop = result.stop if isinstance(result.stop, list) else [result.stop] if result.stop else []
    return Rendered(str(result.prompt), bool(result.added_special), tuple(str(s) for s in stop))


def continuation_prompt(fmt: ChatFormat, messages: list[ChatMessage]) -> Rendered:
    """A raw prompt for /v1/completions that ends inside the last (assistant) message, with the route's stops.

    The last message is rendered with a marker after its text and the prompt is cut there. The chat route
    adds the BOS token unless the formatter wrote it itself; /v1/completions adds it whenever the model says
    so, so a BOS text the formatter wrote first is dropped when the server will add the token anyway.
    """
    if not messages or messages[-1].role != "assistant":
        raise ValueError("Continue needs the reply being continued as the last message")
    marked = [*messages[:-1], ChatMessage("assistant", messages[-1].content + _SENTINEL)]
    rendered = render(fmt, marked)
    cut = rendered.prompt.find(_SENTINEL)
    if cut < 0:
        raise BackendBadResponse("The model's chat template dropped the reply being continued; Continue cannot "
                                 "work with it")
    prompt = rendered.prompt[:cut]
    if rendered.wrote_bos and fmt.add_bos and fmt.bos_token and prompt.startswith(fmt.bos_token):
        prompt = prompt[len(fmt.bos_token):]
    return Rendered(prompt, rendered.wrote_bos, rendered.stop)
