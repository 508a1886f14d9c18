"""Visual canon routes: suggest Danbooru tags for a character, save its gender and visual tags."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request

from neuralrp.api.bodies import OffLoopJSONRoute
from neuralrp.api.deps import ConnDep, get_services
from neuralrp.errors import InvalidInput
from neuralrp.images.danbooru_canon import save_visual, suggest_for
from neuralrp.library import characters as chars
from neuralrp.library import worlds

router = APIRouter(tags=["visual"], route_class=OffLoopJSONRoute)


def _object(body: Any) -> dict[str, Any]:
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise InvalidInput("send a JSON object")
    return body


@router.put("/api/characters/{cid}/visual")
def put_visual(cid: int, request: Request, conn: ConnDep, body: Annotated[Any, Body()] = None) -> dict[str, Any]:
    """Save gender and visual tags (columns + card extensions; history kept, card file rewritten)."""
    save_visual(get_services(request).library, cid, _object(body))
    out = chars.get_character(conn, cid).public()
    out["world_id"] = worlds.linked_world_id(conn, cid)
    return out


@router.post("/api/characters/{cid}/visual-canon")
def visual_canon(cid: int, request: Request, conn: ConnDep, body: Annotated[Any, Body()] = None) -> dict[str, Any]:
    """Suggest Danbooru tags from the card's description and gender (nothing is saved)."""
    character = chars.get_character(conn, cid)
    result = suggest_for(character, _object(body), embedder=get_services(request).embedder,
                         data_dir=get_services(request).settings.data_dir)
    return result.public()
