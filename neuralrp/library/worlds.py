"""World (lorebook) rows: entries as queryable columns plus everything else for a lossless export."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

from neuralrp.clock import iso
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

    def lorebook(self) -> LoreBook:
        """The worldfile LoreBook for export."""
        entries = [{k: v for k, v in e.items() if k not in ("id", "canon_law")} for e in self.entries]
        return LoreBook(name=self.name, entries=entries, extra=self.extra.get("extra", {}),
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


def _unique_name(conn: Any, wanted: str, exclude_id: int | None = None) -> str:
    name = wanted.strip() or "Untitled world"
    taken = {r["name"].casefold() for r in conn.execute("SELECT name FROM worlds WHERE id IS NOT ?", (exclude_id,))}
    candidate, n = name, 2
    while candidate.casefold() in taken:
        candidate, n = f"{name} ({n})", n + 1
    return candidate


def insert_world(conn: Any, book: LoreBook, *, character_id: int | None = None, name: str | None = None) -> int:
    """Store a lorebook as a new world (name made unique); returns its id."""
    now = iso()
    extra = {"extra": book.extra, "source": book.source, "name_in_file": book.name_in_file}
    cur = conn.execute(
        "INSERT INTO worlds (uid, name, description, extra_json, character_id, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (uuid.uuid4().hex, _unique_name(conn, name or book.name), str(book.extra.get("description") or ""),
         json.dumps(extra, ensure_ascii=False), character_id, now, now),
    )
    world_id = int(cur.lastrowid)
    _insert_entries(conn, world_id, book.entries)
    return world_id


def _insert_entries(conn: Any, world_id: int, entries: list[dict[str, Any]]) -> None:
    now = iso()
    used: set[int] = set()
    for index, entry in enumerate(entries):
        uid = entry.get("uid")
        db_uid = uid if isinstance(uid, int) and not isinstance(uid, bool) and uid not in used else None
        if db_uid is None:
            db_uid = max(used | {index - 1}) + 1
        used.add(db_uid)
        _insert_entries_at(conn, world_id, entry, db_uid, now)


def get_world(conn: Any, world_id: int) -> World:
    """A world and its entries in uid order."""
    row = conn.execute("SELECT * FROM worlds WHERE id = ?", (world_id,)).fetchone()
    if row is None:
        raise NotFound(f"world {world_id} does not exist")
    entries = [_row_entry(r) for r in conn.execute(
        "SELECT * FROM world_entries WHERE world_id = ? ORDER BY id", (world_id,))]
    return World(row["id"], row["uid"], row["name"], row["description"], row["character_id"],
                 json.loads(row["extra_json"] or "{}"), entries, row["updated_at"])


def world_by_name(conn: Any, name: str) -> World:
    """A world by its (case-insensitive) name."""
    row = conn.execute("SELECT id FROM worlds WHERE name = ? COLLATE NOCASE", (name,)).fetchone()
    if row is None:
        raise NotFound(f"no world is named '{name}'")
    return get_world(conn, row["id"])


def list_worlds(conn: Any) -> list[dict[str, Any]]:
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


def replace_entries(conn: Any, world_id: int, entries: list[Any], *, name: str | None = None) -> None:
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
        conn.execute("UPDATE worlds SET name = ? WHERE id = ?", (_unique_name(conn, name, world_id), world_id))
    conn.execute("UPDATE worlds SET updated_at = ? WHERE id = ?", (now, world_id))


def _update_entry(conn: Any, old: dict[str, Any], fields: dict[str, Any], now: str) -> None:
    """Write an entry's changed fields; its updated_at moves only when something changed."""
    merged = {**old, **fields}
    if merged == old:
        return
    db_uid = conn.execute("SELECT uid FROM world_entries WHERE id = ?", (old["id"],)).fetchone()["uid"]
    row = _entry_row(merged, db_uid)
    sets = ", ".join(f"{c} = ?" for c in row)
    conn.execute(f"UPDATE world_entries SET {sets}, updated_at = ? WHERE id = ?", (*row.values(), now, old["id"]))


def _insert_entries_at(conn: Any, world_id: int, entry: dict[str, Any], db_uid: int, now: str) -> None:
    row = _entry_row(entry, db_uid)
    conn.execute(f"INSERT INTO world_entries (world_id, {', '.join(row)}, created_at, updated_at)"
                 f" VALUES (?, {', '.join('?' * len(row))}, ?, ?)", (world_id, *row.values(), now, now))


def delete_world(conn: Any, world_id: int) -> None:
    """Delete a world and its entries."""
    if conn.execute("DELETE FROM worlds WHERE id = ?", (world_id,)).rowcount == 0:
        raise NotFound(f"world {world_id} does not exist")


def linked_world_id(conn: Any, character_id: int) -> int | None:
    """The world that came with a character's card, if any."""
    row = conn.execute("SELECT id FROM worlds WHERE character_id = ? ORDER BY id LIMIT 1", (character_id,)).fetchone()
    return None if row is None else int(row["id"])


__all__ = ["World", "Conflict"]
