"""Read-side queries for the library grid: search and tag filters."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from neuralrp.db.connection import Connection
from neuralrp.errors import InvalidInput, NotFound
from neuralrp.library import characters as chars
from neuralrp.library import tags as tag_index
from neuralrp.library import worlds


def character_summaries(conn: Connection, *, q: str = "", tags: list[str] | None = None, sort: str = "name",
                        last_chat: dict[int, str] | None = None) -> list[dict[str, Any]]:
    """Global characters matching the text (name, description, creator, tags) and ALL the tags.

    sort: name (A-Z), recent (last chat activity, from `last_chat`, else last edit; newest first) or created
    (newest first). Each summary carries `last_chat_at` from `last_chat` (None: never in a chat).
    """
    found = _matching(conn, q, tags or [])
    chats = last_chat or {}
    for item in found:
        item["last_chat_at"] = chats.get(item["id"])
    if sort == "recent":
        found.sort(key=lambda c: (c["last_chat_at"] or "", c["updated_at"]), reverse=True)
    elif sort == "created":
        found.sort(key=lambda c: (c["created_at"], c["id"]), reverse=True)
    return found


def _matching(conn: Connection, q: str, tags: list[str]) -> list[dict[str, Any]]:
    """Summaries of the characters matching the text and all the tags, by name."""
    wanted = tag_index.characters_with_all(conn, tags)
    by_char = tag_index.tags_by_character(conn)
    linked = worlds.linked_world_ids(conn)
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
                    "avatar_url": f"/api/characters/{char.id}/avatar", "world_id": linked.get(char.id),
                    "updated_at": char.updated_at, "created_at": char.created_at,
                    "has_avatar": bool(char.avatar_path)})
    return out


def _one(kind: str, ref: str, found: list[tuple[int, str]]) -> int:
    """The single id among the candidates; NotFound for none, InvalidInput naming every id for several."""
    ids = list(dict.fromkeys(i for i, _ in found))
    if not ids:
        also = " and none has that id" if ref.isdecimal() else ""
        raise NotFound(f"no {kind} is named '{ref}'{also}")
    if len(ids) > 1:
        listed = ", ".join(f"{i} ({name})" for i, name in dict(found).items())
        raise InvalidInput(f"'{ref}' could be {len(ids)} {kind}s: ids {listed}; give the id of the one you mean")
    return ids[0]


def resolve_character(conn: Connection, ref: str) -> int:
    """A character's id from an id or a name: exact name first, then any letter case; refuses ambiguity."""
    named = chars.global_characters_named(conn, ref) or chars.global_characters_named_nocase(conn, ref)
    return _one("character", ref, _by_id(conn, chars.get_character, ref) + [(c.id, c.name) for c in named])


def resolve_world(conn: Connection, ref: str) -> int:
    """A world's id from an id or its (case-insensitive, unique) name; refuses an id and a name that disagree."""
    named = [(w.id, w.name) for w in worlds.worlds_named(conn, ref) if w.name.casefold() == ref.casefold()]
    return _one("world", ref, _by_id(conn, worlds.get_world, ref) + named)


def _by_id(conn: Connection, get: Callable[[Connection, int], Any], ref: str) -> list[tuple[int, str]]:
    """[(id, name)] of what has the id `ref` (none when ref is not a number or nothing has it)."""
    if not ref.isdecimal():
        return []
    try:
        found = get(conn, int(ref))
    except NotFound:
        return []
    return [(found.id, found.name)]
