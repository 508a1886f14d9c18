"""NPC routes: create in a chat, edit, delete, promote to the library."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel

from neuralrp.api.bodies import OffLoopJSONRoute
from neuralrp.api.deps import ConnDep, get_services
from neuralrp.chats import npcs

router = APIRouter(tags=["npcs"], route_class=OffLoopJSONRoute)


class NpcFields(BaseModel):
    """What an NPC is made of (all optional on edit)."""

    name: str | None = None
    gender: str | None = None
    description: str | None = None
    personality: str | None = None
    visual_tags: str | None = None


@router.post("/api/chats/{chat_id}/npcs", status_code=201)
def create_npc(chat_id: int, body: NpcFields, conn: ConnDep) -> dict[str, Any]:
    """Create an NPC in this chat's cast."""
    return npcs.create_npc(conn, chat_id, body.model_dump(exclude_none=True)).public()


@router.patch("/api/npcs/{npc_id}")
def update_npc(npc_id: int, body: NpcFields, conn: ConnDep) -> dict[str, Any]:
    """Edit an NPC."""
    return npcs.update_npc(conn, npc_id, body.model_dump(exclude_none=True)).public()


@router.delete("/api/npcs/{npc_id}")
def delete_npc(npc_id: int, conn: ConnDep) -> dict[str, bool]:
    """Delete an NPC (kept in change history)."""
    npcs.delete_npc(conn, npc_id)
    return {"deleted": True}


@router.post("/api/npcs/{npc_id}/promote")
def promote_npc(npc_id: int, request: Request) -> dict[str, Any]:
    """Turn an NPC into a global character with a card in the library."""
    return npcs.promote_npc(get_services(request).library, npc_id).public()
