"""Library operations: import, export, edit and delete cards and worlds, with their mirror files.

Every import parses the bytes completely before touching the DB, then stores in one
transaction, so a bad file never changes what is stored.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from neuralrp.clock import iso
from neuralrp.db.connection import Database, transaction
from neuralrp.errors import Conflict, InvalidInput, NotFound
from neuralrp.library import characters as chars
from neuralrp.library import worlds
from neuralrp.library.cardfile import ParsedCard, export_card_json, export_card_png, parse_card
from neuralrp.library.files import LibraryPaths, safe_stem, unique_path, write_atomic
from neuralrp.library.worldfile import (
    LoreBook,
    export_character_book,
    export_world_info_json,
    parse_character_book,
    parse_world_info,
)

log = logging.getLogger(__name__)
T = TypeVar("T")
CARD_SUFFIXES = (".png", ".json")


@dataclass
class ImportResult:
    """What happened to one file."""

    file: str
    status: str  # imported | skipped | error
    kind: str | None = None  # character | world | chat
    detail: str = ""
    id: int | None = None

    def line(self) -> str:
        """One line for the CLI."""
        what = f" {self.kind}" if self.kind else ""
        return f"{self.status}{what}: {self.file}" + (f" ({self.detail})" if self.detail else "")


def record_change(conn: Any, entity: str, entity_id: int, op: str, old: Any, new: Any, note: str = "") -> None:
    """Keep a before/after snapshot in change history."""
    conn.execute("INSERT INTO change_history (entity_type, entity_id, operation, old_json, new_json, note,"
                 " created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                 (entity, entity_id, op, None if old is None else json.dumps(old, ensure_ascii=False),
                  None if new is None else json.dumps(new, ensure_ascii=False), note, iso()))


def card_hash(card: dict[str, Any]) -> str:
    """Content hash of a stored card, to spot re-imports of the same card."""
    return hashlib.sha256(json.dumps(card, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def locked(method: Callable[..., T]) -> Callable[..., T]:
    """Run a Library method holding the library lock, so folder sync never sees a half-done write."""

    @functools.wraps(method)
    def wrapper(self: Library, *args: Any, **kwargs: Any) -> T:
        with self.lock:
            return method(self, *args, **kwargs)

    return wrapper


class Library:
    """Cards and worlds in the DB plus their files under the data dir."""

    def __init__(self, db: Database, data_dir: Path, *, max_bytes: int = 20 * 1024 * 1024) -> None:
        self.db = db
        self.paths = LibraryPaths(data_dir)
        self.max_bytes = max_bytes
        # held while a DB change and its mirror file are written; the folder scan takes it per file
        self.lock = threading.RLock()

    def _check_size(self, data: bytes, filename: str) -> None:
        if len(data) > self.max_bytes:
            raise InvalidInput(f"{filename}: file is {len(data) // 1024 // 1024} MiB, over the "
                               f"{self.max_bytes // 1024 // 1024} MiB upload limit")

    def parse(self, data: bytes, filename: str) -> ParsedCard:
        """Parse card bytes (size-limited) without storing anything."""
        self._check_size(data, filename)
        return parse_card(data, filename, max_chunk_size=self.max_bytes, max_total_size=self.max_bytes * 2)

    def _duplicate(self, conn: Any, card: dict[str, Any]) -> int | None:
        digest = card_hash(chars.as_v2(card))
        for row in conn.execute("SELECT id, card_json FROM characters WHERE name = ? AND scope_chat_id IS NULL",
                                (card["data"]["name"].strip(),)):
            if card_hash(json.loads(row["card_json"])) == digest:
                return int(row["id"])
        return None

    @locked
    def import_card(self, data: bytes, filename: str, *, mirror: str | None = None) -> ImportResult:
        """Store a card file; `mirror` names its file in characters/ when it came from there."""
        parsed = self.parse(data, filename)
        card = parsed.to_card()
        with self.db.session() as conn, transaction(conn):
            existing = self._duplicate(conn, card)
            if existing is not None and mirror is None:
                return ImportResult(filename, "skipped", "character", "the same card is already in the library",
                                    existing)
            cid = chars.insert_character(conn, card)
            self._store_avatar(conn, cid, parsed.avatar_png)
            self._store_book(conn, cid, parsed)
            record_change(conn, "character", cid, "create", None, card, f"imported from {Path(filename).name}")
            if mirror is not None:
                chars.set_source(conn, cid, mirror, (self.paths.characters / mirror).stat().st_mtime)
            else:
                self.write_character_file(conn, cid)
        return ImportResult(filename, "imported", "character", parsed.name, cid)

    def _store_avatar(self, conn: Any, cid: int, avatar: bytes | None) -> None:
        if avatar is None:
            return
        char = chars.get_character(conn, cid)
        path = self.paths.avatars / f"{char.uid}.png"
        write_atomic(path, avatar)
        conn.execute("UPDATE characters SET avatar_path = ? WHERE id = ?",
                     (str(path.relative_to(self.paths.data_dir)), cid))

    def _store_book(self, conn: Any, cid: int, parsed: ParsedCard) -> None:
        if not parsed.character_book:
            return
        book = parse_character_book(parsed.character_book, parsed.name)
        worlds.insert_world(conn, book, character_id=cid, name=book.name or f"{parsed.name}'s lorebook")

    def card_for_export(self, conn: Any, cid: int) -> tuple[dict[str, Any], bytes | None]:
        """The stored card with its linked world put back as character_book, plus the avatar bytes."""
        char = chars.get_character(conn, cid)
        card = json.loads(json.dumps(char.card))
        world_id = worlds.linked_world_id(conn, cid)
        if world_id is not None:
            card["data"]["character_book"] = export_character_book(worlds.get_world(conn, world_id).lorebook())
        return card, self.avatar_bytes(char)

    def avatar_bytes(self, char: chars.Character) -> bytes | None:
        """The avatar PNG, if one is stored."""
        if not char.avatar_path:
            return None
        path = self.paths.data_dir / char.avatar_path
        return path.read_bytes() if path.is_file() else None

    def export_card(self, cid: int, fmt: str) -> tuple[bytes, str, str]:
        """(bytes, file name, media type) of a card as PNG or JSON."""
        if fmt not in ("png", "json"):
            raise InvalidInput(f"unknown export format '{fmt}'; use png or json")
        with self.db.session() as conn:
            card, avatar = self.card_for_export(conn, cid)
        stem = safe_stem(card["data"]["name"])
        if fmt == "json":
            return export_card_json(card), f"{stem}.json", "application/json"
        return export_card_png(card, avatar), f"{stem}.png", "image/png"

    def write_character_file(self, conn: Any, cid: int) -> Path:
        """(Re)write the character's SillyTavern-readable PNG in characters/."""
        char = chars.get_character(conn, cid)
        card, avatar = self.card_for_export(conn, cid)
        current = self.paths.characters / char.source_file if char.source_file else None
        if current is not None:
            self._keep_external_edit(conn, current, "character", cid)
        path = current or unique_path(self.paths.characters, safe_stem(char.name), ".png")
        if path.suffix.lower() == ".json":
            mtime = write_atomic(path, export_card_json(card))
        else:
            mtime = write_atomic(path, export_card_png(card, avatar))
        chars.set_source(conn, cid, path.name, mtime)
        return path

    def _keep_external_edit(self, conn: Any, path: Path, entity: str, entity_id: int) -> None:
        """Before overwriting a mirror file changed outside NeuralRP, keep its content in history."""
        table = "characters" if entity == "character" else "worlds"
        row = conn.execute(f"SELECT source_mtime FROM {table} WHERE id = ?", (entity_id,)).fetchone()
        if not path.is_file() or row is None or abs(path.stat().st_mtime - (row["source_mtime"] or 0)) <= 0.001:
            return
        raw = path.read_bytes()
        try:
            content: Any = self.parse(raw, path.name).to_card() if entity == "character" else json.loads(raw)
        except (InvalidInput, ValueError):
            content = {"unreadable_file_bytes": len(raw)}
        record_change(conn, entity, entity_id, "sync_conflict", content, None,
                      f"{table}/{path.name} was edited outside NeuralRP; the newer library edit replaced it")

    @locked
    def update_card(self, cid: int, card: Any) -> chars.Character:
        """Replace a card (history kept, file rewritten); a bad card changes nothing."""
        with self.db.session() as conn, transaction(conn):
            stored = chars.as_v2(card)
            old = chars.update_card(conn, cid, stored)
            record_change(conn, "character", cid, "update", old, stored)
            self.write_character_file(conn, cid)
            return chars.get_character(conn, cid)

    @locked
    def delete_character(self, cid: int) -> None:
        """Delete a character not used in any chat; its card is kept in history and its file in trash/."""
        with self.db.session() as conn, transaction(conn):
            char = chars.get_character(conn, cid)
            used = conn.execute("SELECT count(*) AS n FROM chat_cast WHERE character_id = ?", (cid,)).fetchone()["n"]
            if used:
                raise Conflict(f"{char.name} is in {used} chat(s); remove them from those chats first")
            record_change(conn, "character", cid, "delete", char.card, None)
            conn.execute("DELETE FROM characters WHERE id = ?", (cid,))
            if char.source_file:
                self._to_trash(self.paths.characters / char.source_file)

    def _to_trash(self, path: Path) -> None:
        if path.is_file():
            target = unique_path(self.paths.trash, path.stem, path.suffix)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(path), target)

    @locked
    def import_world(self, data: bytes, filename: str, *, mirror: str | None = None) -> ImportResult:
        """Store a SillyTavern World Info file as a world."""
        self._check_size(data, filename)
        book = parse_world_info(data, filename)
        with self.db.session() as conn, transaction(conn):
            wid = worlds.insert_world(conn, book, name=book.name or Path(filename).stem)
            if mirror is not None:
                conn.execute("UPDATE worlds SET source_file = ?, source_mtime = ? WHERE id = ?",
                             (mirror, (self.paths.worlds / mirror).stat().st_mtime, wid))
            else:
                self.write_world_file(conn, wid)
            name = worlds.get_world(conn, wid).name
        return ImportResult(filename, "imported", "world", f"{name}, {len(book.entries)} entries", wid)

    def write_world_file(self, conn: Any, wid: int) -> Path | None:
        """(Re)write a standalone world's World Info JSON in worlds/ (card books stay in their card)."""
        world = worlds.get_world(conn, wid)
        if world.character_id is not None:
            return None
        row = conn.execute("SELECT source_file FROM worlds WHERE id = ?", (wid,)).fetchone()
        current = self.paths.worlds / row["source_file"] if row["source_file"] else None
        if current is not None:
            self._keep_external_edit(conn, current, "world", wid)
        path = current or unique_path(self.paths.worlds, safe_stem(world.name), ".json")
        mtime = write_atomic(path, export_world_info_json(world.lorebook()))
        conn.execute("UPDATE worlds SET source_file = ?, source_mtime = ? WHERE id = ?", (path.name, mtime, wid))
        return path

    def export_world(self, wid: int) -> tuple[bytes, str]:
        """A world as SillyTavern World Info JSON bytes and a file name."""
        with self.db.session() as conn:
            world = worlds.get_world(conn, wid)
        return export_world_info_json(world.lorebook()), f"{safe_stem(world.name)}.json"

    @locked
    def save_world(self, wid: int, entries: list[Any], name: str | None = None) -> worlds.World:
        """Replace a world's entries (history kept, files rewritten)."""
        with self.db.session() as conn, transaction(conn):
            before = worlds.get_world(conn, wid).public()
            worlds.replace_entries(conn, wid, entries, name=name)
            after = worlds.get_world(conn, wid)
            record_change(conn, "world", wid, "update", before, after.public())
            if after.character_id is not None:
                self.write_character_file(conn, after.character_id)
            else:
                self.write_world_file(conn, wid)
            return after

    @locked
    def create_world(self, name: str) -> int:
        """An empty world."""
        with self.db.session() as conn, transaction(conn):
            wid = worlds.insert_world(conn, LoreBook(name=name, entries=[]), name=name)
            self.write_world_file(conn, wid)
        return wid

    @locked
    def delete_world(self, wid: int) -> None:
        """Delete a world; its entries stay in history and its file goes to trash/."""
        with self.db.session() as conn, transaction(conn):
            world = worlds.get_world(conn, wid)
            row = conn.execute("SELECT source_file FROM worlds WHERE id = ?", (wid,)).fetchone()
            record_change(conn, "world", wid, "delete", world.public(), None)
            worlds.delete_world(conn, wid)
            if row["source_file"]:
                self._to_trash(self.paths.worlds / row["source_file"])


__all__ = ["Library", "ImportResult", "NotFound", "LoreBook"]
