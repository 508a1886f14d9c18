"""Read-side queries for the library grid: search and tag filters."""

from __future__ import annotations

from typing import Any

from neuralrp.library import characters as chars
from neuralrp.library import tags as tag_index


def character_summaries(conn: Any, *, q: str = "", tags: list[str] | None = None) -> list[dict[str, Any]]:
    """Global characters matching the text (name, description, creator, tags) and ALL the tags."""
    wanted = tag_index.characters_with_all(conn, tags or [])
    by_char = tag_index.tags_by_character(conn)
    worlds = {r["character_id"]: r["id"] for r in conn.execute(
        "SELECT id, character_id FROM worlds WHERE character_id IS NOT NULL")}
    needle = q.strip().casefold()
    out = []
    for char in chars.list_characters(conn):
        if char.id not in wanted:
            continue
        data = char.data
        text = " ".join([char.name, str(data.get("description", "")), str(data.get("creator", "")),
                         *by_char.get(char.id, [])]).casefold()
        if needle and needle not in text:
            continue
        out.append({"id": char.id, "uid": char.uid, "name": char.name, "tags": data.get("tags") or [],
                    "description": str(data.get("description", ""))[:200], "creator": str(data.get("creator", "")),
                    "avatar_url": f"/api/characters/{char.id}/avatar", "world_id": worlds.get(char.id),
                    "updated_at": char.updated_at})
    return out
