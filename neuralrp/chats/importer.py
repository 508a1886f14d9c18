"""Import any mix of files: cards (.png/.json), World Info (.json), chats (.jsonl) and SillyTavern's settings.json
(its personas), or whole folders."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path, PurePath
from typing import Any

from neuralrp.chats.st_io import import_st_chat
from neuralrp.errors import InvalidInput, NeuralRPError
from neuralrp.library.safejson import load_json
from neuralrp.library.service import ImportResult, Library
from neuralrp.library.stpersonas import import_st_personas

log = logging.getLogger(__name__)
SUFFIXES = (".png", ".json", ".jsonl")


def display_name(filename: str) -> str:
    """Only the last part of a client-given file name (never used as a path)."""
    return PurePath(filename.replace("\\", "/")).name or "(unnamed)"


def looks_like_world(obj: Any) -> bool:
    """World Info: a .json whose top level has an `entries` object (SillyTavern's world files, which may carry a
    `name` too) and no card-only field, or `entries` of any shape and no card field at all."""
    if not isinstance(obj, dict) or "entries" not in obj:
        return False
    if isinstance(obj["entries"], dict):
        return not ({"spec", "data", "char_name", "first_mes", "personality"} & obj.keys())
    return not ({"spec", "data", "name", "char_name"} & obj.keys())


def st_settings(obj: Any) -> str | None:
    """"personas" for SillyTavern's settings.json with personas (or its personas backup), "settings" for one
    without any, None for any other file."""
    if not isinstance(obj, dict):
        return None
    section = obj.get("power_user") if "power_user" in obj else obj
    if not isinstance(section, dict) or not ("power_user" in obj or "persona_descriptions" in obj):
        return None
    return "personas" if isinstance(section.get("personas"), dict) and section["personas"] else "settings"


def _import_json(library: Library, data: bytes, name: str) -> ImportResult:
    """A .json file: World Info, SillyTavern settings (personas) or a card (the file is parsed once to tell)."""
    obj = load_json(data, name)
    if looks_like_world(obj):
        return library.import_world(data, name)
    settings = st_settings(obj)
    if settings == "settings":
        return ImportResult(name, "skipped", "personas", "SillyTavern settings without personas")
    if settings == "personas":
        report = import_st_personas(library, data, name).public()
        status = "imported" if report["imported"] else "skipped"
        return ImportResult(name, status, "personas", f"{report['imported']} imported, {report['skipped']} "
                            "already in the library")
    return library.import_card(data, name)


def import_bytes(library: Library, data: bytes, filename: str, *, card_only: bool = False) -> ImportResult:
    """Import one file's bytes by its type (card_only: a card, whatever it looks like); errors become an 'error'
    result naming the problem."""
    name = display_name(filename)
    suffix = PurePath(name).suffix.lower()
    if suffix not in SUFFIXES:
        return ImportResult(name, "skipped", None, "not a card, world or chat file (.png, .json, .jsonl)")
    try:
        if suffix == ".jsonl":
            return _import_chat(library, data, name)
        if suffix == ".json" and not card_only:
            return _import_json(library, data, name)
        return library.import_card(data, name)
    except NeuralRPError as e:
        message = e.message if e.message.startswith(name) else f"{name}: {e.message}"
        kind = "chat" if suffix == ".jsonl" else None
        return ImportResult(name, "error", kind, message)
    except OSError as e:  # a file the library could not write (name too long, disk full): report it, go on
        return ImportResult(name, "error", None, f"{name}: could not be stored: {e.strerror or e}")


def _import_chat(library: Library, data: bytes, name: str) -> ImportResult:
    """One transaction of bulk inserts; the library's after-import hooks then start the deferred indexing."""
    library._check_size(data, name)
    with library.db.session() as conn:
        chat_id, note = import_st_chat(conn, data, name)
    for hook in library.after_chat_import:
        hook()
    return ImportResult(name, "imported", "chat", note, chat_id)


def walk(paths: list[Path]) -> Iterator[Path]:
    """Files named directly, plus importable files inside folders (sorted)."""
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
        else:
            yield path


def import_paths(library: Library, paths: list[Path]) -> list[ImportResult]:
    """Import files and folders from disk."""
    results = []
    for path in walk(paths):
        try:
            data = path.read_bytes()
        except OSError as e:
            results.append(ImportResult(str(path), "error", None, f"cannot read: {e.strerror}"))
            continue
        result = import_bytes(library, data, path.name)
        result.file = str(path)
        results.append(result)
    return results


__all__ = ["import_bytes", "import_paths", "InvalidInput"]
