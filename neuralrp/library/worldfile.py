"""Lorebooks: SillyTavern World Info JSON and card `character_book`, to and from one normalized form.

A normalized entry is a plain dict with the keys of ENTRY_KEYS:
  uid, keys, secondary_keys, comment, content, constant, selective, selective_logic, order,
  position (ST World Info enum 0-7), enabled, probability, use_probability, depth,
  extra  - every field of the source entry that is not modelled, in the source's own naming,
  origin - {"absent": [source paths that were missing], "quirks": {source path: value as found}} for
           modelled fields the file wrote unusually (null, 0/1 for booleans, ...); None for new entries,
  canon_law - NeuralRP's "always known" flag, stored in both formats as `extensions.neuralrp.canon_law` of
           the entry (written when true or when the file had it; absent reads as false).
Export writes untouched fields back exactly as found (absent stays absent, null stays null), so
parse -> export in the same format gives equivalent JSON. Every bad input raises `InvalidInput`.
"""

from __future__ import annotations

import copy
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from neuralrp.errors import InvalidInput
from neuralrp.library.safejson import MAX_JSON_DEPTH, check_json_tree, dump_json, load_json, type_name
from neuralrp.library.wifields import (
    BOOK_EXT,
    BOOK_FIELDS,
    BOOK_TOP,
    MISSING,
    WI_FIELDS,
    WI_MODELLED,
    Field,
    bad_value,
    coerce,
    get_path,
    set_path,
)

log = logging.getLogger(__name__)

WORLD_INFO = "world_info"
CHARACTER_BOOK = "character_book"
ENTRY_KEYS = tuple(
    "uid keys secondary_keys comment content constant selective selective_logic order position enabled"
    " probability use_probability depth".split()
)
# World Info fields that a character_book entry keeps in `extensions`, in snake_case (ST's conversion)
_WI_EXT_NAMES = (
    "excludeRecursion preventRecursion delayUntilRecursion displayIndex group groupOverride groupWeight"
    " scanDepth caseSensitive matchWholeWords useGroupScoring automationId role vectorized sticky cooldown"
    " delay ignoreBudget matchPersonaDescription matchCharacterDescription matchCharacterPersonality"
    " matchCharacterDepthPrompt matchScenario matchCreatorNotes triggers outletName"
).split()
WI_TO_BOOK_EXT = {name: re.sub(r"([A-Z])", r"_\1", name).lower() for name in _WI_EXT_NAMES}
BOOK_EXT_TO_WI = {v: k for k, v in WI_TO_BOOK_EXT.items()}


@dataclass
class LoreBook:
    """A normalized lorebook: name, entries, and the top-level fields not modelled."""

    name: str
    entries: list[dict[str, Any]]
    extra: dict[str, Any] = field(default_factory=dict)  # other top-level keys, source naming
    source: str = WORLD_INFO  # WORLD_INFO or CHARACTER_BOOK: the naming used by entry `extra`
    name_in_file: bool = False  # whether the source object carried a `name` key


def _same(a: Any, b: Any) -> bool:
    """Equal as JSON values of the same type (True is not 1, 100 is not 100.0)."""
    return type(a) is type(b) and a == b


def _entry_from(
    entry: dict[str, Any], label: str, fields: tuple[Field, ...], uid_default: Any, extra: dict[str, Any]
) -> dict[str, Any]:
    """Build one normalized entry; `origin` records absent fields and values written unusually."""
    raw = {}
    for fld in fields:
        for path in fld.paths:
            value = get_path(entry, path)
            if value is not MISSING:
                raw[path] = value
    out: dict[str, Any] = {}
    absent: list[str] = []
    quirks: dict[str, Any] = {}
    for fld in fields:
        value = out[fld.norm] = fld.read(raw, uid_default, label)
        canonical = fld.write(value)
        missing = [p for p in fld.paths if p not in raw]
        if missing or any(not _same(raw[p], canonical[p]) for p in fld.paths):
            absent += missing
            quirks.update({p: copy.deepcopy(raw[p]) for p in fld.paths if p in raw})
    out = {k: out[k] for k in ENTRY_KEYS}
    out["extra"] = extra
    out["origin"] = {"absent": absent, "quirks": quirks}
    return out


def _wi_entry(key: str, entry: Any) -> dict[str, Any]:
    """Normalize one World Info entry (`key` is its key in the `entries` object)."""
    label = f"entry '{key}'"
    if not isinstance(entry, dict):
        raise InvalidInput(f"{label} must be an object, got {type_name(entry)}")
    extra = {k: copy.deepcopy(v) for k, v in entry.items() if k not in WI_MODELLED}
    uid_default: Any = int(key) if key.isdecimal() and len(key) < 19 else key
    return {**_entry_from(entry, label, WI_FIELDS, uid_default, extra), "canon_law": _canon_of(entry, label)}


