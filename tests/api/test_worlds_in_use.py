"""Worlds in use (issue 14): a chat's own worlds, a card's linked world (extensions.world, by name), its embedded
book, the global worlds; the link each came through, named in the inspector; one lore budget for all of them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from neuralrp.cli import cli
from tests.api.chat_helpers import chat_client
from tests.conftest import FIXTURES
from tests.fakes import FakeLLM

ELDORIA = FIXTURES / "worlds" / "st_Eldoria_release.json"


def world_file(name: str, entries: list[tuple[list[str], str]]) -> bytes:
    """A SillyTavern World Info file."""
    return json.dumps({"entries": {str(i): {"uid": i, "key": keys, "keysecondary": [], "comment": "", "content": text,
                                            "constant": False, "selective": False, "order": 100, "position": 0,
                                            "disable": False} for i, (keys, text) in enumerate(entries)},
                       "name": name}).encode()


def import_world(client: TestClient, name: str, data: bytes) -> dict[str, Any]:
    resp = client.post("/api/worlds/import", files={"file": (f"{name}.json", data)})
    assert resp.status_code == 201, resp.text
    return resp.json()  # type: ignore[no-any-return]


def mira(world: str = "") -> dict[str, Any]:
    ext = {"world": world} if world else {}
    return {"spec": "chara_card_v2", "spec_version": "2.0",
            "data": {"name": "Mira", "description": "A guide of the old roads.", "first_mes": "Hello, {{user}}.",
                     "extensions": ext}}


def lore_sections(client: TestClient, chat_id: int) -> list[dict[str, Any]]:
    return [s for s in client.get(f"/api/chats/{chat_id}/prompt").json()["sections"] if s["kind"] == "lore"]


def say(client: TestClient, chat_id: int, text: str) -> dict[str, Any]:
    resp = client.post(f"/api/chats/{chat_id}/messages", json={"content": text, "stream": False})
    assert resp.status_code == 201, resp.text
    return resp.json()  # type: ignore[no-any-return]


@pytest.fixture
def client(make_settings: Any) -> Iterator[TestClient]:
    with chat_client(make_settings(llm={"base_url": "http://llm.test"}), FakeLLM("llamacpp")) as c:
        yield c


def test_a_standalone_world_attached_to_a_chat_reaches_the_prompt_with_its_link(client: TestClient) -> None:
    world = import_world(client, "Eldoria", ELDORIA.read_bytes())
    chat = client.post("/api/chats", json={"card": mira(), "world_ids": [world["id"]]}).json()
    assert chat["world_ids"] == [world["id"]]
    say(client, chat["id"], "Tell me about the Shadowfang beasts.")
    lore = lore_sections(client, chat["id"])
    assert lore and {(s["source"]["world"], s["source"]["via"]) for s in lore} == {("Eldoria", "chat")}
    doc = client.get(f"/api/chats/{chat['id']}/prompt").json()
    assert doc["worlds"] == [{"world_id": world["id"], "name": "Eldoria", "label": "chat",
                              "via": [{"via": "chat", "character_id": None, "character_name": None}]}]
    fired = {s["source"]["entry_id"] for s in lore}
    detached = client.put(f"/api/chats/{chat['id']}/worlds", json={"world_ids": []}).json()
    assert detached == {"chat_id": chat["id"], "world_ids": [], "in_use": []}
    say(client, chat["id"], "And what is the glade?")  # an Eldoria key: nothing new fires from a detached world
    doc = client.get(f"/api/chats/{chat['id']}/prompt").json()
    assert doc["worlds"] == [] and {s["source"]["entry_id"] for s in doc["sections"] if s["kind"] == "lore"} <= fired


def test_an_unknown_world_is_refused_and_nothing_changes(client: TestClient) -> None:
    world = import_world(client, "Eldoria", ELDORIA.read_bytes())
    chat = client.post("/api/chats", json={"card": mira(), "world_ids": [world["id"]]}).json()
    resp = client.put(f"/api/chats/{chat['id']}/worlds", json={"world_ids": [world["id"], 999]})
    assert resp.status_code == 404 and "world 999 does not exist" in resp.json()["detail"]
    assert client.get(f"/api/chats/{chat['id']}/worlds").json()["world_ids"] == [world["id"]]
    refused = client.post("/api/chats", json={"card": mira(), "world_ids": [999]})
    assert refused.status_code == 404 and len(client.get("/api/chats").json()) == 1


@pytest.mark.parametrize("world_first", [True, False])
def test_a_card_naming_a_world_in_extensions_world_picks_it_up(client: TestClient, world_first: bool) -> None:
    if world_first:
        import_world(client, "Eldoria", ELDORIA.read_bytes())
    character = client.post("/api/characters", json=mira("eldoria")).json()  # SillyTavern matches names loosely
    if not world_first:
        import_world(client, "Eldoria", ELDORIA.read_bytes())
    chat = client.post("/api/chats", json={"character_ids": [character["id"]]}).json()
    in_use = client.get(f"/api/chats/{chat['id']}/worlds").json()["in_use"]
    assert [(w["name"], w["label"]) for w in in_use] == [("Eldoria", "Mira's card")]
    say(client, chat["id"], "What is the glade?")
    assert {s["source"]["via"] for s in lore_sections(client, chat["id"])} == {"Mira's card"}
    listed = {w["name"]: w for w in client.get("/api/worlds").json()}
    assert listed["Eldoria"]["linked_characters"] == ["Mira"]


def test_linking_a_character_writes_the_card_and_its_file(client: TestClient, make_settings: Any) -> None:
    import_world(client, "Eldoria", ELDORIA.read_bytes())
    character = client.post("/api/characters", json=mira()).json()
    linked = client.put(f"/api/characters/{character['id']}/world", json={"world": "Eldoria"}).json()
    assert linked["card"]["data"]["extensions"]["world"] == "Eldoria"
    mirror = make_settings().data_dir / "characters" / linked["source_file"]
    from neuralrp.library.cardfile import parse_card
    assert parse_card(mirror.read_bytes(), mirror.name).to_card()["data"]["extensions"]["world"] == "Eldoria"
    bad = client.put(f"/api/characters/{character['id']}/world", json={"world": "Atlantis"})
    assert bad.status_code == 404 and "Atlantis" in bad.json()["detail"]
    assert client.put(f"/api/characters/{character['id']}/world", json={"world": None}).json()[
        "card"]["data"]["extensions"]["world"] == ""


def test_a_card_book_is_not_doubled_by_its_own_extensions_world(client: TestClient) -> None:
    seraphina = client.post("/api/characters/import",
                            files={"file": ("s.png", (FIXTURES / "cards/st_default_Seraphina.png").read_bytes())})
    chat = client.post("/api/chats", json={"character_ids": [seraphina.json()["id"]]}).json()
    in_use = client.get(f"/api/chats/{chat['id']}/worlds").json()["in_use"]
    assert [w["label"] for w in in_use] == ["Seraphina's card book"], "extensions.world 'Eldoria' is her own book"


def test_global_and_chat_worlds_share_one_lore_budget(client: TestClient) -> None:
    words = " ".join(["lore"] * 60)
    north = import_world(client, "North", world_file("North", [(["ice"], f"Ice facts. {words}")]))
    import_world(client, "South", world_file("South", [(["sand"], f"Sand facts. {words}")]))
    client.put("/api/settings", json={"world": {"active_worlds": ["south"], "lore_token_budget": 120}})
    chat = client.post("/api/chats", json={"card": mira(), "world_ids": [north["id"]]}).json()
    say(client, chat["id"], "Ice and sand everywhere.")
    doc = client.get(f"/api/chats/{chat['id']}/prompt").json()
    assert [(w["name"], w["label"]) for w in doc["worlds"]] == [("North", "chat"), ("South", "global")]
    lore = [s for s in doc["sections"] if s["kind"] == "lore"]
    assert len(lore) == 1 and doc["lore"]["tokens"] <= 120, "both matched; the one budget admits one"
    client.put("/api/settings", json={"world": {"lore_token_budget": 800}})
    say(client, chat["id"], "Ice and sand again.")  # the next turn has room for the other world's entry too
    lore = lore_sections(client, chat["id"])
    assert {s["source"]["world"] for s in lore} == {"North", "South"}
    assert {s["source"]["via"] for s in lore} == {"chat", "global"}
    listed = {w["name"]: w for w in client.get("/api/worlds").json()}
    assert listed["South"]["global"] and listed["North"]["chat_ids"] == [chat["id"]]


def test_cli_lists_attaches_links_and_sets_global_worlds(make_settings: Any, tmp_path: Any) -> None:
    settings = make_settings()
    config = tmp_path / "config.yaml"
    config.write_text(f"paths:\n  data_dir: {settings.data_dir}\n", encoding="utf-8")
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(cli, ["--config", str(config), *args])
        assert result.exit_code == 0, result.output
        return result.output

    eldoria = tmp_path / "Eldoria.json"
    eldoria.write_bytes(ELDORIA.read_bytes())
    run("import", str(eldoria), str(FIXTURES / "cards" / "tavern_v1_Aqua.png"))
    with chat_client(settings, FakeLLM("llamacpp")) as client:
        aqua = client.get("/api/characters").json()[0]
        chat_id = client.post("/api/chats", json={"character_ids": [aqua["id"]]}).json()["id"]
    assert "Eldoria  (via chat)" in run("worlds", "chat", str(chat_id), "--attach", "Eldoria")
    assert "Aqua is linked to Eldoria" in run("worlds", "link", "Aqua", "eldoria")
    assert "Eldoria  (via chat, Aqua's card)" in run("worlds", "chat", str(chat_id))
    assert run("worlds", "global", "--add", "Eldoria").strip() == "Eldoria"
    listing = run("worlds", "list")
    assert "Eldoria  (4 entries; global; chats " in listing and "linked by Aqua" in listing
    assert "Eldoria  (via Aqua's card, global)" in run("worlds", "chat", str(chat_id), "--detach", "Eldoria")
    bad = runner.invoke(cli, ["--config", str(config), "worlds", "chat", str(chat_id), "--attach", "Atlantis"])
    assert bad.exit_code != 0 and "no world is named 'Atlantis'" in bad.output
