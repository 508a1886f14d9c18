"""Character rows: the stored card JSON plus the columns NeuralRP queries."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from neuralrp.clock import iso
from neuralrp.errors import InvalidInput, NotFound

V2_TEXT_FIELDS = (
    "description", "personality", "scenario", "first_mes", "mes_example", "creator_notes",
    "system_prompt", "post_history_instructions", "creator", "character_version",
)


@dataclass
class Character:
    """A character (or a chat-scoped NPC when scope_chat_id is set)."""

    id: int
    uid: str
    name: str
    card: dict[str, Any]
    scope_chat_id: int | None = None
    gender: str = ""
    visual_tags: str = ""
    talkativeness: float = 0.5
    capsule: str | None = None
    updated_at: str = ""
    tags: list[str] = field(default_factory=list)

    @property
    def data(self) -> dict[str, Any]:
        """The card's `data` object (V2/V3 shape)."""
        data = self.card.get("data")
        return data if isinstance(data, dict) else {}

    def field(self, name: str) -> str:
        """A text field of the card, '' when absent."""
        value = self.data.get(name)
        return value if isinstance(value, str) else ""

    def public(self) -> dict[str, Any]:
        """JSON form for the API."""
        return {
            "id": self.id, "uid": self.uid, "name": self.name, "scope_chat_id": self.scope_chat_id,
            "gender": self.gender, "visual_tags": self.visual_tags, "talkativeness": self.talkativeness,
            "tags": self.tags, "card": self.card, "updated_at": self.updated_at,
        }


def as_v2(card: Any) -> dict[str, Any]:
    """Accept a V2/V3 card object or a flat V1 one; return a V2/V3-shaped card (unknown keys kept)."""
    if not isinstance(card, dict):
        raise InvalidInput(f"a character card must be a JSON object, got {type(card).__name__}")
    if isinstance(card.get("data"), dict):
        out = dict(card)
    else:
        out = {"spec": "chara_card_v2", "spec_version": "2.0", "data": dict(card)}
    data = out["data"]
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput("the card has no name: field 'data.name' must be a non-empty string")
    for key in V2_TEXT_FIELDS:
        if key in data and not isinstance(data[key], str):
            raise InvalidInput(f"field 'data.{key}' must be a string, got {type(data[key]).__name__}")
    tags = data.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise InvalidInput("field 'data.tags' must be a list of strings")
    return out


def _row_to_character(row: dict[str, Any]) -> Character:
    return Character(
        id=row["id"], uid=row["uid"], name=row["name"], card=json.loads(row["card_json"]),
        scope_chat_id=row["scope_chat_id"], gender=row["gender"], visual_tags=row["visual_tags"],
        talkativeness=row["talkativeness"], capsule=row["capsule"], updated_at=row["updated_at"],
    )


def insert_character(conn: Any, card: dict[str, Any], *, scope_chat_id: int | None = None,
                     gender: str = "", visual_tags: str = "") -> int:
    """Store a validated card; returns the new id. Call inside a transaction."""
    card = as_v2(card)
    now = iso()
    data = card["data"]
    talk = data.get("extensions", {}).get("talkativeness", 0.5) if isinstance(data.get("extensions"), dict) else 0.5
    try:
        talkativeness = float(talk)
    except (TypeError, ValueError):
        talkativeness = 0.5
    cur = conn.execute(
        "INSERT INTO characters (uid, name, card_json, spec, scope_chat_id, gender, visual_tags, talkativeness,"
        " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (uuid.uuid4().hex, data["name"].strip(), json.dumps(card, ensure_ascii=False),
         str(card.get("spec", "chara_card_v2")), scope_chat_id, gender, visual_tags, talkativeness, now, now),
    )
    return int(cur.lastrowid)


def get_character(conn: Any, character_id: int) -> Character:
    """One character by id."""
    row = conn.execute("SELECT * FROM characters WHERE id = ?", (character_id,)).fetchone()
    if row is None:
        raise NotFound(f"character {character_id} does not exist")
    return _row_to_character(row)


def list_characters(conn: Any, *, include_npcs: bool = False) -> list[Character]:
    """Characters by name; NPCs only when asked."""
    where = "" if include_npcs else "WHERE scope_chat_id IS NULL"
    rows = conn.execute(f"SELECT * FROM characters {where} ORDER BY name COLLATE NOCASE, id")
    return [_row_to_character(r) for r in rows]
