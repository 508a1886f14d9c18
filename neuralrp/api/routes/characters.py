"""Character routes (minimal: create from card JSON, list, get)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from neuralrp.api.deps import ConnDep
from neuralrp.db.connection import transaction
from neuralrp.library.characters import get_character, insert_character, list_characters

router = APIRouter(prefix="/api/characters", tags=["characters"])


@router.get("")
def list_all(conn: ConnDep) -> list[dict[str, Any]]:
    """All global characters."""
    return [c.public() for c in list_characters(conn)]


@router.post("", status_code=201)
def create(card: dict[str, Any], conn: ConnDep) -> dict[str, Any]:
    """Store a character from a card JSON object (V1 flat or V2/V3 with `data`)."""
    with transaction(conn):
        cid = insert_character(conn, card)
    return get_character(conn, cid).public()


@router.get("/{character_id}")
def get_one(character_id: int, conn: ConnDep) -> dict[str, Any]:
    """One character."""
    return get_character(conn, character_id).public()
