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

from neuralrp.db.connection import Connection, Database, transaction
from neuralrp.db.history import get_change, record_change
from neuralrp.errors import Conflict, InvalidInput, NotFound
from neuralrp.library import books, personas, worlds
from neuralrp.library import characters as chars
from neuralrp.library.avatars import avatar_png
from neuralrp.library.cardfile import ParsedCard, card_from_object, export_card_json, export_card_png, parse_card
from neuralrp.library.files import LibraryPaths, confined, safe_stem, unique_path, write_atomic
from neuralrp.library.worldfile import WORLD_INFO, LoreBook, export_world_info_json, parse_world_info

log = logging.getLogger(__name__)
T = TypeVar("T")
CARD_SUFFIXES = (".png", ".json")


@dataclass
class ImportResult:
    """What happened to one file."""

    file: str
    status: str  # imported | skipped | error
    kind: str | None = None  # character | world | chat | personas
    detail: str = ""
    id: int | None = None

    def line(self) -> str:
        """One line for the CLI."""
        what = f" {self.kind}" if self.kind else ""
        return f"{self.status}{what}: {self.file}" + (f" ({self.detail})" if self.detail else "")


def card_hash(card: dict[str, Any]) -> str:
    """Content hash of a stored card, to spot re-imports of the same card."""
    return hashlib.sha256(json.dumps(card, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def _content_hash(card: dict[str, Any]) -> str:
    """card_hash without the spec label: the V2 `chara` and V3 `ccv3` copies SillyTavern writes are one card."""
    return card_hash({k: v for k, v in card.items() if k not in ("spec", "spec_version")})


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
        # called (in the importing thread) after a chat import committed: the app wakes its backfill worker
        self.after_chat_import: list[Callable[[], None]] = []
        # characters/ files left alone as duplicates, with the mtime they were reported at (folder sync)
        self.skipped_mirrors: dict[str, float] = {}

    def _check_size(self, data: bytes, filename: str) -> None:
        if len(data) > self.max_bytes:
            raise InvalidInput(f"{filename}: file is {len(data) // 1024 // 1024} MiB, over the "
                               f"{self.max_bytes // 1024 // 1024} MiB upload limit")

    def parse(self, data: bytes, filename: str) -> ParsedCard:
        """Parse card bytes (size-limited) without storing anything."""
        self._check_size(data, filename)
        return parse_card(data, filename, max_chunk_size=self.max_bytes, max_total_size=self.max_bytes * 2)

    def duplicate_of(self, conn: Connection, parsed: ParsedCard) -> chars.Character | None:
        """A library character with the same whole card: data, book and picture bytes all equal."""
        card = parsed.to_card()
        book = card["data"].get("character_book")
        digest = _content_hash(chars.as_v2(card))
        picture = hashlib.sha256(parsed.avatar_png or b"").digest()
        for char in chars.global_characters_named(conn, parsed.name.strip()):
            if (_content_hash(char.card) == digest and books.same_json(books.card_book(conn, char.id), book)
                    and hashlib.sha256(self.avatar_bytes(char) or b"").digest() == picture):
                return char
        return None

    @locked
    def import_card(self, data: bytes, filename: str, *, mirror: str | None = None) -> ImportResult:
        """Store a card file; `mirror` names its file in characters/ when it came from there.

        A card the library already has (whole-card duplicate) is skipped. A dropped mirror file that duplicates a
        character whose own file is gone becomes that character's file instead.
        """
        parsed = self.parse(data, filename)
        card = parsed.to_card()
        with self.db.session() as conn, transaction(conn):
            existing = self.duplicate_of(conn, parsed)
            if existing is not None:
                return self._known_card(conn, existing, filename, mirror)
            cid = chars.insert_character(conn, card)
            self._store_avatar(conn, cid, parsed.avatar_png)
            if parsed.character_book:
                books.store_card_book(conn, cid, parsed.character_book, parsed.name)
            record_change(conn, "character", cid, "create", None, card, f"imported from {Path(filename).name}")
            if mirror is not None:
                chars.set_source(conn, cid, mirror, (self.paths.characters / mirror).stat().st_mtime)
            else:
                self.write_character_file(conn, cid)
        return ImportResult(filename, "imported", "character", parsed.name, cid)

    def _known_card(self, conn: Connection, char: chars.Character, filename: str,
                    mirror: str | None) -> ImportResult:
        """The import of a card the library has: skipped, or adopted as the mirror file it lost."""
        own = self.paths.characters / char.source_file if char.source_file else None
        if mirror is not None and (own is None or not own.is_file()):
            chars.set_source(conn, char.id, mirror, (self.paths.characters / mirror).stat().st_mtime)
            return ImportResult(filename, "imported", "character", f"the file of {char.name} again", char.id)
        where = f" (characters/{char.source_file})" if char.source_file else ""
        return ImportResult(filename, "skipped", "character",
                            f"the same card is already in the library: {char.name}, id {char.id}{where}", char.id)

    def _store_avatar(self, conn: Connection, cid: int, avatar: bytes | None) -> None:
        if avatar is None:
            return
        char = chars.get_character(conn, cid)
        path = self.paths.avatars / f"{char.uid}.png"
        write_atomic(path, avatar)
        chars.set_avatar_path(conn, cid, str(path.relative_to(self.paths.data_dir)))

    @locked
    def set_avatar(self, cid: int, data: bytes, filename: str) -> chars.Character:
        """Replace a character's picture: a new avatar file, the card PNG in characters/ rewritten with it.

        The new picture goes to a new file and the DB points at it in the same transaction as the card file
        rewrite; the old picture moves to trash/ only after that commits, so a failure loses nothing.
        """
        self._check_size(data, filename)
        png = avatar_png(data, filename)
        with self.db.session() as conn:
            with transaction(conn):
                char = chars.get_character(conn, cid)
                path = unique_path(self.paths.avatars, char.uid, ".png")
                write_atomic(path, png)
                chars.set_avatar_path(conn, cid, str(path.relative_to(self.paths.data_dir)))
                record_change(conn, "character", cid, "update", {"avatar_path": char.avatar_path},
                              {"avatar_path": str(path.relative_to(self.paths.data_dir))}, "new avatar picture")
                if char.scope_chat_id is None:
                    self.write_character_file(conn, cid)
            self._to_trash(self.avatar_file(char.avatar_path))
            return chars.get_character(conn, cid)

    @locked
    def set_persona_avatar(self, pid: int, data: bytes, filename: str) -> personas.Persona:
        """Give a persona a picture (a new file; the old one moves to trash/ once the DB points at the new)."""
        self._check_size(data, filename)
        png = avatar_png(data, filename)
        with self.db.session() as conn:
            with transaction(conn):
                persona = personas.get_persona(conn, pid)
                path = unique_path(self.paths.avatars, f"persona-{pid}", ".png")
                write_atomic(path, png)
                personas.set_avatar_path(conn, pid, str(path.relative_to(self.paths.data_dir)))
            self._to_trash(self.avatar_file(persona.avatar_path))
            return personas.get_persona(conn, pid)

    def persona_avatar(self, persona: personas.Persona) -> bytes | None:
        """A persona's picture, if it has one."""
        path = self.avatar_file(persona.avatar_path)
        return path.read_bytes() if path is not None and path.is_file() else None

    def card_for_export(self, conn: Connection, cid: int) -> tuple[dict[str, Any], bytes | None]:
        """The stored card with its linked world put back as character_book, plus the avatar bytes."""
        char = chars.get_character(conn, cid)
        card = json.loads(json.dumps(char.card))
        book = books.card_book(conn, cid)
        if book is not None:
            card["data"]["character_book"] = book
        return card, self.avatar_bytes(char)

    def rewrite(self, conn: Connection, touched: books.Touched) -> None:
        """Rewrite the mirror files of what a book change wrote to (world files, then card files)."""
        for wid in sorted(touched.worlds):
            self.write_world_file(conn, wid)
        for cid in sorted(touched.characters):
            if chars.get_character(conn, cid).scope_chat_id is None:
                self.write_character_file(conn, cid)

    def take_picture(self, conn: Connection, cid: int, png: bytes | None) -> Path | None:
        """A card file's picture, when it differs from the stored one, becomes the avatar (a new file); returns
        the old avatar file for the caller to move to trash/ once the transaction commits."""
        char = chars.get_character(conn, cid)
        if png is None or png == self.avatar_bytes(char):
            return None
        path = unique_path(self.paths.avatars, char.uid, ".png")
        write_atomic(path, png)
        chars.set_avatar_path(conn, cid, str(path.relative_to(self.paths.data_dir)))
        return self.avatar_file(char.avatar_path)

    def avatar_file(self, stored: str | None) -> Path | None:
        """The avatar file a stored avatar_path names, or None when none is stored or it would leave avatars/."""
        if not stored:
            return None
        return confined(self.paths.data_dir, self.paths.avatars.relative_to(self.paths.data_dir).as_posix(), stored)

    def avatar_bytes(self, char: chars.Character) -> bytes | None:
        """The avatar PNG, if one is stored."""
        path = self.avatar_file(char.avatar_path)
        return path.read_bytes() if path is not None and path.is_file() else None

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

    def write_character_file(self, conn: Connection, cid: int, *, note: str = "") -> Path:
        """(Re)write the character's SillyTavern-readable PNG in characters/ (an outside edit goes to history)."""
        char = chars.get_character(conn, cid)
        card, avatar = self.card_for_export(conn, cid)
        current = self.paths.characters / char.source_file if char.source_file else None
        if current is not None:
            self._keep_external_edit(conn, current, "character", cid, char.source_mtime, note)
        path = current or unique_path(self.paths.characters, safe_stem(char.name), ".png")
        if path.suffix.lower() == ".json":
            mtime = write_atomic(path, export_card_json(card))
        else:
            mtime = write_atomic(path, export_card_png(card, avatar))
        chars.set_source(conn, cid, path.name, mtime)
        return path

    def _keep_external_edit(self, conn: Connection, path: Path, entity: str, entity_id: int,
                            stored_mtime: float | None, note: str = "") -> None:
        """Before overwriting a mirror file changed outside NeuralRP, keep its whole content in history."""
        table = "characters" if entity == "character" else "worlds"
        if not path.is_file() or abs(path.stat().st_mtime - (stored_mtime or 0)) <= 0.001:
            return
        raw = path.read_bytes()
        try:
            content: Any = (self.parse(raw, path.name).to_card() if entity == "character"
                            else books.file_snapshot(path.stem, WORLD_INFO, json.loads(raw)))
        except (InvalidInput, ValueError):
            content = {"unreadable_file_bytes": len(raw)}
        record_change(conn, entity, entity_id, "sync_conflict", content, None,
                      note or f"{table}/{path.name} was edited outside NeuralRP; the newer library edit replaced it")

    def whole_card(self, conn: Connection, cid: int) -> dict[str, Any]:
        """The card as its file carries it (its book included), as history keeps it."""
        return self.card_for_export(conn, cid)[0]

    def apply_card(self, conn: Connection, cid: int, card: Any, note: str) -> books.Touched:
        """Store a changed card; a `character_book` it carries (null: none) goes to the world holding the book.

        A card object without the `character_book` key leaves the book as it is. Returns what the caller rewrites.
        """
        parsed = card_from_object(card)
        holder = card.get("data") if parsed.spec in ("v2", "v3") else card
        chars.update_card(conn, cid, chars.as_v2(card))
        touched = books.Touched(characters={cid})
        if isinstance(holder, dict) and "character_book" in holder:
            got = books.apply_card_book(conn, cid, parsed.character_book, parsed.name, note)
            touched.worlds |= got.worlds
            touched.characters |= got.characters
        return touched

    @locked
    def update_card(self, cid: int, card: Any) -> chars.Character:
        """Replace a card, its book too when it carries one (history kept, files rewritten); a bad card changes
        nothing."""
        with self.db.session() as conn, transaction(conn):
            before = self.whole_card(conn, cid)
            touched = self.apply_card(conn, cid, card, "the book of an edited card")
            record_change(conn, "character", cid, "update", before, self.whole_card(conn, cid))
            self.rewrite(conn, touched)
            return chars.get_character(conn, cid)

    @locked
    def delete_character(self, cid: int, *, chats: str | None = None,
                         drop_chats: Callable[[Connection, int], int] | None = None) -> None:
        """Delete a character; its card is kept in history and its file in trash/.

        A character in chats needs a choice: chats="keep" (the chats stay; the character leaves their casts, its
        messages keep its name) or chats="delete" (`drop_chats(conn, cid)` deletes them, restorably, in the same
        transaction); without one it is refused, naming both.
        """
        with self.db.session() as conn, transaction(conn):
            char = chars.get_character(conn, cid)
            used = chars.cast_use_count(conn, cid)
            if used and chats not in ("keep", "delete"):
                raise Conflict(f"{char.name} is in {used} chat(s): choose chats=keep (the chats stay, without "
                               f"{char.name}) or chats=delete (they are deleted too, restorable for a while)")
            if used and chats == "delete" and drop_chats is not None:
                drop_chats(conn, cid)
            record_change(conn, "character", cid, "delete", self.whole_card(conn, cid), None)
            owned = [w for w in [worlds.linked_world_id(conn, cid)] if w is not None
                     and worlds.get_world(conn, w).character_id == cid]
            chars.delete_character(conn, cid)
            for wid in owned:  # a world that came with the card stays, as a world of its own with its own file
                self.write_world_file(conn, wid)
            if char.source_file:
                self._to_trash(confined(self.paths.data_dir, "characters", f"characters/{char.source_file}"))

    def recover_avatars(self) -> list[str]:
        """Move back from trash/ the pictures the DB names that are missing from images/avatars (after a restore,
        a picture replaced since the backup is there); returns their stored paths."""
        with self.db.session() as conn:
            stored = [c.avatar_path for c in chars.list_characters(conn, include_npcs=True)]
            stored += [p.avatar_path for p in personas.list_personas(conn)]
        back = []
        for rel in filter(None, stored):
            path = self.avatar_file(rel)
            if path is None or path.exists() or not (self.paths.trash / path.name).is_file():
                continue
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(str(self.paths.trash / path.name), path)
            except OSError as e:  # one picture that cannot come back must not stop the rest of the restore
                log.warning("could not move the picture %s back from trash/: %s", path.name, e)
                continue
            back.append(rel)
        if back:
            log.info("moved %d avatar picture(s) the database names back from trash/: %s", len(back), back)
        return back

    def _to_trash(self, path: Path | None) -> None:
        if path is not None and path.is_file():
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
                worlds.set_source(conn, wid, mirror, (self.paths.worlds / mirror).stat().st_mtime)
            else:
                self.write_world_file(conn, wid)
            name = worlds.get_world(conn, wid).name
        return ImportResult(filename, "imported", "world", f"{name}, {len(book.entries)} entries", wid)

    def write_world_file(self, conn: Connection, wid: int, *, note: str = "") -> Path | None:
        """(Re)write a standalone world's World Info JSON in worlds/ (card books stay in their card)."""
        world = worlds.get_world(conn, wid)
        if world.character_id is not None:
            return None
        current = self.paths.worlds / world.source_file if world.source_file else None
        if current is not None:
            self._keep_external_edit(conn, current, "world", wid, world.source_mtime, note)
        path = current or unique_path(self.paths.worlds, safe_stem(world.name), ".json")
        mtime = write_atomic(path, export_world_info_json(world.lorebook()))
        worlds.set_source(conn, wid, path.name, mtime)
        return path

    def export_world(self, wid: int) -> tuple[bytes, str]:
        """A world as SillyTavern World Info JSON bytes and a file name."""
        with self.db.session() as conn:
            world = worlds.get_world(conn, wid)
        return export_world_info_json(world.lorebook()), f"{safe_stem(world.name)}.json"

    @locked
    def save_world(self, wid: int, entries: list[Any], name: str | None = None) -> worlds.World:
        """Replace a world's entries (history keeps both whole files; world and card files rewritten)."""
        with self.db.session() as conn, transaction(conn):
            before = books.world_snapshot(worlds.get_world(conn, wid))
            worlds.replace_entries(conn, wid, entries, name=name)
            after = worlds.get_world(conn, wid)
            record_change(conn, "world", wid, "update", before, books.world_snapshot(after))
            touched = books.Touched()
            touched.add_world(conn, wid)
            self.rewrite(conn, touched)
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
            record_change(conn, "world", wid, "delete", books.world_snapshot(world), None)
            holders = worlds.book_characters(conn, wid)
            worlds.delete_world(conn, wid)
            self.rewrite(conn, books.Touched(characters=set(holders)))  # their cards lose the book
            if world.source_file:
                self._to_trash(confined(self.paths.data_dir, "worlds", f"worlds/{world.source_file}"))

    @locked
    def restore_change(self, change_id: int, *, side: str = "old") -> tuple[str, int]:
        """Put a character or world back as a history record holds it ('old': before the change, 'new': after);
        a deleted one comes back as new. Returns (entity type, id); the restore itself is recorded too."""
        with self.db.session() as conn, transaction(conn):
            change = get_change(conn, change_id)
            if change is None or change.entity_type not in ("character", "world"):
                raise NotFound(f"change {change_id} is not a recorded change of a character or world")
            snapshot = change.old if side == "old" else change.new
            if snapshot is None:
                raise InvalidInput(f"change {change_id} has no {side} state to restore")
            restore = self._restore_world if change.entity_type == "world" else self._restore_character
            entity_id, touched = restore(conn, change.entity_id, snapshot, f"restored change {change_id}")
            self.rewrite(conn, touched)
        return change.entity_type, entity_id

    def _restore_world(self, conn: Connection, wid: int, snapshot: Any, note: str) -> tuple[int, books.Touched]:
        book = books.book_from_snapshot(snapshot, note.replace("restored ", ""))
        touched = books.Touched()
        try:
            before: Any = books.world_snapshot(worlds.get_world(conn, wid))
        except NotFound:
            before, wid = None, worlds.insert_world(conn, book, name=str(snapshot.get("name") or book.name))
        else:
            worlds.replace_book(conn, wid, book)
            worlds.rename(conn, wid, str(snapshot.get("name") or book.name), book_too=False)
        record_change(conn, "world", wid, "restore", before, books.world_snapshot(worlds.get_world(conn, wid)), note)
        touched.add_world(conn, wid)
        return wid, touched

    def _restore_character(self, conn: Connection, cid: int, snapshot: Any,
                           note: str) -> tuple[int, books.Touched]:
        try:
            card_from_object(snapshot)
        except InvalidInput as e:
            raise InvalidInput(f"{note.replace('restored ', '')} holds no whole card to restore ({e.message})") from e
        try:
            before: Any = self.whole_card(conn, cid)
        except NotFound:
            before, cid = None, chars.insert_character(conn, snapshot)
        touched = self.apply_card(conn, cid, snapshot, note)
        record_change(conn, "character", cid, "restore", before, self.whole_card(conn, cid), note)
        return cid, touched


__all__ = ["Library", "ImportResult", "NotFound", "LoreBook"]
