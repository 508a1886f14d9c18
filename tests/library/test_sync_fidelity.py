"""Folder sync never loses an edit: one test per data-loss case of issue 19 (books in card PNGs, unknown world
keys, whole-file history and lossless restores, file modes, PUT with a book, art edited on disk)."""

from __future__ import annotations

import io
import json
import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from neuralrp.library import worlds
from neuralrp.library.cardfile import export_card_png, parse_card
from neuralrp.library.service import Library
from neuralrp.library.sync import scan
from tests.conftest import FIXTURES
from tests.library.strict import json_diff
from tests.library.test_fidelity import modern_world

SERAPHINA = FIXTURES / "cards" / "st_default_Seraphina.png"


def later(path: Path, seconds: float) -> None:
    stamp = path.stat().st_mtime + seconds
    os.utime(path, (stamp, stamp))


def changes(library: Library, entity: str) -> list[dict[str, Any]]:
    with library.db.session() as conn:
        rows = conn.execute("SELECT * FROM change_history WHERE entity_type = ? ORDER BY id", (entity,))
        return [{**r, "old": json.loads(r["old_json"] or "null"), "new": json.loads(r["new_json"] or "null")}
                for r in rows]


def the_world(library: Library) -> worlds.World:
    with library.db.session() as conn:
        (row,) = conn.execute("SELECT id FROM worlds").fetchall()
        return worlds.get_world(conn, row["id"])


def card_file(library: Library) -> Any:
    return parse_card((library.paths.characters / "Seraphina.png").read_bytes(), "Seraphina.png")


def edit_book_on_disk(library: Library, content: str, seconds: float) -> None:
    """Rewrite the card PNG in characters/ with a changed book entry, as another app would."""
    target = library.paths.characters / "Seraphina.png"
    parsed = parse_card(target.read_bytes(), target.name)
    card = parsed.to_card()
    card["data"]["character_book"]["entries"][0]["content"] = content
    card["data"]["character_book"]["vendor_key"] = {"kept": True}
    target.write_bytes(export_card_png(card, parsed.avatar_png))
    later(target, seconds)


def test_book_edited_inside_a_card_png_is_applied_to_its_world(library: Library) -> None:
    shutil.copy(SERAPHINA, library.paths.characters / "Seraphina.png")
    scan(library)
    edit_book_on_disk(library, "Edited in another app.", 5)
    assert scan(library).lines == ["characters/Seraphina.png: newer file applied to Seraphina"]
    world = the_world(library)
    assert world.entries[0]["content"] == "Edited in another app."
    assert world.lorebook().extra["vendor_key"] == {"kept": True}
    conflict = changes(library, "character")[-1]
    assert conflict["operation"] == "sync_conflict"
    assert conflict["old"]["data"]["character_book"]["entries"][0]["content"] != "Edited in another app."
    assert conflict["new"]["data"]["character_book"]["entries"][0]["content"] == "Edited in another app."
    with library.db.session() as conn:
        cid = conn.execute("SELECT id FROM characters").fetchone()["id"]
    card = parse_card(json.dumps(card_file(library).to_card()).encode(), "c.json").to_card()
    card["data"].pop("character_book")
    card["data"]["scenario"] = "A later edit in NeuralRP."
    library.update_card(cid, card)
    book = card_file(library).character_book
    assert book["entries"][0]["content"] == "Edited in another app.", "the next edit does not overwrite it"
    assert book["vendor_key"] == {"kept": True}


def test_older_book_edit_on_disk_lands_in_history_and_can_be_restored(library: Library) -> None:
    shutil.copy(SERAPHINA, library.paths.characters / "Seraphina.png")
    scan(library)
    world = the_world(library)
    entries = world.public()["entries"]
    entries[0]["content"] = "Library edit."
    edit_book_on_disk(library, "Older outside edit.", -3600)
    library.save_world(world.id, entries)
    assert card_file(library).character_book["entries"][0]["content"] == "Library edit."
    (kept,) = [c for c in changes(library, "character") if c["operation"] == "sync_conflict"]
    assert kept["old"]["data"]["character_book"]["entries"][0]["content"] == "Older outside edit."
    library.restore_change(kept["id"])
    assert the_world(library).entries[0]["content"] == "Older outside edit."
    assert card_file(library).character_book["entries"][0]["content"] == "Older outside edit."


