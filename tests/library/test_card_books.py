"""Card books and worlds: names never rewritten, equal books linked, whole-card duplicates, PUT with a book, and
the CLI's export by id or exact name."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from PIL import Image

from neuralrp.app import create_app
from neuralrp.cli import cli
from neuralrp.library import worlds
from neuralrp.library.cardfile import export_card_png, parse_card
from neuralrp.library.service import Library
from neuralrp.library.sync import scan
from tests.conftest import FIXTURES
from tests.library.strict import json_diff

SERAPHINA = FIXTURES / "cards" / "st_default_Seraphina.png"
ELDORIA = FIXTURES / "worlds" / "st_Eldoria_release.json"


def other_art(card_png: bytes) -> bytes:
    """The same card with different art."""
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(out, format="PNG")
    parsed = parse_card(card_png, "x.png")
    return export_card_png(parsed.to_card(), out.getvalue())


def world_rows(library: Library) -> list[dict[str, Any]]:
    with library.db.session() as conn:
        return [dict(r) for r in conn.execute("SELECT id, name, character_id FROM worlds ORDER BY id")]


def exported_book(library: Library, cid: int) -> dict[str, Any]:
    return json.loads(library.export_card(cid, "json")[0])["data"]["character_book"]


def test_taken_book_name_gives_a_unique_world_name_and_the_card_keeps_its_own(library: Library) -> None:
    library.import_world(ELDORIA.read_bytes(), "Eldoria.json")
    result = library.import_card(SERAPHINA.read_bytes(), SERAPHINA.name)
    assert [w["name"] for w in world_rows(library)] == ["Eldoria", "Eldoria (2)"]
    source = parse_card(SERAPHINA.read_bytes(), "s.png")
    exported = json.loads(library.export_card(result.id or 0, "json")[0])
    assert exported["data"]["character_book"]["name"] == "Eldoria"
    assert json_diff(source.raw, exported) == []
    card_file = parse_card((library.paths.characters / "Seraphina.png").read_bytes(), "f.png")
    assert card_file.character_book is not None and card_file.character_book["name"] == "Eldoria"
    assert card_file.data["extensions"]["world"] == "Eldoria"


def test_world_rename_by_the_user_renames_the_book(library: Library) -> None:
    result = library.import_card(SERAPHINA.read_bytes(), SERAPHINA.name)
    (world,) = world_rows(library)
    with library.db.session() as conn:
        entries = worlds.get_world(conn, world["id"]).public()["entries"]
    library.save_world(world["id"], entries, name="Eldoria Woods")
    assert exported_book(library, result.id or 0)["name"] == "Eldoria Woods"


def test_equal_book_links_to_the_existing_world(library: Library) -> None:
    first = library.import_card(SERAPHINA.read_bytes(), SERAPHINA.name)
    second = library.import_card(other_art(SERAPHINA.read_bytes()), "Seraphina red.png")
    assert second.status == "imported" and second.id != first.id, "other art: not the same card"
    (world,) = world_rows(library)
    assert world["character_id"] == first.id, "no second copy of the book"
    assert json_diff(exported_book(library, first.id or 0), exported_book(library, second.id or 0)) == []
    with library.db.session() as conn:
        assert worlds.linked_world_id(conn, second.id or 0) == world["id"]
        entries = worlds.get_world(conn, world["id"]).public()["entries"]
    entries[0]["content"] = "Shared lore, edited once."
    library.save_world(world["id"], entries)
    for cid in (first.id, second.id):
        assert exported_book(library, cid or 0)["entries"][0]["content"] == "Shared lore, edited once."
    files = [parse_card(p.read_bytes(), p.name) for p in library.paths.characters.iterdir()]
    assert len(files) == 2 and all(
        f.character_book and f.character_book["entries"][0]["content"] == "Shared lore, edited once." for f in files)


def test_card_lore_world_file_with_original_data_is_linked(library: Library) -> None:
    """SillyTavern's "Import Card Lore" writes worlds/<book>.json with originalData: that world is the book."""
    first = library.import_card(SERAPHINA.read_bytes(), SERAPHINA.name)
    world_file, _ = library.export_world(world_rows(library)[0]["id"])
    library.delete_character(first.id or 0)
    library.delete_world(world_rows(library)[0]["id"])
    library.import_world(world_file, "Eldoria.json")
    again = library.import_card(SERAPHINA.read_bytes(), SERAPHINA.name)
    assert [w["name"] for w in world_rows(library)] == ["Eldoria"], "linked, not copied"
    assert json_diff(parse_card(SERAPHINA.read_bytes(), "s").raw,
                     json.loads(library.export_card(again.id or 0, "json")[0])) == []


