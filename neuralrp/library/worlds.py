"""World (lorebook) rows: entries as queryable columns plus everything else for a lossless export."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

from neuralrp.clock import iso
from neuralrp.db.connection import Connection
from neuralrp.errors import Conflict, InvalidInput, NotFound
from neuralrp.library.worldfile import WORLD_INFO, LoreBook, new_entry

# Normalized entry key -> DB column; the rest (uid as found, extra, origin, depth) goes to extra_json.
COLUMNS = {
    "keys": "keys_json", "secondary_keys": "secondary_keys_json", "comment": "comment", "content": "content",
    "constant": "constant", "selective": "selective", "selective_logic": "selective_logic", "order": "order_value",
    "position": "position", "probability": "probability", "use_probability": "use_probability",
}
KEPT = ("uid", "extra", "origin", "depth")


@dataclass
class World:
    """A world with its entries in the normalized (worldfile) shape plus DB ids."""

    id: int
    uid: str
    name: str
    description: str
    character_id: int | None
    extra: dict[str, Any]
    entries: list[dict[str, Any]]
    updated_at: str
    source_file: str | None = None
    source_mtime: float | None = None

    @property
    def book_name(self) -> str:
        """The book's own name, as its card or file has it (the world's name may carry a ' (2)' to be unique)."""
        name = self.extra.get("book_name")
        return name if isinstance(name, str) else self.name

    def lorebook(self) -> LoreBook:
        """The worldfile LoreBook for export (named as the card or file named it, never by the unique name)."""
        entries = [{k: v for k, v in e.items() if k != "id"} for e in self.entries]
        return LoreBook(name=self.book_name, entries=entries, extra=self.extra.get("extra", {}),
                        source=self.extra.get("source", WORLD_INFO), name_in_file=self.extra.get("name_in_file", True))

    def public(self) -> dict[str, Any]:
        """JSON form for the API (entries without the export bookkeeping)."""
        hidden = {"extra", "origin"}
        return {"id": self.id, "uid": self.uid, "name": self.name, "description": self.description,
                "character_id": self.character_id, "updated_at": self.updated_at,
                "entries": [{k: v for k, v in e.items() if k not in hidden} for e in self.entries]}


def _entry_row(entry: dict[str, Any], db_uid: int) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for key, column in COLUMNS.items():
        value = entry.get(key)
        row[column] = json.dumps(value, ensure_ascii=False) if column.endswith("_json") else value
    row["disabled"] = 0 if entry.get("enabled", True) else 1
    row["is_canon_law"] = 1 if entry.get("canon_law") else 0
    row["extra_json"] = json.dumps({k: entry.get(k) for k in KEPT}, ensure_ascii=False)
    row["uid"] = db_uid
    row["content_hash"] = hashlib.sha256(f"{entry.get('keys')}\x00{entry.get('content')}".encode()).hexdigest()
    return row


def _row_entry(row: dict[str, Any]) -> dict[str, Any]:
    kept = json.loads(row["extra_json"] or "{}")
    entry: dict[str, Any] = {"id": row["id"], "uid": kept.get("uid", row["uid"])}
    for key, column in COLUMNS.items():
        value = row[column]
        entry[key] = json.loads(value) if column.endswith("_json") else value
    for key in ("constant", "selective", "use_probability"):
        entry[key] = bool(entry[key])
    entry["enabled"] = not row["disabled"]
    entry["depth"] = kept.get("depth", 4)
    entry["extra"] = kept.get("extra") or {}
    entry["origin"] = kept.get("origin")
    entry["canon_law"] = bool(row["is_canon_law"])
    return entry


def _unique_name(conn: Connection, wanted: str, exclude_id: int | None = None) -> str:
    name = wanted.strip() or "Untitled world"
    taken = {r["name"].casefold() for r in conn.execute("SELECT name FROM worlds WHERE id IS NOT ?", (exclude_id,))}
    candidate, n = name, 2
    while candidate.casefold() in taken:
        candidate, n = f"{name} ({n})", n + 1
    return candidate


def _book_extra(book: LoreBook) -> dict[str, Any]:
    """What extra_json keeps of a book: its unmodelled top-level keys, format, and its own name."""
    return {"extra": book.extra, "source": book.source, "name_in_file": book.name_in_file, "book_name": book.name}


def insert_world(conn: Connection, book: LoreBook, *, character_id: int | None = None, name: str | None = None) -> int:
    """Store a lorebook as a new world (the world's name made unique, the book's own name kept); returns its id."""
    now = iso()
    extra = _book_extra(book)
    cur = conn.execute(
        "INSERT INTO worlds (uid, name, description, extra_json, character_id, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (uuid.uuid4().hex, _unique_name(conn, name or book.name), str(book.extra.get("description") or ""),
         json.dumps(extra, ensure_ascii=False), character_id, now, now),
    )
    world_id = int(cur.lastrowid or 0)
    _insert_entries(conn, world_id, book.entries)
    return world_id


def _insert_entries(conn: Connection, world_id: int, entries: list[dict[str, Any]]) -> None:
    now = iso()
    used: set[int] = set()
    for index, entry in enumerate(entries):
        uid = entry.get("uid")
        db_uid = uid if isinstance(uid, int) and not isinstance(uid, bool) and uid not in used else None
        if db_uid is None:
            db_uid = max(used | {index - 1}) + 1
        used.add(db_uid)
        _insert_entries_at(conn, world_id, entry, db_uid, now)


def get_world(conn: Connection, world_id: int) -> World:
    """A world and its entries in uid order."""
    row = conn.execute("SELECT * FROM worlds WHERE id = ?", (world_id,)).fetchone()
    if row is None:
        raise NotFound(f"world {world_id} does not exist")
    entries = [_row_entry(r) for r in conn.execute(
        "SELECT * FROM world_entries WHERE world_id = ? ORDER BY id", (world_id,))]
    return World(row["id"], row["uid"], row["name"], row["description"], row["character_id"],
                 json.loads(row["extra_json"] or "{}"), entries, row["updated_at"], row["source_file"],
                 row["source_mtime"])


def world_by_name(conn: Connection, name: str) -> World:
    """A world by its (case-insensitive) name."""
    row = conn.execute("SELECT id FROM worlds WHERE name = ? COLLATE NOCASE", (name,)).fetchone()
    if row is None:
        raise NotFound(f"no world is named '{name}'")
    return get_world(conn, row["id"])


def list_worlds(conn: Connection) -> list[dict[str, Any]]:
    """Worlds by name with entry counts and linked character names."""
    rows = conn.execute(
        "SELECT w.id, w.name, w.character_id, w.updated_at, c.name AS character_name,"
        " (SELECT count(*) FROM world_entries e WHERE e.world_id = w.id) AS entry_count"
        " FROM worlds w LEFT JOIN characters c ON c.id = w.character_id ORDER BY w.name COLLATE NOCASE")
    return [dict(r) for r in rows]


def _check_entry(raw: Any, index: int) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise InvalidInput(f"entry {index} must be an object")
    keys = raw.get("keys", [])
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise InvalidInput(f"entry {index}: 'keys' must be a list of strings")
    if not isinstance(raw.get("content", ""), str):
        raise InvalidInput(f"entry {index}: 'content' must be a string")
    return raw


def replace_entries(conn: Connection, world_id: int, entries: list[Any], *, name: str | None = None) -> None:
    """Make the world's entries equal the list (API shape): changed rows updated, new inserted, missing deleted."""
    current = {e["id"]: e for e in get_world(conn, world_id).entries}
    next_uid = 1 + max((r["uid"] for r in conn.execute(
        "SELECT uid FROM world_entries WHERE world_id = ?", (world_id,))), default=-1)
    keep: set[int] = set()
    now = iso()
    for index, raw in enumerate(entries):
        edit = _check_entry(raw, index)
        fields = {k: edit[k] for k in (*COLUMNS, "enabled", "depth", "canon_law") if k in edit}
        old = current.get(edit.get("id"))
        if old is None:
            entry = {**new_entry(uid=next_uid, keys=[], content=""), **fields}
            _insert_entries_at(conn, world_id, entry, next_uid, now)
            next_uid += 1
            continue
        keep.add(old["id"])
        _update_entry(conn, old, fields, now)
    for gone in set(current) - keep:
        conn.execute("DELETE FROM world_entries WHERE id = ?", (gone,))
    if name is not None:
        rename(conn, world_id, name)
    conn.execute("UPDATE worlds SET updated_at = ? WHERE id = ?", (now, world_id))


