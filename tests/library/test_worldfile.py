"""Lorebooks: SillyTavern World Info files and card character_books, normalized and back."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from neuralrp.errors import InvalidInput
from neuralrp.library.cardfile import parse_card
from neuralrp.library.worldfile import (
    CHARACTER_BOOK,
    ENTRY_KEYS,
    WORLD_INFO,
    LoreBook,
    export_character_book,
    export_world_info,
    export_world_info_json,
    new_entry,
    parse_character_book,
    parse_world_info,
    world_info_from_object,
)
from tests.conftest import FIXTURES

ELDORIA = FIXTURES / "worlds/st_Eldoria_release.json"
BOOK_CARDS = {"stc_Sakana_book.png": 14, "lide_ai_v3_zh.json": 27, "st_default_Seraphina.png": 4}


def _book_of(name: str) -> dict[str, Any]:
    """The character_book of a fixture card."""
    card = parse_card((FIXTURES / "cards" / name).read_bytes(), name)
    assert card.character_book is not None
    return card.character_book


def _wi(**entries: dict[str, Any]) -> bytes:
    """World Info JSON bytes from entries keyed by uid text."""
    return json.dumps({"entries": entries}).encode()


def _error(data: bytes, filename: str = "w.json") -> str:
    """Parse, expect InvalidInput, return its message."""
    with pytest.raises(InvalidInput) as info:
        parse_world_info(data, filename)
    return info.value.message


# --- World Info files -------------------------------------------------------------------------------


def test_eldoria_parses() -> None:
    book = parse_world_info(ELDORIA.read_bytes(), "Eldoria.json")
    assert (book.name, book.source, len(book.entries)) == ("Eldoria", WORLD_INFO, 4)
    first = book.entries[0]
    assert first["uid"] == 0
    assert first["keys"] == ["eldoria", "wood", "forest", "magical forest"]
    assert first["enabled"] is True and first["selective"] is False and first["position"] == 0
    assert first["probability"] == 100 and first["use_probability"] is True and first["depth"] == 4
    assert first["extra"] == {}
    assert set(first) == {*ENTRY_KEYS, "extra", "origin", "canon_law"} and first["canon_law"] is False


def test_eldoria_round_trip_is_exact() -> None:
    original = json.loads(ELDORIA.read_bytes())
    book = parse_world_info(ELDORIA.read_bytes(), "Eldoria.json")
    assert export_world_info(book) == original
    assert json.loads(export_world_info_json(book)) == original
    assert b'\n    "entries": {' in export_world_info_json(book)


def test_every_world_info_field_is_kept() -> None:
    entry = {
        "uid": 7,
        "key": ["a", "/re/i"],
        "keysecondary": ["b"],
        "comment": "memo",
        "content": "text",
        "constant": True,
        "selective": True,
        "selectiveLogic": 3,
        "order": 50,
        "position": 4,
        "disable": True,
        "probability": 40,
        "useProbability": True,
        "depth": 2,
        "role": None,
        "sticky": 0,
        "group": "g1,g2",
        "characterFilter": {"isExclude": True, "names": ["x"], "tags": []},
        "triggers": ["normal"],
        "vendorThing": {"deep": [1, None]},
    }
    obj = {"entries": {"7": entry}, "name": "Named", "extensions": {"x": 1}, "originalData": {"entries": []}}
    book = parse_world_info(json.dumps(obj).encode(), "file.json")
    norm = book.entries[0]
    assert book.name == "Named"
    assert (norm["selective_logic"], norm["position"], norm["enabled"], norm["probability"]) == (3, 4, False, 40)
    assert norm["extra"] == {
        k: entry[k] for k in ("role", "sticky", "group", "characterFilter", "triggers", "vendorThing")
    }
    assert book.extra == {"extensions": {"x": 1}, "originalData": {"entries": []}}
    assert export_world_info(book) == obj


def test_quirky_values_round_trip_exactly() -> None:
    entry = {"uid": "3", "key": ["k"], "constant": 1, "disable": 0, "probability": None, "order": 100.0}
    book = parse_world_info(_wi(**{"3": entry}), "q.json")
    norm = book.entries[0]
    assert (norm["uid"], norm["constant"], norm["enabled"], norm["probability"]) == (3, True, True, 100)
    assert export_world_info(book) == {"entries": {"3": entry}}


def test_edits_are_written() -> None:
    book = parse_world_info(ELDORIA.read_bytes(), "Eldoria.json")
    book.entries[0].update(content="new", enabled=False, probability=30, keys=["x"])
    book.entries[1]["depth"] = 4  # unchanged default stays absent
    out = export_world_info(book)["entries"]
    assert out["0"]["content"] == "new" and out["0"]["disable"] is True
    assert out["0"]["probability"] == 30 and out["0"]["key"] == ["x"]
    assert "depth" not in out["1"]


def test_new_entry_writes_every_field() -> None:
    book = LoreBook("New", [new_entry(0, ["dragon"], "Dragons breathe fire.", order=10)])
    entry = export_world_info(book)["entries"]["0"]
    assert entry["key"] == ["dragon"] and entry["order"] == 10 and entry["disable"] is False
    assert {"selectiveLogic", "probability", "useProbability", "depth", "uid"} <= set(entry)
    with pytest.raises(InvalidInput, match="unknown lorebook entry field"):
        new_entry(1, [], "", bogus=1)


def test_repeated_uids_are_renumbered() -> None:
    book = LoreBook("Dup", [new_entry(1, ["a"], "A"), new_entry(1, ["b"], "B")])
    entries = export_world_info(book)["entries"]
    assert list(entries) == ["1", "2"]
    assert entries["2"]["uid"] == 2 and entries["2"]["content"] == "B"
    assert book.entries[1]["uid"] == 1


def test_empty_world_is_valid() -> None:
    book = parse_world_info(b'{"entries": {}}', "empty.json")
    assert book.entries == [] and export_world_info(book) == {"entries": {}}


# --- character_book ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("card", "count"), sorted(BOOK_CARDS.items()))
def test_character_book_round_trip(card: str, count: int) -> None:
    original = _book_of(card)
    book = parse_character_book(original, "fallback")
    assert len(book.entries) == count and book.source == CHARACTER_BOOK
    assert export_character_book(book) == original
    assert json.dumps(export_character_book(book), sort_keys=True) == json.dumps(original, sort_keys=True)


@pytest.mark.parametrize("card", sorted(BOOK_CARDS))
def test_character_book_via_world_info_file_is_lossless(card: str) -> None:
    original = _book_of(card)
    book = parse_character_book(original)
    wi = export_world_info(book)
    assert wi["originalData"] == original
    back = parse_world_info(json.dumps(wi, ensure_ascii=False).encode(), "w.json")
    for a, b in zip(book.entries, back.entries, strict=True):
        assert {k: a[k] for k in ENTRY_KEYS} == {k: b[k] for k in ENTRY_KEYS}
    assert export_character_book(back) == original
    back.entries[0]["content"] = "edited"
    edited = export_character_book(back)
    assert edited["entries"][0]["content"] == "edited"
    assert edited["entries"][0]["keys"] == original["entries"][0]["keys"]


def test_seraphina_book_keeps_null_probability() -> None:
    book = parse_character_book(_book_of("st_default_Seraphina.png"))
    entry = book.entries[0]
    assert entry["probability"] == 100 and entry["use_probability"] is False
    assert entry["origin"]["quirks"] == {"extensions.probability": None}
    assert export_character_book(book)["entries"][0]["extensions"]["probability"] is None


def test_sakana_book_maps_to_st_world_info() -> None:
    book = parse_character_book(_book_of("stc_Sakana_book.png"))
    entry = export_world_info(book)["entries"]["1"]
    assert entry["position"] == 1 and entry["disable"] is False and entry["selective"] is True
    assert entry["excludeRecursion"] is False and entry["groupWeight"] == 100 and entry["automationId"] == ""
    assert entry["displayIndex"] == 1


def test_world_info_to_character_book_mapping() -> None:
    book = parse_world_info(ELDORIA.read_bytes(), "Eldoria.json")
    book.entries[0]["extra"] = {"excludeRecursion": True, "addMemo": True, "vendor": 1}
    out = export_character_book(book)
    assert out["name"] == "Eldoria"
    entry = out["entries"][0]
    assert entry["keys"] == ["eldoria", "wood", "forest", "magical forest"]
    assert (entry["insertion_order"], entry["enabled"], entry["position"], entry["use_regex"]) == (
        100,
        True,
        "before_char",
        True,
    )
    assert entry["extensions"]["exclude_recursion"] is True and entry["extensions"]["vendor"] == 1
    assert "addMemo" not in entry["extensions"]
    again = parse_character_book(out)
    assert again.entries[0]["position"] == 0 and again.entries[0]["keys"] == book.entries[0]["keys"]


def test_book_position_rules() -> None:
    entries = [
        {"keys": ["a"], "content": "", "position": "before_char"},
        {"keys": ["b"], "content": "", "position": "after_char", "extensions": {"position": 4}},
        {"keys": ["c"], "content": ""},
    ]
    book = parse_character_book({"entries": entries})
    assert [e["position"] for e in book.entries] == [0, 4, 1]
    assert export_character_book(book) == {"entries": entries}
    book.entries[0]["position"] = 4
    book.entries[2]["position"] = 0
    out = export_character_book(book)["entries"]
    assert out[0]["position"] == "after_char" and out[0]["extensions"] == {"position": 4}
    assert out[2]["position"] == "before_char" and out[2]["extensions"] == {"position": 0}


def test_book_ids_default_to_index_and_string_ids_survive() -> None:
    book = parse_character_book({"entries": [{"keys": [], "content": ""}, {"id": "x-1", "keys": [], "content": ""}]})
    assert [e["uid"] for e in book.entries] == [0, "x-1"]
    assert "id" not in export_character_book(book)["entries"][0]
    assert list(export_world_info(book)["entries"]) == ["0", "1"]


def test_lorebook_v3_and_bare_book_files() -> None:
    data = {"name": "Lore", "entries": [{"keys": ["k"], "content": "c", "extensions": {}}], "scan_depth": 3}
    wrapped = parse_world_info(json.dumps({"spec": "lorebook_v3", "data": data}).encode(), "f.json")
    bare = parse_world_info(json.dumps(data).encode(), "g.json")
    for book in (wrapped, bare):
        assert book.source == CHARACTER_BOOK and book.name == "Lore" and book.extra == {"scan_depth": 3}
        assert export_character_book(book) == data


def test_unnamed_book_takes_the_given_name() -> None:
    book = parse_character_book({"entries": []}, "Card name")
    assert book.name == "Card name" and not book.name_in_file
    assert world_info_from_object({"entries": {}}, "file").name == "file"


# --- bad input --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"key": "dragon"}, "entry '0': field 'key' must be a list of strings, got string"),
        ({"key": ["a", 1]}, "entry '0': field 'key' must be a list of strings, got int"),
        ({"content": 5}, "entry '0': field 'content' must be a string, got int"),
        ({"disable": "no"}, "entry '0': field 'disable' must be true or false, got string"),
        ({"order": "high"}, "entry '0': field 'order' must be a number, got string"),
        ({"position": 1.5}, "entry '0': field 'position' must be an integer, got float"),
        ({"uid": [1]}, "entry '0': field 'uid' must be an integer, got list"),
    ],
)
def test_wrong_entry_types(entry: dict[str, Any], message: str) -> None:
    assert _error(_wi(**{"0": entry}), "Lore.json") == f"Lore.json: {message}"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"[]", "World Info JSON must be an object, got list"),
        (b'{"entries": 3}', "no 'entries' object"),
        (b'{"entries": {"0": []}}', "entry '0' must be an object, got list"),
        (b'{"entries": {}, "name": 4}', "field 'name' must be a string, got int"),
        (b'{"entries": {', "World Info JSON is invalid: Expecting"),
        (b'{"spec": "lorebook_v3", "data": 1}', "character_book must be an object, got int"),
        (b'{"entries": [1]}', "entry 0 must be an object, got int"),
        (b'{"entries": [{"extensions": []}]}', "entry 0: field 'extensions' must be an object, got list"),
        (b'{"entries": [{"keys": null, "position": 7}]}', "field 'position' must be 'before_char' or 'after_char'"),
        (b'{"entries": {}, "x": ' + b"[" * 80 + b"]" * 80 + b"}", "nested more than 64 levels deep"),
    ],
)
def test_bad_world_files(data: bytes, message: str) -> None:
    assert message in _error(data)


def test_export_validates_edited_entries() -> None:
    book = parse_world_info(ELDORIA.read_bytes(), "Eldoria.json")
    broken = copy.deepcopy(book)
    broken.entries[0]["keys"] = "not a list"
    with pytest.raises(InvalidInput, match="field 'keys' must be a list of strings"):
        export_world_info(broken)
    broken = copy.deepcopy(book)
    broken.entries[0]["extra"] = []
    with pytest.raises(InvalidInput, match="'extra' must be an object"):
        export_world_info(broken)
    broken = copy.deepcopy(book)
    broken.entries[0]["order"] = float("inf")
    with pytest.raises(InvalidInput, match="must be a finite number"):
        export_character_book(broken)