def _book_entry(index: int, entry: Any) -> dict[str, Any]:
    """Normalize one character_book entry."""
    label = f"entry {index}"
    if not isinstance(entry, dict):
        raise InvalidInput(f"{label} must be an object, got {type_name(entry)}")
    extra = {k: copy.deepcopy(v) for k, v in entry.items() if k not in BOOK_TOP}
    ext = entry.get("extensions", MISSING)
    if isinstance(ext, dict):
        extra["extensions"] = {k: copy.deepcopy(v) for k, v in ext.items() if k not in BOOK_EXT}
    elif ext is None:
        extra["extensions"] = None
    elif ext is not MISSING:
        raise bad_value(label, "extensions", "an object", ext)
    return {**_entry_from(entry, label, BOOK_FIELDS, index, extra), "canon_law": _canon_of(entry, label)}


def _canon_of(entry: dict[str, Any], label: str) -> bool:
    """NeuralRP's canon-law flag of a source entry: `extensions.neuralrp.canon_law` (absent = false)."""
    ext = entry.get("extensions")
    ours = ext.get("neuralrp") if isinstance(ext, dict) else None
    if not isinstance(ours, dict) or "canon_law" not in ours:
        return False
    if not isinstance(ours["canon_law"], bool):
        raise bad_value(label, "extensions.neuralrp.canon_law", "true or false", ours["canon_law"])
    return ours["canon_law"]


def _write_canon(out: dict[str, Any], entry: dict[str, Any]) -> dict[str, Any]:
    """Set `extensions.neuralrp.canon_law` of an exported entry: when true, or when the source file had it."""
    ext = out.get("extensions")
    ours = ext.get("neuralrp") if isinstance(ext, dict) else None
    had = isinstance(ours, dict) and "canon_law" in ours
    if entry.get("canon_law") or had:
        ext = ext if isinstance(ext, dict) else {}
        ext["neuralrp"] = {**(ours if isinstance(ours, dict) else {}), "canon_law": bool(entry.get("canon_law"))}
        out["extensions"] = ext
    return out


# --- parsing ----------------------------------------------------------------------------------------


def _book_name(obj: dict[str, Any], default: str) -> tuple[str, bool]:
    """The `name` of a lorebook object (validated) and whether it was present as text."""
    if obj.get("name") is None:
        return default, False
    if not isinstance(obj["name"], str):
        raise InvalidInput(f"field 'name' must be a string, got {type_name(obj['name'])}")
    return obj["name"], True


def world_info_from_object(obj: Any, name: str = "") -> LoreBook:
    """Normalize a decoded SillyTavern World Info object ({"entries": {"0": {...}}})."""
    if not isinstance(obj, dict):
        raise InvalidInput(f"World Info JSON must be an object, got {type_name(obj)}")
    check_json_tree(obj, "World Info JSON", MAX_JSON_DEPTH)
    entries = obj.get("entries")
    if not isinstance(entries, dict):
        raise InvalidInput(f"World Info field 'entries' must be an object, got {type_name(entries)}")
    book_name, present = _book_name(obj, name)
    parsed = [_wi_entry(str(key), entry) for key, entry in entries.items()]
    extra = {k: copy.deepcopy(v) for k, v in obj.items() if k != "entries" and (k != "name" or not present)}
    return LoreBook(book_name, parsed, extra, WORLD_INFO, present)


def parse_character_book(book: Any, name: str = "") -> LoreBook:
    """Normalize an embedded V2/V3 `character_book` object (or a lorebook_v3 `data`)."""
    if not isinstance(book, dict):
        raise InvalidInput(f"character_book must be an object, got {type_name(book)}")
    check_json_tree(book, "character_book", MAX_JSON_DEPTH)
    entries = book.get("entries")
    if not isinstance(entries, list):
        raise InvalidInput(f"character_book field 'entries' must be a list, got {type_name(entries)}")
    book_name, present = _book_name(book, name)
    parsed = [_book_entry(i, entry) for i, entry in enumerate(entries)]
    extra = {k: copy.deepcopy(v) for k, v in book.items() if k != "entries" and (k != "name" or not present)}
    return LoreBook(book_name, parsed, extra, CHARACTER_BOOK, present)


def _stem(filename: str) -> str:
    """A file name without folders and without a .json suffix."""
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    return base[:-5] if base.lower().endswith(".json") else base