def rename(conn: Connection, world_id: int, name: str, *, book_too: bool = True) -> None:
    """A rename asked for by the user: the world gets the name (made unique), the book the name as asked."""
    world = get_world(conn, world_id)
    if name.strip() == world.name:
        return
    extra = {**world.extra, "book_name": name.strip()} if book_too else world.extra
    conn.execute("UPDATE worlds SET name = ?, extra_json = ? WHERE id = ?",
                 (_unique_name(conn, name, world_id), json.dumps(extra, ensure_ascii=False), world_id))


def _update_entry(conn: Connection, old: dict[str, Any], fields: dict[str, Any], now: str) -> None:
    """Write an entry's changed fields; its updated_at moves only when something changed."""
    merged = {**old, **fields}
    if merged == old:
        return
    db_uid = conn.execute("SELECT uid FROM world_entries WHERE id = ?", (old["id"],)).fetchone()["uid"]
    row = _entry_row(merged, db_uid)
    sets = ", ".join(f"{c} = ?" for c in row)
    conn.execute(f"UPDATE world_entries SET {sets}, updated_at = ? WHERE id = ?", (*row.values(), now, old["id"]))


def _insert_entries_at(conn: Connection, world_id: int, entry: dict[str, Any], db_uid: int, now: str) -> None:
    row = _entry_row(entry, db_uid)
    conn.execute(f"INSERT INTO world_entries (world_id, {', '.join(row)}, created_at, updated_at)"
                 f" VALUES (?, {', '.join('?' * len(row))}, ?, ?)", (world_id, *row.values(), now, now))