def test_unknown_keys_of_a_world_file_survive_its_next_rewrite(library: Library) -> None:
    target = library.paths.worlds / "Skies.json"
    target.write_text(json.dumps(modern_world()))
    scan(library)
    edited = modern_world()
    edited["new_top_level_key"] = {"from": "another tool"}
    edited["entries"]["0"]["brand_new_entry_key"] = [1, 2]
    edited["entries"]["0"]["characterFilter"]["extra"] = "nested"
    target.write_text(json.dumps(edited))
    later(target, 5)
    assert scan(library).lines == ["worlds/Skies.json: newer file applied to Skies"]
    world = the_world(library)
    entries = world.public()["entries"]
    entries[1]["content"] = "Edited in NeuralRP."
    library.save_world(world.id, entries)
    written = json.loads(target.read_bytes())
    edited["entries"]["5"]["content"] = "Edited in NeuralRP."
    assert json_diff(edited, written) == []


def test_history_keeps_the_whole_world_and_restores_it_losslessly(library: Library) -> None:
    original = modern_world()
    result = library.import_world(json.dumps(original).encode(), "Skies.json")
    world = the_world(library)
    library.save_world(world.id, [{"keys": ["only"], "content": "Everything else is gone."}], name="Renamed")
    update = changes(library, "world")[-1]
    assert json_diff(original, update["old"]["file"]) == [], "history holds the whole file-level object"
    library.restore_change(update["id"])
    exported, _ = library.export_world(result.id or 0)
    assert json_diff(original, json.loads(exported)) == []
    assert the_world(library).name == "Skies"
    library.delete_world(result.id or 0)
    deleted = changes(library, "world")[-1]
    kind, new_id = library.restore_change(deleted["id"])
    assert kind == "world" and json_diff(original, json.loads(library.export_world(new_id)[0])) == []


def test_history_of_a_card_book_world_is_its_character_book(library: Library) -> None:
    library.import_card(SERAPHINA.read_bytes(), SERAPHINA.name)
    world = the_world(library)
    library.save_world(world.id, [])
    before = changes(library, "world")[-1]["old"]
    source = parse_card(SERAPHINA.read_bytes(), "s.png").character_book
    assert before["format"] == "character_book" and json_diff(source, before["file"]) == []


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.usefixtures("umask_022")
def test_files_get_the_umask_mode_and_keep_their_own(library: Library) -> None:
    result = library.import_card(SERAPHINA.read_bytes(), SERAPHINA.name)
    library.import_world(json.dumps(modern_world()).encode(), "Skies.json")
    card = library.paths.characters / "Seraphina.png"
    for path in (card, library.paths.worlds / "Skies.json", *library.paths.avatars.iterdir()):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path
    os.chmod(card, 0o640)
    with library.db.session() as conn:
        library.write_character_file(conn, result.id or 0)
    assert stat.S_IMODE(card.stat().st_mode) == 0o640, "a file's own mode is kept"


def test_art_changed_on_disk_becomes_the_avatar_and_the_old_one_is_kept(library: Library) -> None:
    target = library.paths.characters / "Seraphina.png"
    shutil.copy(SERAPHINA, target)
    scan(library)
    art = io.BytesIO()
    Image.new("RGB", (6, 6), (0, 90, 200)).save(art, format="PNG")
    target.write_bytes(export_card_png(parse_card(target.read_bytes(), "s").to_card(), art.getvalue()))
    later(target, 5)
    scan(library)
    with library.db.session() as conn:
        path = conn.execute("SELECT avatar_path FROM characters").fetchone()["avatar_path"]
    assert (library.paths.data_dir / path).read_bytes() == art.getvalue()
    trashed = list(library.paths.trash.iterdir())
    assert [p.read_bytes() for p in trashed] == [parse_card(SERAPHINA.read_bytes(), "s").avatar_png]


def test_book_removed_on_disk_lets_the_world_go_but_keeps_it(library: Library) -> None:
    target = library.paths.characters / "Seraphina.png"
    shutil.copy(SERAPHINA, target)
    scan(library)
    parsed = parse_card(target.read_bytes(), target.name)
    card = parsed.to_card()
    card["data"].pop("character_book")
    target.write_bytes(export_card_png(card, parsed.avatar_png))
    later(target, 5)
    scan(library)
    world = the_world(library)
    assert world.character_id is None and len(world.entries) == 4, "the lore stays, as a world of its own"
    assert (library.paths.worlds / "Eldoria.json").is_file()
    assert card_file(library).character_book is None
