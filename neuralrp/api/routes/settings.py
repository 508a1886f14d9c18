"""Settings editable in the UI, and what the LLM server reports about itself."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from neuralrp.api.bodies import OffLoopJSONRoute
from neuralrp.api.deps import ServicesDep
from neuralrp.context.text import DEFAULT_SYSTEM_PROMPT

router = APIRouter(tags=["settings"], route_class=OffLoopJSONRoute)


@router.get("/api/settings")
def get_settings(services: ServicesDep) -> dict[str, Any]:
    """Editable settings in effect, secrets masked, which ones the UI overrides, the built-in model in use, and
    the built-in system prompt an empty chats.system_prompt stands for."""
    return {**services.live_settings.document(), "built_in": services.llm_runtime.describe(),
            "default_system_prompt": DEFAULT_SYSTEM_PROMPT}


@router.put("/api/settings")
def put_settings(patch: dict[str, Any], services: ServicesDep) -> dict[str, Any]:
    """Change some settings; a bad value is refused with the key named and nothing stored."""
    return services.apply_settings(patch)


@router.delete("/api/settings/{section}/{key}")
def reset_setting(section: str, key: str, services: ServicesDep) -> dict[str, Any]:
    """Forget the UI's value for one key (config.yaml's applies again)."""
    return services.reset_setting(section, key)


@router.get("/api/llm/info")
async def llm_info(services: ServicesDep) -> dict[str, Any]:
    """Ask the LLM server what it is (kind, model, context length)."""
    runtime = services.llm_runtime
    if runtime.backend is None:
        return {"configured": False, "built_in": runtime.describe(),
                "detail": "No LLM server is configured: set llm.base_url or start with --model PATH.gguf"}
    info = await runtime.backend.info(refresh=True)
    return {"configured": True, "kind": info.kind, "model": info.model, "context_length": info.context_length,
            "can_tokenize": info.can_tokenize, "built_in": runtime.describe()}