# --- duplicates -------------------------------------------------------------------------------------


def test_duplicate_check_covers_data_book_and_art(library: Library) -> None:
    raw = SERAPHINA.read_bytes()
    assert library.import_card(raw, "a.png").status == "imported"
    same = library.import_card(raw, "b.png")
    assert same.status == "skipped" and "already in the library" in same.detail
    red = library.import_card(other_art(raw), "red.png")
    assert red.status == "imported", "different art is a different card"
    with library.db.session() as conn:
        path = conn.execute("SELECT avatar_path FROM characters WHERE id = ?", (red.id,)).fetchone()["avatar_path"]
    stored_art = (library.paths.data_dir / path).read_bytes()
    assert stored_art == parse_card(other_art(raw), "r.png").avatar_png, "the real art, not a placeholder"
    card = parse_card(raw, "s.png").to_card()
    card["data"]["character_book"]["entries"][0]["content"] = "Other lore."
    other_book = export_card_png(card, parse_card(raw, "s.png").avatar_png)
    assert library.import_card(other_book, "book.png").status == "imported", "a different book is another card"
    no_art = json.dumps(parse_card(raw, "s.png").to_card()).encode()
    assert library.import_card(no_art, "s.json").status == "imported", "a JSON card has no art: not the PNG"
    assert library.import_card(no_art, "s2.json").status == "skipped"


def test_identical_file_dropped_into_characters_is_not_imported_twice(library: Library) -> None:
    library.import_card(SERAPHINA.read_bytes(), SERAPHINA.name)
    copy = library.paths.characters / "Seraphina copy.png"
    copy.write_bytes(SERAPHINA.read_bytes())
    report = scan(library)
    assert report.lines == ["characters/Seraphina copy.png: skipped the same card is already in the library: "
                            "Seraphina, id 1 (characters/Seraphina.png)"]
    assert scan(library).lines == [], "reported once"
    with library.db.session() as conn:
        assert conn.execute("SELECT count(*) AS n FROM characters").fetchone()["n"] == 1
    assert copy.read_bytes() == SERAPHINA.read_bytes(), "the dropped file is left as it was"
    mirror_copy = library.paths.characters / "Seraphina (mirror copy).png"
    mirror_copy.write_bytes((library.paths.characters / "Seraphina.png").read_bytes())
    assert scan(library).lines[0].startswith("characters/Seraphina (mirror copy).png: skipped the same card")


def test_dropped_copy_becomes_the_file_a_character_lost(library: Library) -> None:
    library.import_card(SERAPHINA.read_bytes(), SERAPHINA.name)
    (library.paths.characters / "Seraphina.png").unlink()
    scan(library)
    (library.paths.characters / "Sera.png").write_bytes(SERAPHINA.read_bytes())
    assert "imported the file of Seraphina again" in scan(library).lines[0]
    with library.db.session() as conn:
        rows = [dict(r) for r in conn.execute("SELECT name, source_file FROM characters")]
    assert rows == [{"name": "Seraphina", "source_file": "Sera.png"}]


# --- PUT with a character_book ----------------------------------------------------------------------


@pytest.fixture
def client(make_settings: Any) -> Any:
    with TestClient(create_app(make_settings())) as c:
        yield c


