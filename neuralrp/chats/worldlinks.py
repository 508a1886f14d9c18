"""SQL for the worlds a chat uses and the link each came in through (chat_worlds and the reads over cast,
cards and worlds that find the others). Callers own transactions.

A world reaches a chat's prompt through one or more links, as in SillyTavern:
- `chat`: chosen for the chat (the chat's own lorebooks, chat_worlds);
- `character`: named by an active cast member's card, `data.extensions.world` (SillyTavern's linked lorebook),
  matched by world name, case-insensitively;
- `card_book`: the book that came embedded in an active cast member's card (a world it owns, or an equal world
  it was linked to on import);
- `global`: named in the `world.active_worlds` setting (SillyTavern's global World Info).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from neuralrp.db.connection import Connection

VIA_ORDER = ("chat", "character", "card_book", "global")


@dataclass
class WorldLink:
    """A world in use in a chat, and every link that brings it in (in VIA_ORDER)."""

    world_id: int
    name: str
    via: list[dict[str, Any]] = field(default_factory=list)  # {"via": ..., "character_id", "character_name"}

    def public(self) -> dict[str, Any]:
        """JSON form for the API and the prompt inspector."""
        return {"world_id": self.world_id, "name": self.name, "via": self.via, "label": link_label(self.via)}


def link_label(via: list[dict[str, Any]]) -> str:
    """The links in words: "chat", "Seraphina's card", "Seraphina's card book", "global"."""
    words = []
    for link in via:
        who = link.get("character_name") or "a character"
        words.append({"chat": "chat", "global": "global", "character": f"{who}'s card",
                      "card_book": f"{who}'s card book"}[link["via"]])
    return ", ".join(dict.fromkeys(words))


_LINKS = """
SELECT cw.world_id AS id, 'chat' AS via, NULL AS character_id, NULL AS ext FROM chat_worlds cw WHERE cw.chat_id = :chat
UNION ALL
SELECT w.id, 'card_book', cc.character_id, NULL FROM worlds w
  JOIN chat_cast cc ON cc.character_id = w.character_id WHERE cc.chat_id = :chat AND cc.is_active = 1
UNION ALL
SELECT l.world_id, 'card_book', cc.character_id, NULL FROM character_worlds l
  JOIN chat_cast cc ON cc.character_id = l.character_id WHERE cc.chat_id = :chat AND cc.is_active = 1
UNION ALL
SELECT w.id, 'character', cc.character_id, json_extract(ch.card_json, '$.data.extensions.world') FROM chat_cast cc
  JOIN characters ch ON ch.id = cc.character_id
  JOIN worlds w ON w.name = trim(json_extract(ch.card_json, '$.data.extensions.world')) COLLATE NOCASE
  WHERE cc.chat_id = :chat AND cc.is_active = 1
"""


def _rows(conn: Connection, chat_id: int, global_names: list[str]) -> list[dict[str, Any]]:
    rows = [dict(r) for r in conn.execute(_LINKS, {"chat": chat_id})]
    names = [n.strip().casefold() for n in global_names if n.strip()]
    if names:
        marks = ",".join("?" * len(names))
        found = conn.execute(f"SELECT id FROM worlds WHERE lower(name) IN ({marks})", [n.lower() for n in names])
        rows += [{"id": r["id"], "via": "global", "character_id": None, "ext": None} for r in found]
    return rows


def _worlds(conn: Connection, ids: set[int]) -> dict[int, dict[str, Any]]:
    if not ids:
        return {}
    marks = ",".join("?" * len(ids))
    rows = conn.execute(f"SELECT id, name, character_id, json_extract(extra_json, '$.book_name') AS book_name"
                        f" FROM worlds WHERE id IN ({marks})", sorted(ids))
    return {r["id"]: dict(r) for r in rows}


def _names(conn: Connection, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    marks = ",".join("?" * len(ids))
    return {r["id"]: r["name"] for r in conn.execute(f"SELECT id, name FROM characters WHERE id IN ({marks})",
                                                     sorted(ids))}


def _own_book(rows: list[dict[str, Any]], worlds: dict[int, dict[str, Any]], row: dict[str, Any]) -> bool:
    """Whether a card's extensions.world names the card's own embedded book (then that book is the link)."""
    wanted = str(row["ext"] or "").strip().casefold()
    for other in rows:
        world = worlds.get(other["id"])
        if other["via"] != "card_book" or other["character_id"] != row["character_id"] or world is None:
            continue
        if wanted in {str(world["name"]).casefold(), str(world["book_name"] or "").casefold()}:
            return True
    return False


def world_links(conn: Connection, chat_id: int, global_names: list[str] | tuple[str, ...] = ()) -> list[WorldLink]:
    """The worlds the chat uses, each with its links, in link order (chat, character, card book, global), then id."""
    rows = _rows(conn, chat_id, list(global_names))
    worlds = _worlds(conn, {r["id"] for r in rows})
    people = _names(conn, {r["character_id"] for r in rows if r["character_id"] is not None})
    found: dict[int, WorldLink] = {}
    for row in sorted(rows, key=lambda r: (VIA_ORDER.index(r["via"]), r["id"], r["character_id"] or 0)):
        if row["id"] not in worlds or (row["via"] == "character" and _own_book(rows, worlds, row)):
            continue
        link = found.setdefault(row["id"], WorldLink(row["id"], worlds[row["id"]]["name"]))
        entry = {"via": row["via"], "character_id": row["character_id"],
                 "character_name": people.get(row["character_id"]) if row["character_id"] is not None else None}
        if entry not in link.via:
            link.via.append(entry)
    return list(found.values())


def chat_world_choice(conn: Connection, chat_id: int) -> list[int]:
    """The worlds chosen for the chat itself."""
    return [r["world_id"] for r in conn.execute("SELECT world_id FROM chat_worlds WHERE chat_id = ? ORDER BY world_id",
                                                (chat_id,))]


def set_chat_worlds(conn: Connection, chat_id: int, world_ids: list[int]) -> None:
    """Make the chat's own worlds exactly these (ids already checked to exist)."""
    conn.execute("DELETE FROM chat_worlds WHERE chat_id = ?", (chat_id,))
    conn.executemany("INSERT OR IGNORE INTO chat_worlds (chat_id, world_id) VALUES (?, ?)",
                     [(chat_id, wid) for wid in world_ids])


def world_users(conn: Connection) -> dict[int, dict[str, list[Any]]]:
    """World id -> {"chats": [chat ids choosing it], "characters": [names of cards linking it by name]}, for the
    library's world list."""
    out: dict[int, dict[str, list[Any]]] = {}
    for r in conn.execute("SELECT cw.world_id, cw.chat_id FROM chat_worlds cw JOIN chats c ON c.id = cw.chat_id"
                          " WHERE c.deleted_at IS NULL ORDER BY cw.chat_id"):
        out.setdefault(r["world_id"], {"chats": [], "characters": []})["chats"].append(r["chat_id"])
    linked = conn.execute(
        "SELECT w.id AS world_id, ch.name FROM characters ch JOIN worlds w"
        " ON w.name = trim(json_extract(ch.card_json, '$.data.extensions.world')) COLLATE NOCASE"
        " WHERE ch.scope_chat_id IS NULL ORDER BY ch.name COLLATE NOCASE")
    for r in linked:
        out.setdefault(r["world_id"], {"chats": [], "characters": []})["characters"].append(r["name"])
    return out
