"""Library API on the real fixture cards: lossless import/export, worlds, tags, bad files."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from neuralrp.app import create_app
from neuralrp.library.cardfile import parse_card
from neuralrp.library.pngchunks import make_text_chunk, read_text_chunks
from tests.conftest import FIXTURES

CARDS = sorted((FIXTURES / "cards").iterdir())


@pytest.fixture
def client(make_settings: Any) -> Any:
    with TestClient(create_app(make_settings())) as c:
        yield c


def upload(client: TestClient, path: Path) -> Any:
    return client.post("/api/characters/import", files={"file": (path.name, path.read_bytes())})


def state(client: TestClient) -> tuple[Any, Any, Any]:
    return client.get("/api/characters").json(), client.get("/api/worlds").json(), client.get("/api/tags/top").json()


@pytest.mark.parametrize("path", CARDS, ids=[p.name for p in CARDS])
@pytest.mark.parametrize("fmt", ["json", "png"])
def test_every_fixture_card_round_trips(client: TestClient, path: Path, fmt: str) -> None:
    original = parse_card(path.read_bytes(), path.name)
    stored = upload(client, path)
    assert stored.status_code == 201, stored.text
    exported = client.get(f"/api/characters/{stored.json()['id']}/export?format={fmt}")
    assert exported.status_code == 200
    assert exported.headers["content-disposition"].startswith("attachment; filename=")
    again = parse_card(exported.content, f"export.{fmt}")
    assert json.dumps(again.data, sort_keys=True) == json.dumps(original.data, sort_keys=True)
    assert again.data["extensions"] == original.data["extensions"]
    assert again.extra_data == original.extra_data
    if fmt == "png":
        keys = {c.keyword for c in read_text_chunks(exported.content)}
        assert {"chara", "ccv3"} <= keys


def test_v3_and_v2_lorebooks_become_linked_worlds(client: TestClient) -> None:
    for name, count in (("lide_ai_v3_zh.json", 27), ("stc_Sakana_book.png", 14), ("st_default_Seraphina.png", 4)):
        char = upload(client, FIXTURES / "cards" / name).json()
        assert char["world_id"] is not None, name
        world = client.get(f"/api/worlds/{char['world_id']}").json()
        assert world["character_id"] == char["id"]
        assert len(world["entries"]) == count
        assert "character_book" not in char["card"]["data"], "the book lives in the world, not twice"
    listed = {w["character_name"]: w["entry_count"] for w in client.get("/api/worlds").json()}
    assert listed["Sakana"] == 14


def test_world_edit_flows_into_card_export(client: TestClient) -> None:
    char = upload(client, FIXTURES / "cards" / "st_default_Seraphina.png").json()
    world = client.get(f"/api/worlds/{char['world_id']}").json()
    entries = world["entries"]
    first_id = entries[0]["id"]
    entries[0]["content"] = "Edited lore."
    entries.append({"keys": ["moonwell"], "content": "A new well.", "canon_law": True})
    saved = client.put(f"/api/worlds/{world['id']}", json={"entries": entries}).json()
    assert saved["entries"][0]["id"] == first_id, "unchanged entries keep their ids"
    assert saved["entries"][-1]["canon_law"] is True
    card = parse_card(client.get(f"/api/characters/{char['id']}/export?format=json").content, "x.json")
    contents = [e["content"] for e in card.data["character_book"]["entries"]]
    assert "Edited lore." in contents and "A new well." in contents


def test_world_info_file_round_trips(client: TestClient) -> None:
    path = FIXTURES / "worlds" / "st_Eldoria_release.json"
    world = client.post("/api/worlds/import", files={"file": (path.name, path.read_bytes())})
    assert world.status_code == 201
    exported = client.get(f"/api/worlds/{world.json()['id']}/export")
    assert json.loads(exported.content) == json.loads(path.read_bytes())


def test_tags_filter_and_autocomplete(client: TestClient) -> None:
    for path in CARDS:
        upload(client, path)
    for name, tags in (("Lyra", ["Fantasy", "Elf"]), ("Borin", ["fantasy", "Dwarf"]), ("Nova", ["SciFi", "Elf"])):
        assert client.post("/api/characters", json={"name": name, "tags": tags}).status_code == 201
    assert len(client.get("/api/characters").json()) == 8
    both = client.get("/api/characters", params={"tags": "fantasy,elf"}).json()
    assert [c["name"] for c in both] == ["Lyra"], "several tags filter with AND, case-insensitively"
    assert {c["name"] for c in client.get("/api/characters", params={"tags": "elf"}).json()} == {"Lyra", "Nova"}
    assert client.get("/api/characters", params={"tags": "elf,no-such-tag"}).json() == []
    top = client.get("/api/tags/top").json()
    assert len(top) <= 5 and top[0]["count"] == 2 and {t["name"].casefold() for t in top[:2]} == {"fantasy", "elf"}
    assert [t["name"] for t in client.get("/api/tags", params={"q": "dw"}).json()] == ["Dwarf"]
    assert [c["name"] for c in client.get("/api/characters", params={"q": "seraph"}).json()] == ["Seraphina"]
    assert [c["name"] for c in client.get("/api/characters", params={"q": "dwarf"}).json()] == ["Borin"]


def png_with(chunks: list[bytes]) -> bytes:
    base = (FIXTURES / "cards" / "st_default_Seraphina.png").read_bytes()
    head, iend = base[:33], base[-12:]
    return head + b"".join(chunks) + iend


BAD_FILES = {
    "truncated.png": lambda: (FIXTURES / "cards" / "st_default_Seraphina.png").read_bytes()[:5000],
    "nochunk.png": lambda: png_with([]),
    "badbase64.png": lambda: png_with([make_text_chunk("chara", "!!!not base64!!!")]),
    "badjson.png": lambda: png_with([make_text_chunk("chara", base64.b64encode(b"{oops").decode())]),
    "invalid.json": lambda: b'{"name": "X",',
    "wrongtypes.json": lambda: json.dumps({"spec": "chara_card_v2", "data": {"name": "X", "tags": 5}}).encode(),
    "deep.json": lambda: ("[" * 500 + "]" * 500).encode(),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_files_get_one_clear_error_and_change_nothing(client: TestClient, name: str) -> None:
    upload(client, FIXTURES / "cards" / "tavern_v1_Aqua.png")
    before = state(client)
    resp = client.post("/api/characters/import", files={"file": (name, BAD_FILES[name]())})
    assert resp.status_code == 422
    detail = resp.json()["detail"]
    assert detail.startswith(f"{name}: ") and len(detail) > len(name) + 5
    assert state(client) == before


def test_oversized_upload_is_refused(make_settings: Any) -> None:
    with TestClient(create_app(make_settings(security={"max_upload_mb": 1}))) as client:
        resp = client.post("/api/characters/import", files={"file": ("big.png", b"\x89PNG" + b"0" * 2_000_000)})
        assert resp.status_code == 413  # stopped at the ASGI layer while the body arrives (issue 20)
        assert "over the 1 MiB limit (security.max_upload_mb)" in resp.json()["detail"]
        assert client.get("/api/characters").json() == []


def test_file_names_cannot_escape(client: TestClient, make_settings: Any) -> None:
    evil = {"name": "../../../etc/passwd", "description": "x"}
    resp = client.post("/api/library/import",
                       files=[("files", ("../../evil.json", json.dumps(evil).encode()))])
    (result,) = resp.json()["results"]
    assert result["file"] == "evil.json" and result["status"] == "imported"
    data_dir = make_settings().data_dir
    written = [p for p in data_dir.rglob("*") if p.is_file()]
    assert all(data_dir in p.parents for p in written)
    assert (data_dir / "characters" / "_.._.._etc_passwd.png").exists() or any(
        "passwd" in p.name and p.parent == data_dir / "characters" for p in written)


def test_mixed_import_reports_each_file(client: TestClient) -> None:
    files = [("files", (p.name, p.read_bytes())) for p in CARDS]
    files.append(("files", ("broken.png", b"\x89PNG\r\n\x1a\nbroken")))
    files.append(("files", ("notes.txt", b"hello")))
    chat = FIXTURES / "chats" / "tavern_Aqua_1673181146000.jsonl"
    files.append(("files", (chat.name, chat.read_bytes())))
    results = {r["file"]: r for r in client.post("/api/library/import", files=files).json()["results"]}
    assert all(results[p.name]["status"] == "imported" for p in CARDS)
    assert results["broken.png"]["status"] == "error" and "broken.png: " in results["broken.png"]["detail"]
    assert results["notes.txt"]["status"] == "skipped"
    assert results[chat.name]["kind"] == "chat" and results[chat.name]["status"] == "imported"


def test_edit_keeps_unknown_fields_history_and_file(client: TestClient, make_settings: Any) -> None:
    char = upload(client, FIXTURES / "cards" / "stc_Sakana_book.png").json()
    card = char["card"]
    card["data"]["personality"] = "curious, kind"
    card["data"]["alternate_greetings"].append("Hello again!")
    saved = client.put(f"/api/characters/{char['id']}", json={"card": card})
    assert saved.status_code == 200
    after = client.get(f"/api/characters/{char['id']}").json()
    assert after["card"]["data"]["personality"] == "curious, kind"
    assert after["card"]["data"]["extensions"] == char["card"]["data"]["extensions"]
    bad = client.put(f"/api/characters/{char['id']}", json={"card": {"spec": "chara_card_v2",
                                                                     "data": {"name": "", "tags": []}}})
    assert bad.status_code == 422
    assert client.get(f"/api/characters/{char['id']}").json()["card"] == after["card"]
    mirror = make_settings().data_dir / "characters" / after["source_file"]
    assert parse_card(mirror.read_bytes(), "m.png").data["personality"] == "curious, kind"


def test_delete_refused_while_in_chat(client: TestClient) -> None:
    char = upload(client, FIXTURES / "cards" / "tavern_v1_Aqua.png").json()
    client.post("/api/chats", json={"character_ids": [char["id"]]})
    resp = client.delete(f"/api/characters/{char['id']}")
    assert resp.status_code == 409 and "Aqua is in 1 chat(s)" in resp.json()["detail"]
    other = upload(client, FIXTURES / "cards" / "st_default_Seraphina.png").json()
    assert client.delete(f"/api/characters/{other['id']}").json() == {"deleted": True}
    assert client.get(f"/api/characters/{other['id']}").status_code == 404


def test_st_chat_round_trip(client: TestClient) -> None:
    upload(client, FIXTURES / "cards" / "tavern_v1_Aqua.png")
    path = FIXTURES / "chats" / "tavern_Aqua_1673181146000.jsonl"
    results = client.post("/api/library/import", files=[("files", (path.name, path.read_bytes()))]).json()
    chat_id = results["results"][0]["id"]
    chat = client.get(f"/api/chats/{chat_id}").json()
    assert [c["name"] for c in chat["cast"]] == ["Aqua"]
    exported = client.get(f"/api/chats/{chat_id}/export?format=jsonl").content
    assert [json.loads(line) for line in exported.splitlines()] == [
        json.loads(line) for line in path.read_bytes().splitlines()]


def test_world_restore_from_history_gives_back_the_whole_file(client: TestClient) -> None:
    path = FIXTURES / "worlds" / "st_Eldoria_release.json"
    world = client.post("/api/worlds/import", files={"file": (path.name, path.read_bytes())}).json()
    client.put(f"/api/worlds/{world['id']}", json={"entries": [], "name": "Emptied"})
    db = client.app.state.services.db  # type: ignore[attr-defined]
    with db.session() as conn:
        change = conn.execute("SELECT id FROM change_history WHERE entity_type = 'world' AND operation = 'update'"
                              " ORDER BY id DESC").fetchone()["id"]
    assert client.post(f"/api/library/history/{change}/restore", params={"side": "sideways"}).status_code == 422
    restored = client.post(f"/api/library/history/{change}/restore")
    assert restored.json() == {"kind": "world", "id": world["id"]}
    exported = client.get(f"/api/worlds/{world['id']}/export")
    assert json.loads(exported.content) == json.loads(path.read_bytes())
    assert client.get(f"/api/worlds/{world['id']}").json()["name"] == world["name"]
    assert client.post("/api/library/history/999999/restore").status_code == 404
