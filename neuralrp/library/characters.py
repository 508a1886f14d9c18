"""Character rows: the stored card JSON plus the columns NeuralRP queries."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from neuralrp.clock import iso
from neuralrp.db.connection import Connection
from neuralrp.db.rows import copy_row
from neuralrp.errors import NotFound
from neuralrp.library.cardfile import card_from_object
from neuralrp.library.tags import set_character_tags


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
    capsule_hash: str | None = None
    updated_at: str = ""
    tags: list[str] = field(default_factory=list)
    avatar_path: str | None = None
    source_file: str | None = None
    source_mtime: float | None = None
    created_at: str = ""

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
            "tags": self.data.get("tags") or [], "card": self.card, "updated_at": self.updated_at,
            "avatar_url": f"/api/characters/{self.id}/avatar", "source_file": self.source_file,
            "has_avatar": bool(self.avatar_path), "created_at": self.created_at,
        }


def as_v2(card: Any) -> dict[str, Any]:
    """Validate any supported card object (V1, V2, V3, Pygmalion); return the full card to store."""
    parsed = card_from_object(card)
    stored = parsed.to_card()
    stored["data"].pop("character_book", None)  # the lorebook lives in a linked world
    return stored


def _row_to_character(row: dict[str, Any]) -> Character:
    return Character(
        id=row["id"], uid=row["uid"], name=row["name"], card=json.loads(row["card_json"]),
        scope_chat_id=row["scope_chat_id"], gender=row["gender"], visual_tags=row["visual_tags"],
        talkativeness=row["talkativeness"], capsule=row["capsule"], capsule_hash=row["capsule_hash"],
        updated_at=row["updated_at"],
        avatar_path=row["avatar_path"], source_file=row["source_file"], source_mtime=row["source_mtime"],
        created_at=row["created_at"],
    )


def _talkativeness(data: dict[str, Any]) -> float:
    ext = data.get("extensions")
    try:
        value = float(ext.get("talkativeness", 0.5)) if isinstance(ext, dict) else 0.5
    except (TypeError, ValueError):
        value = 0.5
    return min(1.0, max(0.0, value))


def card_visual(data: dict[str, Any]) -> tuple[str, str]:
    """(gender, visual_tags) kept in the card's extensions.neuralrp; '' where absent or unusable."""
    ext = data.get("extensions")
    ours = ext.get("neuralrp") if isinstance(ext, dict) else None
    if not isinstance(ours, dict):
        return "", ""
    gender = ours.get("gender")
    gender = gender.strip().lower() if isinstance(gender, str) else ""
    tags = ours.get("visual_tags")
    if isinstance(tags, list):
        tags = ", ".join(str(t).strip() for t in tags if str(t).strip())
    return (gender if gender in ("female", "male", "other") else ""), (tags.strip() if isinstance(tags, str) else "")


def insert_character(conn: Connection, card: Any, *, scope_chat_id: int | None = None, gender: str = "",
                     visual_tags: str = "", avatar_path: str | None = None, source_file: str | None = None,
                     source_mtime: float | None = None) -> int:
    """Validate and store a card (tags indexed); returns the new id. Call inside a transaction.

    Gender and visual tags not given are read from the card's extensions.neuralrp (an exported card keeps them).
    """
    card = as_v2(card)
    now = iso()
    data = card["data"]
    card_gender, card_tags = card_visual(data)
    gender, visual_tags = gender or card_gender, visual_tags or card_tags
    cur = conn.execute(
        "INSERT INTO characters (uid, name, card_json, spec, scope_chat_id, gender, visual_tags, talkativeness,"
        " avatar_path, source_file, source_mtime, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (uuid.uuid4().hex, data["name"].strip(), json.dumps(card, ensure_ascii=False),
         str(card.get("spec", "chara_card_v2")), scope_chat_id, gender, visual_tags, _talkativeness(data),
         avatar_path, source_file, source_mtime, now, now),
    )
    character_id = int(cur.lastrowid or 0)
    set_character_tags(conn, character_id, data.get("tags") or [])
    return character_id


def update_card(conn: Connection, character_id: int, card: Any) -> dict[str, Any]:
    """Replace a character's card (validated, tags re-indexed); returns the previous card."""
    old = get_character(conn, character_id)
    new = as_v2(card)
    data = new["data"]
    conn.execute("UPDATE characters SET name = ?, card_json = ?, spec = ?, talkativeness = ?, updated_at = ?"
                 " WHERE id = ?", (data["name"].strip(), json.dumps(new, ensure_ascii=False),
                                   str(new.get("spec", "chara_card_v2")), _talkativeness(data), iso(), character_id))
    set_character_tags(conn, character_id, data.get("tags") or [])
    return old.card


def set_source(conn: Connection, character_id: int, source_file: str | None, mtime: float | None) -> None:
    """Record which file in characters/ mirrors this character, and its mtime."""
    conn.execute("UPDATE characters SET source_file = ?, source_mtime = ? WHERE id = ?",
                 (source_file, mtime, character_id))