def parse_world_info(data: bytes, filename: str) -> LoreBook:
    """Parse a lorebook file: ST World Info JSON, a lorebook_v3 file or a bare character_book."""
    try:
        obj = load_json(data, "World Info JSON")
        if not isinstance(obj, dict):
            raise InvalidInput(f"World Info JSON must be an object, got {type_name(obj)}")
        name = _stem(filename)
        if obj.get("spec") == "lorebook_v3":
            return parse_character_book(obj.get("data"), name)
        if isinstance(obj.get("entries"), list):
            return parse_character_book(obj, name)
        if not isinstance(obj.get("entries"), dict):
            raise InvalidInput("file is not a SillyTavern World Info file (no 'entries' object)")
        return world_info_from_object(obj, name)
    except InvalidInput as e:
        raise InvalidInput(f"{filename}: {e.message}" if filename else e.message) from e


# --- export -----------------------------------------------------------------------------------------


def _check_value(kind: str, value: Any, label: str, norm: str) -> Any:
    """Validate a normalized value before writing it (callers may have edited it)."""
    if value is None and kind in ("str", "strlist", "uid"):
        raise InvalidInput(f"{label}: field '{norm}' must not be null")
    if kind == "uid" and isinstance(value, str):
        return value
    return coerce("bool" if kind == "not_bool" else kind, value, label, norm)


def _origin(entry: dict[str, Any], label: str) -> tuple[set[str], dict[str, Any]]:
    """The entry's bookkeeping of absent fields and unusual source values (empty for new entries)."""
    origin = entry.get("origin") or {}
    if not isinstance(origin, dict):
        raise InvalidInput(f"{label}: 'origin' must be an object, got {type_name(origin)}")
    absent, quirks = origin.get("absent") or [], origin.get("quirks") or {}
    if not isinstance(absent, list) or not isinstance(quirks, dict):
        raise InvalidInput(f"{label}: 'origin' must hold an 'absent' list and a 'quirks' object")
    return {str(p) for p in absent}, quirks


def _entry_out(entry: dict[str, Any], fields: tuple[Field, ...], uid_default: Any, label: str) -> dict[str, Any]:
    """Write the modelled fields of one entry; untouched ones exactly as they were found."""
    absent, quirks = _origin(entry, label)
    out: dict[str, Any] = {}
    for fld in fields:
        value = _check_value(fld.kind, entry.get(fld.norm), label, fld.norm)
        if any(p in absent or p in quirks for p in fld.paths):
            found = {p: quirks[p] for p in fld.paths if p in quirks}
            if fld.read(found, uid_default, label) == value:
                for path, raw in found.items():
                    set_path(out, path, copy.deepcopy(raw))
                continue
        for path, raw in fld.write(value).items():
            set_path(out, path, raw)
    return out


def _extra_of(entry: dict[str, Any], label: str) -> dict[str, Any]:
    """The entry's `extra` dict (validated)."""
    extra = entry.get("extra")
    if extra is None:
        return {}
    if not isinstance(extra, dict):
        raise InvalidInput(f"{label}: 'extra' must be an object, got {type_name(extra)}")
    return extra


def _book_entry_out(index: int, entry: dict[str, Any]) -> dict[str, Any]:
    """One normalized entry (character_book naming) back to a character_book entry."""
    label = f"entry {index}"
    out = _entry_out(entry, BOOK_FIELDS, index, label)
    extra = copy.deepcopy(_extra_of(entry, label))
    ext_extra = extra.pop("extensions", MISSING)
    out.update(extra)
    if isinstance(ext_extra, dict):
        out["extensions"] = {**out.get("extensions", {}), **ext_extra}
    elif ext_extra is None and "extensions" not in out:
        out["extensions"] = None
    return _write_canon(out, entry)


def _wi_entry_out(entry: dict[str, Any], uid: Any, label: str) -> dict[str, Any]:
    """One normalized entry (World Info naming) back to a World Info entry, with this uid."""
    out = _entry_out({**entry, "uid": uid}, WI_FIELDS, None, label)
    out.update(copy.deepcopy(_extra_of(entry, label)))
    return _write_canon(out, entry)


def _unique_uids(entries: list[dict[str, Any]]) -> list[Any]:
    """One uid per entry; a repeated or missing uid gets the next free number."""
    used: set[str] = set()
    numbers = [u for u in (e.get("uid") for e in entries) if isinstance(u, int) and not isinstance(u, bool)]
    next_free = max(numbers, default=-1) + 1
    uids = []
    for entry in entries:
        uid = entry.get("uid")
        if uid is None or str(uid) in used:
            log.warning("lorebook entry uid %s repeated or missing; renumbered to %d", uid, next_free)
            uid, next_free = next_free, next_free + 1
        used.add(str(uid))
        uids.append(uid)
    return uids


def _convert_entries(book: LoreBook, convert: Callable[[int, dict[str, Any]], dict[str, Any]]) -> LoreBook:
    """A copy of the book whose entries were converted to the other naming."""
    entries = [convert(i, e) for i, e in enumerate(book.entries)]
    target = WORLD_INFO if book.source == CHARACTER_BOOK else CHARACTER_BOOK
    return LoreBook(book.name, entries, {}, target, name_in_file=target == CHARACTER_BOOK)  # as ST names them


