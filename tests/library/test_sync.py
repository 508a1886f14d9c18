"""Folder sync between the library and characters/ + worlds/, on a real data dir."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from neuralrp.app import create_app
from neuralrp.library.cardfile import export_card_png, parse_card
from neuralrp.library.service import Library
from neuralrp.library.sync import scan
from tests.conftest import FIXTURES
from tests.waiting import wait_until


def history(library: Library) -> list[dict[str, Any]]:
    with library.db.session() as conn:
        return [dict(r) for r in conn.execute("SELECT * FROM change_history WHERE operation = 'sync_conflict'")]


def card_of(library: Library, name: str) -> dict[str, Any]:
    with library.db.session() as conn:
        row = conn.execute("SELECT card_json FROM characters WHERE name = ?", (name,)).fetchone()
    return json.loads(row["card_json"])


def touch_later(path: Path, seconds: float) -> None:
    stamp = path.stat().st_mtime + seconds
    os.utime(path, (stamp, stamp))


def test_dropped_files_are_imported_once(library: Library) -> None:
    shutil.copy(FIXTURES / "cards" / "st_default_Seraphina.png", library.paths.characters)
    shutil.copy(FIXTURES / "worlds" / "st_Eldoria_release.json", library.paths.worlds)
    first = scan(library)
    assert len(first.lines) == 2 and first.errors == 0
    assert "imported Seraphina" in first.lines[0]
    assert scan(library).lines == [], "a second scan finds nothing new"


def test_newer_file_wins_and_old_card_is_kept(library: Library) -> None:
    target = library.paths.characters / "Seraphina.png"
    shutil.copy(FIXTURES / "cards" / "st_default_Seraphina.png", target)
    scan(library)
    card = card_of(library, "Seraphina")
    card["data"]["personality"] = "edited in another app"
    target.write_bytes(export_card_png(card, None))
    touch_later(target, 5)
    report = scan(library)
    assert "newer file applied" in report.lines[0]
    assert card_of(library, "Seraphina")["data"]["personality"] == "edited in another app"
    (conflict,) = history(library)
    assert json.loads(conflict["old_json"])["data"]["personality"] != "edited in another app"


def test_newer_library_edit_wins_and_file_version_is_kept(library: Library) -> None:
    target = library.paths.characters / "Seraphina.png"
    shutil.copy(FIXTURES / "cards" / "st_default_Seraphina.png", target)
    scan(library)
    card = card_of(library, "Seraphina")
    outside = json.loads(json.dumps(card))
    outside["data"]["scenario"] = "outside edit"
    target.write_bytes(export_card_png(outside, None))
    touch_later(target, -3600)  # the outside edit is older than the library's copy
    with library.db.session() as conn:
        cid = conn.execute("SELECT id FROM characters").fetchone()["id"]
    card["data"]["scenario"] = "library edit"
    library.update_card(cid, card)
    assert parse_card(target.read_bytes(), "x.png").data["scenario"] == "library edit"
    kept = history(library)
    assert any(json.loads(h["old_json"])["data"]["scenario"] == "outside edit" for h in kept)


def test_removed_file_never_deletes_the_character(library: Library) -> None:
    target = library.paths.characters / "Aqua.png"
    shutil.copy(FIXTURES / "cards" / "tavern_v1_Aqua.png", target)
    scan(library)
    target.unlink()
    report = scan(library)
    assert "file removed; Aqua kept in the library" in report.lines[0]
    assert card_of(library, "Aqua")["data"]["name"] == "Aqua"


def test_corrupt_dropped_file_reports_and_changes_nothing(library: Library) -> None:
    shutil.copy(FIXTURES / "cards" / "tavern_v1_Aqua.png", library.paths.characters)
    scan(library)
    (library.paths.characters / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"junk" * 10)
    report = scan(library)
    assert report.errors == 1 and "characters/broken.png: not imported" in report.lines[0]
    with library.db.session() as conn:
        assert conn.execute("SELECT count(*) AS n FROM characters").fetchone()["n"] == 1


def test_world_file_edited_outside_is_applied(library: Library) -> None:
    target = library.paths.worlds / "Eldoria.json"
    shutil.copy(FIXTURES / "worlds" / "st_Eldoria_release.json", target)
    scan(library)
    data = json.loads(target.read_bytes())
    data["entries"]["0"]["content"] = "Rewritten outside."
    target.write_text(json.dumps(data))
    touch_later(target, 5)
    assert "newer file applied" in scan(library).lines[0]
    with library.db.session() as conn:
        contents = [r["content"] for r in conn.execute("SELECT content FROM world_entries")]
    assert "Rewritten outside." in contents


def test_running_app_picks_up_dropped_cards(make_settings: Any) -> None:
    settings = make_settings()
    with TestClient(create_app(settings)) as client:
        shutil.copy(FIXTURES / "cards" / "stc_Sakana_book.png", settings.data_dir / "characters")
        wait_until(lambda: client.get("/api/characters").json(), what="the folder watcher to import the dropped card")
        names = [c["name"] for c in client.get("/api/characters").json()]
        assert names == ["Sakana"], "the folder watcher imported the card while running"
        assert client.post("/api/library/sync").json() == {"changes": [], "errors": 0}
