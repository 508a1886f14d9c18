"""System routes: status and health."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from neuralrp.api.bodies import OffLoopJSONRoute
from neuralrp.api.deps import ServicesDep
from neuralrp.errors import NotFound
from neuralrp.ops.status import probe_backends, system_status

router = APIRouter(prefix="/api/system", tags=["system"], route_class=OffLoopJSONRoute)


@router.get("/status")
async def status(services: ServicesDep) -> dict[str, Any]:
    """Version, schema version, DB and disk stats, backend reachability."""
    runtime = services.llm_runtime
    probes = await probe_backends(
        services.settings,
        llm_transport=services.llm_transport,
        image_transport=services.image_transport,
        llm_url=runtime.local.base_url if runtime.local is not None else None,
        llm_cache=runtime.status_cache,
        llm_busy=services.llm_scheduler.busy,
        image_cache=services.images.status_cache,
    )
    return await system_status(services.db, services.settings, probes, runtime.describe())


@router.get("/health")
def health() -> dict[str, str]:
    """Liveness: answers as soon as the server is up."""
    return {"status": "ok"}


@router.get("/llm-tasks")
async def llm_tasks(services: ServicesDep) -> dict[str, Any]:
    """Background LLM calls (card generation, snapshot keywords, summaries, capsules) with tokens so far."""
    scheduler = services.llm_scheduler
    return {"tasks": scheduler.list_tasks(), "replies": scheduler.replies_running + scheduler.replies_waiting,
            "slots": scheduler.slots}


@router.post("/llm-tasks/{task_id}/cancel")
async def cancel_llm_task(task_id: int, services: ServicesDep) -> dict[str, Any]:
    """Cancel one background LLM call; 404 when it has already ended."""
    if not services.llm_scheduler.cancel(task_id):
        raise NotFound(f"LLM task {task_id} is not running (it may have finished)")
    return {"cancelled": task_id}