def character_by_source(conn: Connection, source_file: str) -> Character | None:
    """The character mirrored by a file in characters/, if any."""
    row = conn.execute("SELECT * FROM characters WHERE source_file = ?", (source_file,)).fetchone()
    return _row_to_character(row) if row else None


def character_by_name(conn: Connection, name: str) -> Character:
    """A global character by (case-insensitive) name."""
    row = conn.execute("SELECT * FROM characters WHERE name = ? COLLATE NOCASE AND scope_chat_id IS NULL"
                       " ORDER BY id LIMIT 1", (name,)).fetchone()
    if row is None:
        raise NotFound(f"no character is named '{name}'")
    return _row_to_character(row)


def get_character(conn: Connection, character_id: int) -> Character:
    """One character by id."""
    row = conn.execute("SELECT * FROM characters WHERE id = ?", (character_id,)).fetchone()
    if row is None:
        raise NotFound(f"character {character_id} does not exist")
    return _row_to_character(row)


def list_characters(conn: Connection, *, include_npcs: bool = False) -> list[Character]:
    """Characters by name; NPCs only when asked."""
    where = "" if include_npcs else "WHERE scope_chat_id IS NULL"
    rows = conn.execute(f"SELECT * FROM characters {where} ORDER BY name COLLATE NOCASE, id")
    return [_row_to_character(r) for r in rows]


def find_by_name(conn: Connection, name: str) -> Character | None:
    """A global character by (case-insensitive) name, or None."""
    try:
        return character_by_name(conn, name)
    except NotFound:
        return None


def global_characters_named(conn: Connection, name: str) -> list[Character]:
    """Global characters with exactly this name (case-sensitive), oldest first."""
    rows = conn.execute("SELECT * FROM characters WHERE name = ? AND scope_chat_id IS NULL ORDER BY id", (name,))
    return [_row_to_character(r) for r in rows]


def global_characters_named_nocase(conn: Connection, name: str) -> list[Character]:
    """Global characters with this name in any letter case, oldest first."""
    rows = conn.execute("SELECT * FROM characters WHERE name = ? COLLATE NOCASE AND scope_chat_id IS NULL"
                        " ORDER BY id", (name,))
    return [_row_to_character(r) for r in rows]


def mirrored_characters(conn: Connection) -> list[Character]:
    """Characters mirrored by a file in characters/."""
    rows = conn.execute("SELECT * FROM characters WHERE source_file IS NOT NULL ORDER BY id")
    return [_row_to_character(r) for r in rows]


def cast_use_count(conn: Connection, character_id: int) -> int:
    """In how many chats' casts the character is."""
    row = conn.execute("SELECT count(*) AS n FROM chat_cast WHERE character_id = ?", (character_id,)).fetchone()
    return int(row["n"])


def set_visual(conn: Connection, character_id: int, *, gender: str | None = None, visual_tags: str) -> None:
    """Store the visual tags (and gender, when given) in their columns."""
    if gender is None:
        conn.execute("UPDATE characters SET visual_tags = ? WHERE id = ?", (visual_tags, character_id))
    else:
        conn.execute("UPDATE characters SET gender = ?, visual_tags = ? WHERE id = ?",
                     (gender, visual_tags, character_id))


def set_avatar_path(conn: Connection, character_id: int, avatar_path: str) -> None:
    """Record where the character's avatar PNG lives (relative to the data dir); updated_at moves on."""
    conn.execute("UPDATE characters SET avatar_path = ?, updated_at = ? WHERE id = ?",
                 (avatar_path, iso(), character_id))


def set_capsule(conn: Connection, character_id: int, capsule: str, capsule_hash: str) -> None:
    """Cache an LLM-written capsule with the digest of the card it was written for."""
    conn.execute("UPDATE characters SET capsule = ?, capsule_hash = ? WHERE id = ?",
                 (capsule, capsule_hash, character_id))


def make_global(conn: Connection, character_id: int) -> None:
    """An NPC becomes a library character (no longer scoped to its chat)."""
    conn.execute("UPDATE characters SET scope_chat_id = NULL WHERE id = ?", (character_id,))


def delete_character(conn: Connection, character_id: int) -> None:
    """Delete a character row (its tags and cast places go with it)."""
    conn.execute("DELETE FROM characters WHERE id = ?", (character_id,))


def copy_npcs(conn: Connection, chat_id: int, new_chat_id: int) -> dict[int, int]:
    """Copy a chat's NPCs as NPCs of another chat; returns old -> new character ids."""
    people: dict[int, int] = {}
    for npc in conn.execute("SELECT * FROM characters WHERE scope_chat_id = ? ORDER BY id", (chat_id,)).fetchall():
        people[npc["id"]] = copy_row(conn, "characters", npc, {"uid": uuid.uuid4().hex, "scope_chat_id": new_chat_id,
                                                                "source_file": None, "source_mtime": None})
    return people
