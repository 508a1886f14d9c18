"""Card books and the worlds that hold them: link or store an embedded book, apply an edited one, snapshots.

A card's `character_book` lives in a world. Importing a card whose book equals (key for key, type for type) a
world already in the library links the character to that world; any other book becomes a new world owned by the
character, whose name is made unique while the book keeps its own name. History snapshots of worlds hold the
whole file-level object (World Info or character_book), so a restore from history gives back the same file.
Callers own the transaction and rewrite the mirror files of the worlds and characters these functions report.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from neuralrp.db.connection import Connection
from neuralrp.db.history import record_change
from neuralrp.errors import InvalidInput
from neuralrp.library import worlds
from neuralrp.library.worldfile import (
    CHARACTER_BOOK,
    WORLD_INFO,
    LoreBook,
    export_character_book,
    export_world_info,
    parse_character_book,
    world_info_from_object,
)


def canonical(value: Any) -> str:
    """JSON text that differs whenever a key, a value or a type differs (true is not 1, 1 is not 1.0)."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, allow_nan=False)


def same_json(a: Any, b: Any) -> bool:
    """Whether two JSON values are equal key for key and type for type."""
    return canonical(a) == canonical(b)


@dataclass
class Touched:
    """What a book change wrote to, so the caller rewrites those mirror files."""

    worlds: set[int] = field(default_factory=set)
    characters: set[int] = field(default_factory=set)

    def add_world(self, conn: Connection, world_id: int) -> None:
        """A world changed: its file and the card files of every character whose book it is."""
        self.worlds.add(world_id)
        self.characters.update(worlds.book_characters(conn, world_id))


def world_snapshot(world: worlds.World) -> dict[str, Any]:
    """A world as change history keeps it: its name, owner and the whole file-level object."""
    book = world.lorebook()
    fmt = world.extra.get("source", WORLD_INFO)
    data = export_character_book(book) if fmt == CHARACTER_BOOK else export_world_info(book)
    return {"name": world.name, "character_id": world.character_id, "format": fmt, "file": data}


def file_snapshot(name: str, fmt: str, data: Any) -> dict[str, Any]:
    """A snapshot of a file that is not (or not yet) the world's content: a mirror edited outside NeuralRP."""
    return {"name": name, "character_id": None, "format": fmt, "file": data}


def book_from_snapshot(snapshot: Any, label: str) -> LoreBook:
    """The book a world snapshot holds; InvalidInput for snapshots older than whole-file ones."""
    if not isinstance(snapshot, dict) or "file" not in snapshot:
        raise InvalidInput(f"{label} holds no whole World Info file (it predates them) and cannot be restored")
    name = str(snapshot.get("name") or "")
    if snapshot.get("format") == CHARACTER_BOOK:
        return parse_character_book(snapshot["file"], name)
    return world_info_from_object(snapshot["file"], name)


def card_book(conn: Connection, character_id: int) -> dict[str, Any] | None:
    """The character's card book as its card file carries it, or None."""
    world_id = worlds.linked_world_id(conn, character_id)
    return None if world_id is None else export_character_book(worlds.get_world(conn, world_id).lorebook())


def store_card_book(conn: Connection, character_id: int, raw: dict[str, Any], card_name: str) -> int:
    """Give a new character its card's book: link an equal world, else a new world it owns; returns the world."""
    book = parse_character_book(raw, card_name)
    for world in worlds.worlds_named(conn, book.name):
        if same_json(export_character_book(world.lorebook()), raw):
            worlds.link_character(conn, character_id, world.id)
            return world.id
    world_id = worlds.insert_world(conn, book, character_id=character_id, name=book.name or f"{card_name}'s lorebook")
    record_change(conn, "world", world_id, "create", None, world_snapshot(worlds.get_world(conn, world_id)),
                  f"the book of {card_name}'s card")
    return world_id


def apply_card_book(conn: Connection, character_id: int, raw: dict[str, Any] | None, card_name: str,
                    note: str) -> Touched:
    """A card came with this book (None: no book): make the library hold it; unchanged books change nothing.

    A changed book replaces the content of the world holding it (the world keeps its name; a world other cards
    share changes for them too). A card without a book lets go of its world, which stays as a world of its own.
    """
    touched = Touched()
    world_id = worlds.linked_world_id(conn, character_id)
    if world_id is None:
        if raw is not None:
            touched.add_world(conn, store_card_book(conn, character_id, raw, card_name))
        return touched
    world = worlds.get_world(conn, world_id)
    if raw is not None and same_json(export_character_book(world.lorebook()), raw):
        return touched
    before = world_snapshot(world)
    if raw is None:
        touched.characters.add(character_id)
        if world.character_id == character_id:
            worlds.set_owner(conn, world_id, None)
            touched.worlds.add(world_id)
        worlds.unlink_character(conn, character_id)
        record_change(conn, "world", world_id, "update", before, world_snapshot(worlds.get_world(conn, world_id)),
                      f"{note}: {card_name}'s card has no book any more; the world is kept on its own")
        return touched
    worlds.replace_book(conn, world_id, parse_character_book(raw, card_name))
    record_change(conn, "world", world_id, "update", before, world_snapshot(worlds.get_world(conn, world_id)), note)
    touched.add_world(conn, world_id)
    return touched
