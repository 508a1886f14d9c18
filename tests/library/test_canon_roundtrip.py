"""Canon law survives World Info files, card books and folder sync as `extensions.neuralrp.canon_law`."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from neuralrp.db.connection import transaction
from neuralrp.errors import InvalidInput
from neuralrp.library import worlds
from neuralrp.library.service import Library
from neuralrp.library.sync import scan
from neuralrp.library.worldfile import export_character_book, parse_character_book, parse_world_info

WI = {"entries": {
    "0": {"uid": 0, "key": ["magic"], "content": "All magic has a price.",
          "extensions": {"neuralrp": {"canon_law": True, "kept": 1}}},
    "1": {"uid": 1, "key": ["tavern"], "content": "The Rusty Flagon."},
}}


def canon_flags(library: Library, world_id: int) -> dict[str, bool]:
    with library.db.session() as conn:
        return {e["content"]: e["canon_law"] for e in worlds.get_world(conn, world_id).entries}


def test_world_info_import_and_export_keep_canon_law(library: Library) -> None:
    wid = library.import_world(json.dumps(WI).encode(), "w.json").id
    assert wid is not None
    assert canon_flags(library, wid) == {"All magic has a price.": True, "The Rusty Flagon.": False}
    out = json.loads(library.export_world(wid)[0])
    assert out["entries"]["0"]["extensions"]["neuralrp"] == {"canon_law": True, "kept": 1}
    assert "extensions" not in out["entries"]["1"]  # a file that never had the flag gets none while false
    with library.db.session() as conn, transaction(conn):
        entries = worlds.get_world(conn, wid).public()["entries"]
        entries[0]["canon_law"], entries[1]["canon_law"] = False, True
        worlds.replace_entries(conn, wid, entries)
    out = json.loads(library.export_world(wid)[0])
    assert out["entries"]["0"]["extensions"]["neuralrp"] == {"canon_law": False, "kept": 1}
    assert out["entries"]["1"]["extensions"] == {"neuralrp": {"canon_law": True}}
    again = library.import_world(json.dumps(out).encode(), "again.json").id
    assert again is not None
    assert canon_flags(library, again) == {"All magic has a price.": False, "The Rusty Flagon.": True}


def test_card_book_round_trip_and_conversion(library: Library) -> None:
    book = {"entries": [{"keys": ["magic"], "content": "A price.", "enabled": True, "insertion_order": 1,
                         "extensions": {"neuralrp": {"canon_law": True}, "depth": 4}}]}
    parsed = parse_character_book(book)
    assert parsed.entries[0]["canon_law"] is True
    assert export_character_book(parsed)["entries"][0]["extensions"]["neuralrp"] == {"canon_law": True}
    with library.db.session() as conn, transaction(conn):
        wid = worlds.insert_world(conn, parsed)
    as_wi = json.loads(library.export_world(wid)[0])  # a card book exported as World Info
    assert as_wi["entries"]["0"]["extensions"] == {"neuralrp": {"canon_law": True}}
    assert parse_world_info(json.dumps(as_wi).encode(), "x.json").entries[0]["canon_law"] is True


def test_folder_sync_reads_canon_law_from_an_edited_file(library: Library) -> None:
    target = library.paths.worlds / "w.json"
    plain = json.loads(json.dumps(WI))
    del plain["entries"]["0"]["extensions"]
    target.write_text(json.dumps(plain))
    scan(library)
    with library.db.session() as conn:
        wid = int(conn.execute("SELECT id FROM worlds").fetchone()["id"])
    assert canon_flags(library, wid)["All magic has a price."] is False
    plain["entries"]["0"]["extensions"] = {"neuralrp": {"canon_law": True}}
    target.write_text(json.dumps(plain))
    stamp = target.stat().st_mtime + 5
    os.utime(target, (stamp, stamp))
    assert "newer file applied" in scan(library).lines[0]
    assert canon_flags(library, wid)["All magic has a price."] is True


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_a_bad_canon_law_value_is_refused_naming_the_field(value: Any) -> None:
    entry = {"uid": 0, "key": ["a"], "content": "b", "extensions": {"neuralrp": {"canon_law": value}}}
    data = {"entries": {"0": entry}}
    with pytest.raises(InvalidInput, match="extensions.neuralrp.canon_law"):
        parse_world_info(json.dumps(data).encode(), "bad.json")
