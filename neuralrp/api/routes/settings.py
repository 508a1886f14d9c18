"""Settings editable in the UI, and what the LLM server reports about itself."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from neuralrp.ops.ui_settings import LiveSettings

router = APIRouter(tags=["settings"])
BACKEND_SECTIONS = {"llm", "context"}  # the LLM client is rebuilt when these change (context: Ollama's num_ctx)


def _live(request: Request) -> LiveSettings:
    return request.app.state.live_settings  # type: ignore[no-any-return]


@router.get("/api/settings")
def get_settings(request: Request) -> dict[str, Any]:
    """Editable settings in effect, secrets masked, and which ones the UI overrides."""
    return _live(request).document()


@router.put("/api/settings")
def put_settings(patch: dict[str, Any], request: Request) -> dict[str, Any]:
    """Change some settings; a bad value is refused with the key named and nothing stored."""
    live = _live(request)
    changed = live.update(patch)
    if changed & BACKEND_SECTIONS:
        request.app.state.llm_runtime.reconfigure(live.current, request.app.state.llm_transport)
    return live.document()


@router.delete("/api/settings/{section}/{key}")
def reset_setting(section: str, key: str, request: Request) -> dict[str, Any]:
    """Forget the UI's value for one key (config.yaml's applies again)."""
    live = _live(request)
    live.reset(section, key)
    if section in BACKEND_SECTIONS:
        request.app.state.llm_runtime.reconfigure(live.current, request.app.state.llm_transport)
    return live.document()


@router.get("/api/llm/info")
async def llm_info(request: Request) -> dict[str, Any]:
    """Ask the LLM server what it is (kind, model, context length)."""
    runtime = request.app.state.llm_runtime
    if runtime.backend is None:
        return {"configured": False, "built_in": runtime.describe(),
                "detail": "No LLM server is configured: set llm.base_url or start with --model PATH.gguf"}
    info = await runtime.backend.info(refresh=True)
    return {"configured": True, "kind": info.kind, "model": info.model, "context_length": info.context_length,
            "can_tokenize": info.can_tokenize, "built_in": runtime.describe()}