def delete_world(conn: Connection, world_id: int) -> None:
    """Delete a world and its entries."""
    if conn.execute("DELETE FROM worlds WHERE id = ?", (world_id,)).rowcount == 0:
        raise NotFound(f"world {world_id} does not exist")


def linked_world_id(conn: Connection, character_id: int) -> int | None:
    """The world that holds a character's card book: the one that came with the card, else the one it is linked to."""
    row = conn.execute("SELECT id, 0 AS linked FROM worlds WHERE character_id = ? UNION ALL"
                       " SELECT world_id, 1 FROM character_worlds WHERE character_id = ? ORDER BY linked, id LIMIT 1",
                       (character_id, character_id)).fetchone()
    return None if row is None else int(row["id"])


def link_character(conn: Connection, character_id: int, world_id: int) -> None:
    """Link a character to a world it does not own (its card's book is that world)."""
    conn.execute("INSERT OR IGNORE INTO character_worlds (character_id, world_id, linked_at) VALUES (?, ?, ?)",
                 (character_id, world_id, iso()))


def unlink_character(conn: Connection, character_id: int) -> None:
    """The character's card has no book any more: drop its links (the worlds stay)."""
    conn.execute("DELETE FROM character_worlds WHERE character_id = ?", (character_id,))


def set_owner(conn: Connection, world_id: int, character_id: int | None) -> None:
    """Make a world the book of a character's card (or, with None, a world of its own)."""
    conn.execute("UPDATE worlds SET character_id = ? WHERE id = ?", (character_id, world_id))


def book_characters(conn: Connection, world_id: int) -> list[int]:
    """Characters whose card book is this world: its owner, then the linked ones."""
    rows = conn.execute("SELECT character_id, 0 AS linked FROM worlds WHERE id = ? AND character_id IS NOT NULL"
                        " UNION ALL SELECT character_id, 1 FROM character_worlds WHERE world_id = ?"
                        " ORDER BY linked, character_id", (world_id, world_id))
    return [int(r["character_id"]) for r in rows]


def worlds_named(conn: Connection, book_name: str) -> list[World]:
    """Worlds called so, or whose book is called so: the candidates a card's embedded book may equal."""
    rows = conn.execute("SELECT id FROM worlds WHERE name = ? COLLATE NOCASE"
                        " OR json_extract(extra_json, '$.book_name') = ? ORDER BY id", (book_name, book_name))
    return [get_world(conn, r["id"]) for r in rows]


def replace_book(conn: Connection, world_id: int, book: LoreBook) -> None:
    """Make the world hold this book: every entry (new ids, in the book's order), top-level keys, own name."""
    conn.execute("DELETE FROM world_entries WHERE world_id = ?", (world_id,))
    _insert_entries(conn, world_id, book.entries)
    conn.execute("UPDATE worlds SET extra_json = ?, description = ?, updated_at = ? WHERE id = ?",
                 (json.dumps(_book_extra(book), ensure_ascii=False), str(book.extra.get("description") or ""),
                  iso(), world_id))


@dataclass
class WorldMirror:
    """A world mirrored by a file in worlds/ (without its entries)."""

    id: int
    name: str
    source_file: str
    source_mtime: float | None
    updated_at: str


_MIRROR = "SELECT id, name, source_file, source_mtime, updated_at FROM worlds"


def world_by_source(conn: Connection, source_file: str) -> WorldMirror | None:
    """The world mirrored by a file in worlds/, if any."""
    row = conn.execute(_MIRROR + " WHERE source_file = ?", (source_file,)).fetchone()
    return None if row is None else WorldMirror(**row)


def mirrored_worlds(conn: Connection) -> list[WorldMirror]:
    """Worlds mirrored by a file in worlds/."""
    return [WorldMirror(**r) for r in conn.execute(_MIRROR + " WHERE source_file IS NOT NULL ORDER BY id")]


def set_source(conn: Connection, world_id: int, source_file: str | None, mtime: float | None) -> None:
    """Record which file in worlds/ mirrors this world, and its mtime."""
    conn.execute("UPDATE worlds SET source_file = ?, source_mtime = ? WHERE id = ?", (source_file, mtime, world_id))


def replace_from_file(conn: Connection, world_id: int, book: LoreBook, mtime: float) -> None:
    """Take a newer mirror file whole (entries and top-level keys) and record the file's mtime."""
    replace_book(conn, world_id, book)
    conn.execute("UPDATE worlds SET source_mtime = ? WHERE id = ?", (mtime, world_id))


def linked_world_ids(conn: Connection) -> dict[int, int]:
    """Character id -> the world holding its card book (the one that came with the card before a linked one)."""
    links = conn.execute("SELECT world_id, character_id FROM character_worlds ORDER BY world_id DESC")
    found = {r["character_id"]: r["world_id"] for r in links}
    owned = conn.execute("SELECT id, character_id FROM worlds WHERE character_id IS NOT NULL ORDER BY id DESC")
    found.update({r["character_id"]: r["id"] for r in owned})
    return found


__all__ = ["World", "Conflict"]