def test_put_with_a_changed_book_is_applied(client: TestClient, make_settings: Any) -> None:
    char = client.post("/api/characters/import", files={"file": (SERAPHINA.name, SERAPHINA.read_bytes())}).json()
    card = json.loads(client.get(f"/api/characters/{char['id']}/export?format=json").content)
    card["data"]["character_book"]["entries"][1]["content"] = "Edited in the card editor."
    card["data"]["character_book"]["entries"].append({"keys": ["moon"], "content": "A new moon.", "extensions": {},
                                                      "enabled": True, "insertion_order": 10})
    assert client.put(f"/api/characters/{char['id']}", json={"card": card}).status_code == 200
    world = client.get(f"/api/worlds/{char['world_id']}").json()
    assert [e["content"] for e in world["entries"]][1] == "Edited in the card editor."
    assert world["entries"][-1]["keys"] == ["moon"] and len(world["entries"]) == 5
    exported = json.loads(client.get(f"/api/characters/{char['id']}/export?format=json").content)
    assert json_diff(card["data"]["character_book"], exported["data"]["character_book"]) == []
    mirror = make_settings().data_dir / "characters" / "Seraphina.png"
    assert parse_card(mirror.read_bytes(), "m.png").character_book == exported["data"]["character_book"]


def test_put_without_the_book_key_keeps_it_and_null_lets_it_go(client: TestClient) -> None:
    char = client.post("/api/characters/import", files={"file": (SERAPHINA.name, SERAPHINA.read_bytes())}).json()
    card = char["card"]
    assert "character_book" not in card["data"]
    card["data"]["personality"] = "serene"
    client.put(f"/api/characters/{char['id']}", json={"card": card})
    assert len(client.get(f"/api/worlds/{char['world_id']}").json()["entries"]) == 4
    card["data"]["character_book"] = None
    client.put(f"/api/characters/{char['id']}", json={"card": card})
    assert client.get(f"/api/characters/{char['id']}").json()["world_id"] is None
    kept = client.get(f"/api/worlds/{char['world_id']}").json()
    assert kept["character_id"] is None and len(kept["entries"]) == 4, "the lore is kept as a world of its own"


# --- CLI ----------------------------------------------------------------------------------------------


def run(tmp_path: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), env={"NEURALRP_PATHS_DATA_DIR": str(tmp_path / "data")})
    return result.exit_code, result.output


def test_cli_exports_by_id_or_exact_name_and_refuses_ambiguity(tmp_path: Path) -> None:
    run(tmp_path, "import", str(SERAPHINA))
    red = tmp_path / "red.png"
    red.write_bytes(other_art(SERAPHINA.read_bytes()))
    run(tmp_path, "import", str(red))
    code, out = run(tmp_path, "export", "character", "Seraphina", "--out", str(tmp_path / "x.png"))
    assert code == 1 and "'Seraphina' could be 2 characters: ids 1 (Seraphina), 2 (Seraphina)" in out
    assert not (tmp_path / "x.png").exists()
    code, out = run(tmp_path, "export", "character", "2", "--out", str(tmp_path / "two.png"))
    assert code == 0, out
    exported_art = parse_card((tmp_path / "two.png").read_bytes(), "t").avatar_png
    assert exported_art == parse_card(red.read_bytes(), "r").avatar_png
    code, out = run(tmp_path, "export", "world", "1", "--out", str(tmp_path / "w.json"))
    assert code == 0, out
    code, out = run(tmp_path, "export", "character", "99")
    assert code == 1 and "no character is named '99' and none has that id" in out


def test_cli_prefers_the_exact_name(tmp_path: Path) -> None:
    for name in ("Mira", "mira"):
        card = tmp_path / f"{name}-card.json"
        card.write_text(json.dumps({"name": name, "description": name}))
        run(tmp_path, "import", str(card))
    code, out = run(tmp_path, "export", "character", "mira", "--format", "json", "--out", str(tmp_path / "m.json"))
    assert code == 0, out
    assert json.loads((tmp_path / "m.json").read_bytes())["data"]["description"] == "mira"
    code, out = run(tmp_path, "export", "character", "MIRA")
    assert code == 1 and "could be 2 characters" in out
