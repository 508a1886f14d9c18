"""Card generation routes: drafts from a description, a chat or a setting; nothing is stored except by save."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request

from neuralrp.api.bodies import OffLoopJSONRoute
from neuralrp.api.deps import get_services
from neuralrp.cardgen import service
from neuralrp.errors import InvalidInput
from neuralrp.llm.types import LLMBackend

router = APIRouter(tags=["cardgen"], route_class=OffLoopJSONRoute)


def _backend(request: Request, label: str = "Card generation") -> LLMBackend | None:
    """The LLM as a scheduled background call: it waits for replies and shows in the UI's task list."""
    services = get_services(request)
    return services.llm_scheduler.background(services.llm_runtime.backend, "cardgen", label)


def _text(body: dict[str, Any], key: str, *, required: bool = True) -> str | None:
    value = body.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise InvalidInput(f"'{key}' must be {'a non-empty' if required else 'a'} string")
    return value


def _int(body: dict[str, Any], key: str, default: int | None = None) -> int:
    value = body.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidInput(f"'{key}' must be a whole number")
    return value


def _card(body: dict[str, Any]) -> dict[str, Any]:
    card = body.get("card")
    if not isinstance(card, dict):
        raise InvalidInput("send {\"card\": {...}} with the whole card")
    return card


@router.post("/api/cardgen/character")
async def generate_character(body: dict[str, Any], request: Request) -> dict[str, Any]:
    """A draft SillyTavern V2 card (PList description/personality) from a plain description; not stored."""
    card = await service.generate_character(_backend(request), _text(body, "description") or "",
                                            _text(body, "name", required=False))
    return {"card": card}


@router.post("/api/cardgen/field")
async def regenerate_field(body: dict[str, Any], request: Request) -> dict[str, Any]:
    """The card with one field written anew; not stored."""
    return await service.regenerate_field(_backend(request, "Card field"), _card(body), _text(body, "field") or "")


@router.post("/api/cardgen/from-chat")
async def generate_from_chat(body: dict[str, Any], request: Request) -> dict[str, Any]:
    """A draft card for a cast member built from what they said and did in the chat; not stored."""
    chat_id, character_id = _int(body, "chat_id"), _int(body, "character_id")
    ctx = await get_services(request).db.run(service.chat_context, chat_id, character_id)
    card = await service.generate_from_chat(_backend(request, "Card from chat"), ctx)
    return {"card": card, "character_id": character_id, "chat_id": chat_id,
            "npc": ctx.character.scope_chat_id is not None}


@router.post("/api/cardgen/from-chat/save")
async def save_from_chat(body: dict[str, Any], request: Request) -> dict[str, Any]:
    """Store the edited draft: an NPC is updated and promoted to the library, a library character updated."""
    chat_id, character_id = _int(body, "chat_id"), _int(body, "character_id")
    character = await asyncio.to_thread(service.save_from_chat, get_services(request).library, chat_id,
                                        character_id, _card(body))
    return character.public()


@router.post("/api/cardgen/world")
async def generate_world(body: dict[str, Any], request: Request) -> dict[str, Any]:
    """Draft lore entries [{keys, content, canon_law}] from a description of a setting; not stored."""
    draft = await service.generate_world(_backend(request, "World generation"), _text(body, "description") or "",
                                         _text(body, "name", required=False), _int(body, "count", 8))
    draft["name_taken"] = await get_services(request).db.run(service.world_name_taken, draft["name"])
    return draft