def _book_to_wi_entry(index: int, entry: dict[str, Any]) -> dict[str, Any]:
    """character_book-named entry -> World Info-named entry (SillyTavern's mapping)."""
    extra = _extra_of(entry, f"entry {index}")
    raw_ext = extra.get("extensions")
    ext = raw_ext if isinstance(raw_ext, dict) else {}
    wi_extra = {BOOK_EXT_TO_WI.get(k, k): copy.deepcopy(v) for k, v in ext.items() if k != "neuralrp"}
    if "neuralrp" in ext:  # ours stays under `extensions` in both formats
        wi_extra["extensions"] = {"neuralrp": copy.deepcopy(ext["neuralrp"])}
    wi_extra.setdefault("displayIndex", index)
    wi_extra["addMemo"] = bool(entry.get("comment"))
    uid = entry.get("uid")
    return {
        **{k: entry.get(k) for k in ENTRY_KEYS},
        "uid": uid if isinstance(uid, int) else index,
        "extra": wi_extra,
        "canon_law": bool(entry.get("canon_law")),
    }


def _wi_to_book_entry(index: int, entry: dict[str, Any]) -> dict[str, Any]:
    """World Info-named entry -> character_book-named entry (SillyTavern's mapping)."""
    extra = _extra_of(entry, f"entry {index}")
    ext = {WI_TO_BOOK_EXT.get(k, k): copy.deepcopy(v) for k, v in extra.items() if k not in ("addMemo", "extensions")}
    if isinstance(extra.get("extensions"), dict):  # a World Info entry's own `extensions` (ours) merge in
        ext.update(copy.deepcopy(extra["extensions"]))
    return {**{k: entry.get(k) for k in ENTRY_KEYS}, "extra": {"use_regex": True, "extensions": ext},
            "canon_law": bool(entry.get("canon_law"))}


def export_world_info(book: LoreBook) -> dict[str, Any]:
    """The book as a SillyTavern World Info object; a card book also keeps itself as `originalData`."""
    if book.source == CHARACTER_BOOK:
        converted = export_world_info(_convert_entries(book, _book_to_wi_entry))
        converted["originalData"] = export_character_book(book)
        return converted
    uids = _unique_uids(book.entries)
    entries = {str(u): _wi_entry_out(e, u, f"entry '{u}'") for u, e in zip(uids, book.entries, strict=True)}
    out: dict[str, Any] = {"entries": entries}
    if book.name_in_file:
        out["name"] = book.name
    out.update(copy.deepcopy(book.extra))
    return out


def export_world_info_json(book: LoreBook) -> bytes:
    """World Info file bytes (UTF-8, 4-space indent, as SillyTavern saves them)."""
    return dump_json(export_world_info(book), "World Info", indent=4).encode("utf-8")


def _original_if_unchanged(book: LoreBook) -> dict[str, Any] | None:
    """A World Info file's `originalData` book, if its entries still say what the file's entries say."""
    original = book.extra.get("originalData")
    if not isinstance(original, dict):
        return None
    try:
        parsed = parse_character_book(original, book.name)
    except InvalidInput:
        return None
    if len(parsed.entries) != len(book.entries):
        return None
    for old, new in zip(parsed.entries, book.entries, strict=True):
        if any(old[k] != new.get(k) for k in ENTRY_KEYS if k != "uid") or old["canon_law"] != bool(
                new.get("canon_law")):
            return None
    return copy.deepcopy(original)


def export_character_book(book: LoreBook) -> dict[str, Any]:
    """The book as a card `character_book` object (V2/V3 shape)."""
    if book.source != CHARACTER_BOOK:
        original = _original_if_unchanged(book)
        if original is not None:
            return original
        return export_character_book(_convert_entries(book, _wi_to_book_entry))
    out: dict[str, Any] = {}
    if book.name_in_file:  # a card book without a name stays without one
        out["name"] = book.name
    out.update(copy.deepcopy(book.extra))
    out["entries"] = [_book_entry_out(i, e) for i, e in enumerate(book.entries)]
    return out


def new_entry(uid: int, keys: list[str], content: str, **fields: Any) -> dict[str, Any]:
    """A fresh normalized entry with SillyTavern's defaults (fields override them by normalized name)."""
    entry: dict[str, Any] = {f.norm: copy.deepcopy(f.default) for f in WI_FIELDS}
    entry.update(uid=uid, keys=list(keys), content=content, extra={}, origin=None)
    unknown = set(fields) - set(ENTRY_KEYS) - {"extra"}
    if unknown:
        raise InvalidInput(f"unknown lorebook entry field(s): {', '.join(sorted(unknown))}")
    entry.update(fields)
    return entry
