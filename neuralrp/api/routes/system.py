"""System routes: status and health."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from neuralrp.api.deps import DatabaseDep, SettingsDep
from neuralrp.ops.status import probe_backends, system_status

router = APIRouter(prefix="/api/system", tags=["system"])


@router.get("/status")
async def status(request: Request, db: DatabaseDep, settings: SettingsDep) -> dict[str, Any]:
    """Version, schema version, DB and disk stats, backend reachability."""
    runtime = request.app.state.llm_runtime
    probes = await probe_backends(
        settings,
        llm_transport=request.app.state.llm_transport,
        image_transport=request.app.state.image_transport,
        llm_url=runtime.local.base_url if runtime.local is not None else None,
    )
    return await system_status(db, settings, probes, runtime.describe())


@router.get("/health")
def health() -> dict[str, str]:
    """Liveness: answers as soon as the server is up."""
    return {"status": "ok"}
