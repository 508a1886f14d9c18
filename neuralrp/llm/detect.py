"""Which LLM server this is, which model to use and how big its context window is, each server asked its own way.

Detection order matters: TabbyAPI impersonates KoboldCpp's /api/extra/version and llama.cpp's /props, and
KoboldCpp serves llama.cpp's /props, so the more specific probes run first. Every probe answers None when the
server said no (4xx/5xx); the client notes 401/403/503 answers and then asks again next time instead of
keeping a guess (TabbyAPI answers 401 without its key and 503 with no model loaded).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from neuralrp.llm import ollama
from neuralrp.llm.types import BackendKind

Probe = Callable[..., Awaitable[Any]]  # probe(path, body=None) -> JSON (or text), None on an error status

# TabbyAPI (endpoints/core/router.py): this route has no API-key check and names the software.
TABBY_SERVICEINFO = "/.well-known/serviceinfo"
# llama-cpp-python (llama_cpp/server/app.py): FastAPI's schema carries the app title; /v1/models cards say
# owned_by "me". Neither needs a key, and the server has no /props, /health or /tokenize.
LLAMA_PYTHON_TITLE = "llama.cpp Python API"


async def detect_kind(probe: Probe) -> tuple[BackendKind, str]:
    """The server kind and its version ("" when it gives none)."""
    info = await probe(TABBY_SERVICEINFO)
    software = info.get("software") if isinstance(info, dict) else None
    if isinstance(software, dict) and software.get("name") == "TabbyAPI":
        return "tabbyapi", ""
    model = await probe("/v1/model")
    if isinstance(model, dict) and isinstance(model.get("parameters"), dict):
        return "tabbyapi", ""
    version = await probe("/api/extra/version")
    if isinstance(version, dict) and version.get("result") == "KoboldCpp":
        return "koboldcpp", str(version.get("version") or "")
    props = await probe("/props")
    if isinstance(props, dict) and "default_generation_settings" in props:
        return "llamacpp", str(props.get("build_info") or "")
    root = await probe("/")
    if isinstance(root, str) and "Ollama is running" in root:
        return "ollama", ""
    return ("llamacpp_python", "") if await _is_llama_python(probe) else ("openai", "")


async def _is_llama_python(probe: Probe) -> bool:
    schema = await probe("/openapi.json")
    schema_info = schema.get("info") if isinstance(schema, dict) else None
    if isinstance(schema_info, dict) and LLAMA_PYTHON_TITLE in str(schema_info.get("title") or ""):
        return True
    models = await probe("/v1/models")
    data = models.get("data") if isinstance(models, dict) else None
    return bool(isinstance(data, list) and data and isinstance(data[0], dict) and data[0].get("owned_by") == "me"
                and "permissions" in data[0])


async def model_name(kind: BackendKind, probe: Probe) -> str:
    """The model to name in requests: Ollama's best chat model, elsewhere the first listed one."""
    if kind == "ollama":
        return await ollama_chat_model(probe)
    models = await probe("/v1/models")
    data = models.get("data") if isinstance(models, dict) else None
    if isinstance(data, list) and data and isinstance(data[0], dict):
        return str(data[0].get("id", ""))
    return ""


async def ollama_chat_model(probe: Probe) -> str:
    """A model that can chat: a loaded one first, else the most recently modified; never an embedding model.

    /v1/models lists the same models as /api/tags, most recently modified first (server/model_list_cache.go),
    so its first entry is often an embedding model pulled last. Capabilities come from the /api/tags entry
    (newer Ollama) or /api/show (from 0.6); older servers are judged by family and name.
    """
    listed = ollama.listed_models(await probe(ollama.TAGS_PATH))
    loaded = {ollama.entry_name(m) for m in ollama.listed_models(await probe(ollama.PS_PATH))}
    ordered = [m for m in listed if ollama.entry_name(m) in loaded] + [
        m for m in listed if ollama.entry_name(m) not in loaded]
    for entry in ordered:
        name = ollama.entry_name(entry)
        caps = ollama.capabilities(entry)
        if caps is None:
            caps = ollama.capabilities(await probe(ollama.SHOW_PATH, {"model": name}))
        if ollama.can_chat(caps, entry):
            return name
    return ""


async def context_length(kind: BackendKind, model: str, probe: Probe, *, wish: int) -> int | None:
    """The context window the server reports (Ollama: the num_ctx NeuralRP will send); None when unknown."""
    if kind == "koboldcpp":
        doc = await probe("/api/extra/true_max_context_length")
        return positive(doc.get("value")) if isinstance(doc, dict) else None
    if kind == "tabbyapi":
        doc = await probe("/v1/model")
        params = doc.get("parameters") if isinstance(doc, dict) else None
        return positive(params.get("max_seq_len")) if isinstance(params, dict) else None
    if kind == "llamacpp":
        doc = await probe("/props")
        gen = doc.get("default_generation_settings") if isinstance(doc, dict) else None
        return positive(gen.get("n_ctx")) if isinstance(gen, dict) else None
    if kind == "ollama" and model:
        loaded = ollama.loaded_context(await probe(ollama.PS_PATH), model)
        show = await probe(ollama.SHOW_PATH, {"model": model})
        return ollama.choose_context(loaded=loaded, trained=ollama.trained_context(show),
                                     modelfile=ollama.modelfile_context(show), wish=wish)
    return None


async def slot_count(kind: BackendKind, probe: Probe) -> int | None:
    """How many parallel slots the server has (llama.cpp: /props `total_slots`); None when it does not say."""
    if kind != "llamacpp":
        return None
    doc = await probe("/props")
    return positive(doc.get("total_slots")) if isinstance(doc, dict) else None


def positive(value: Any) -> int | None:
    """value as a positive int, or None."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def version_at_least(version: str, wanted: tuple[int, ...]) -> bool:
    """Whether a dotted version string ("1.102.2") is at least `wanted`; False when it cannot be read."""
    parts: list[int] = []
    for piece in version.split("."):
        digits = "".join(ch for ch in piece if ch.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    return bool(parts) and tuple(parts) >= wanted
