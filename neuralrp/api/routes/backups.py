"""Backup routes: list, create, delete and restore backups of the database."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from neuralrp.api.bodies import OffLoopJSONRoute
from neuralrp.api.deps import DatabaseDep, ServicesDep, SettingsDep
from neuralrp.clock import utcnow
from neuralrp.ops.backup import create_backup, delete_backup, list_backups
from neuralrp.ops.scheduler import backups_dir
from neuralrp.services import restore_from_backup

router = APIRouter(prefix="/api/backups", tags=["backups"], route_class=OffLoopJSONRoute)


class CreateBackup(BaseModel):
    """Optional label for a manual backup."""

    label: str = Field("", max_length=40, pattern=r"^[a-z0-9_-]*$")


@router.get("")
def get_backups(settings: SettingsDep) -> dict[str, Any]:
    """Backups, newest first, with the folder they live in."""
    folder = backups_dir(settings)
    items = [b.as_dict() for b in list_backups(folder)]
    return {"dir": str(folder), "backups": items, "total_bytes": sum(b["size_bytes"] for b in items)}


@router.post("", status_code=201)
async def post_backup(db: DatabaseDep, settings: SettingsDep, body: CreateBackup | None = None) -> dict[str, Any]:
    """Make a verified backup now."""
    label = body.label if body else "manual"
    info = await asyncio.to_thread(create_backup, db, backups_dir(settings), now=utcnow(), label=label or "manual")
    return info.as_dict()


@router.delete("/{name}", status_code=204)
def remove_backup(name: str, settings: SettingsDep) -> None:
    """Delete one backup."""
    delete_backup(backups_dir(settings), name)


@router.post("/{name}/restore")
async def restore(name: str, services: ServicesDep) -> dict[str, Any]:
    """Verify the backup (a bad one stops nothing), then restore it while writes are refused with 409; what was
    there before is kept as a pre-restore backup, with the characters/ and worlds/ files."""
    report = await restore_from_backup(services, name)
    return report.as_dict()
