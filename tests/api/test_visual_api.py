"""Visual canon API: suggestions change nothing; PUT /visual stores columns, card extensions and the card file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from neuralrp.app import create_app
from neuralrp.images import danbooru_semantic
from neuralrp.images.danbooru_fetch import DanbooruCharacter, dataset_path, write_dataset
from neuralrp.library.cardfile import parse_card
from neuralrp.retrieval.embedder import MINILM_ID, HashEmbedder
from tests.conftest import FIXTURES


@pytest.fixture
def client(make_settings: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    # the real model is not needed to test the wiring; the test double gets MiniLM's semantic threshold
    monkeypatch.setitem(danbooru_semantic.THRESHOLDS, HashEmbedder().model_id, danbooru_semantic.THRESHOLDS[MINILM_ID])
    with TestClient(create_app(make_settings())) as c:
        c.app.state.services.embedder = HashEmbedder()
        yield c


def upload(client: TestClient, name: str) -> dict[str, Any]:
    path = FIXTURES / "cards" / name
    response = client.post("/api/characters/import", files={"file": (path.name, path.read_bytes())})
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def card_file(client: TestClient, char: dict[str, Any]) -> Path:
    data_dir: Path = client.app.state.services.settings.data_dir  # type: ignore[attr-defined]
    return data_dir / "characters" / char["source_file"]


def history(client: TestClient, cid: int) -> list[Any]:
    with client.app.state.services.db.session() as conn:  # type: ignore[attr-defined]
        return [dict(r) for r in conn.execute("SELECT operation, note, new_json FROM change_history"
                                              " WHERE entity_type = 'character' AND entity_id = ? ORDER BY id", (cid,))]


def test_suggestion_from_the_card_saves_nothing(client: TestClient) -> None:
    aqua = upload(client, "tavern_v1_Aqua.png")
    file_before = card_file(client, aqua).read_bytes()
    response = client.post(f"/api/characters/{aqua['id']}/visual-canon")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["tags"][:4] == ["1girl", "light_blue_hair", "long_hair", "blue_eyes"]
    assert body["visual_tags"] == ", ".join(body["tags"])
    assert {"tag": "long_hair", "category": "hair_length", "phrase": "blue waist long hair", "how": "alias",
            "score": 1.0} in body["matches"]
    semantic = [m for m in body["matches"] if m["how"] == "semantic"]
    assert [m["tag"] for m in semantic] == ["detached_sleeves"]
    after = client.get(f"/api/characters/{aqua['id']}").json()
    assert after["visual_tags"] == "" and after["gender"] == ""
    assert "neuralrp" not in after["card"]["data"]["extensions"]
    assert card_file(client, aqua).read_bytes() == file_before
    assert [h["operation"] for h in history(client, aqua["id"])] == ["create"]


def test_suggestion_takes_description_and_gender_from_the_body(client: TestClient) -> None:
    aqua = upload(client, "tavern_v1_Aqua.png")
    body = client.post(f"/api/characters/{aqua['id']}/visual-canon",
                       json={"description": "short messy black hair, red eyes, a long coat", "gender": "male"}).json()
    assert body["tags"] == ["1boy", "black_hair", "short_hair", "messy_hair", "red_eyes", "coat"]


def test_put_visual_stores_columns_card_extensions_and_file(client: TestClient) -> None:
    aqua = upload(client, "tavern_v1_Aqua.png")
    path = card_file(client, aqua)
    response = client.put(f"/api/characters/{aqua['id']}/visual",
                          json={"gender": "Female", "visual_tags": "1girl, blue_hair,, long_hair , blue_hair"})
    assert response.status_code == 200, response.text
    char = response.json()
    assert char["gender"] == "female" and char["visual_tags"] == "1girl, blue_hair, long_hair"
    assert char["card"]["data"]["extensions"]["neuralrp"] == {"gender": "female",
                                                              "visual_tags": "1girl, blue_hair, long_hair"}
    assert char["world_id"] is None and char["id"] == aqua["id"]
    assert card_file(client, char) == path, "the same file is rewritten"
    on_disk = parse_card(path.read_bytes(), path.name)
    assert on_disk.data["extensions"]["neuralrp"]["visual_tags"] == "1girl, blue_hair, long_hair"
    assert on_disk.data["description"] == parse_card((FIXTURES / "cards" / "tavern_v1_Aqua.png").read_bytes(),
                                                     "a.png").data["description"]
    rows = history(client, aqua["id"])
    assert [r["operation"] for r in rows] == ["create", "update"]
    assert json.loads(rows[-1]["new_json"])["data"]["extensions"]["neuralrp"]["gender"] == "female"
    again = client.get(f"/api/characters/{aqua['id']}").json()
    assert again["visual_tags"] == "1girl, blue_hair, long_hair"


def test_partial_put_keeps_the_other_field(client: TestClient) -> None:
    aqua = upload(client, "tavern_v1_Aqua.png")
    client.put(f"/api/characters/{aqua['id']}/visual", json={"gender": "female", "visual_tags": "blue_hair"})
    char = client.put(f"/api/characters/{aqua['id']}/visual", json={"visual_tags": ""}).json()
    assert char["gender"] == "female" and char["visual_tags"] == ""


def test_exported_card_brings_its_visual_canon_back_on_import(client: TestClient) -> None:
    aqua = upload(client, "tavern_v1_Aqua.png")
    client.put(f"/api/characters/{aqua['id']}/visual", json={"gender": "female", "visual_tags": "aqua_(konosuba)"})
    exported = client.get(f"/api/characters/{aqua['id']}/export?format=json").content
    client.delete(f"/api/characters/{aqua['id']}")
    response = client.post("/api/characters/import", files={"file": ("aqua.json", exported)})
    assert response.status_code == 201, response.text
    assert (response.json()["gender"], response.json()["visual_tags"]) == ("female", "aqua_(konosuba)")


@pytest.mark.parametrize(("body", "field"), [
    ({"gender": "woman", "visual_tags": "x"}, "gender"),
    ({"gender": 3}, "gender"),
    ({"gender": "female", "visual_tags": ["a"]}, "visual_tags"),
])
def test_bad_fields_are_named_and_nothing_changes(client: TestClient, body: dict[str, Any], field: str) -> None:
    aqua = upload(client, "tavern_v1_Aqua.png")
    before = card_file(client, aqua).read_bytes()
    response = client.put(f"/api/characters/{aqua['id']}/visual", json=body)
    assert response.status_code == 422
    assert f"field '{field}'" in response.json()["detail"]
    assert client.get(f"/api/characters/{aqua['id']}").json()["gender"] == ""
    assert card_file(client, aqua).read_bytes() == before
    bad = client.post(f"/api/characters/{aqua['id']}/visual-canon", json={"gender": "woman"})
    assert bad.status_code == 422 and "field 'gender'" in bad.json()["detail"]


def test_unknown_character_is_404(client: TestClient) -> None:
    for response in (client.put("/api/characters/999/visual", json={"gender": "female", "visual_tags": ""}),
                     client.post("/api/characters/999/visual-canon", json={})):
        assert response.status_code == 404
        assert response.json() == {"error": "NotFound", "detail": "character 999 does not exist"}


def test_npc_visual_is_saved_without_a_card_file(client: TestClient) -> None:
    aqua = upload(client, "tavern_v1_Aqua.png")
    chat = client.post("/api/chats", json={"character_ids": [aqua["id"]]})
    assert chat.status_code == 201, chat.text
    npc = client.post(f"/api/chats/{chat.json()['id']}/npcs", json={"name": "Guard", "gender": "male"}).json()
    files_before = sorted(p.name for p in card_file(client, aqua).parent.iterdir())
    char = client.put(f"/api/characters/{npc['id']}/visual", json={"visual_tags": "armor, spear"}).json()
    assert (char["gender"], char["visual_tags"]) == ("male", "armor, spear")
    assert char["card"]["data"]["extensions"]["neuralrp"]["npc"] is True
    assert sorted(p.name for p in card_file(client, aqua).parent.iterdir()) == files_before


def test_fetched_dataset_adds_the_character_tag(client: TestClient) -> None:
    aqua = upload(client, "tavern_v1_Aqua.png")
    data_dir: Path = client.app.state.services.settings.data_dir  # type: ignore[attr-defined]
    write_dataset(dataset_path(data_dir), [
        DanbooruCharacter("aqua_(konosuba)", "female", ("blue_hair", "long_hair", "blue_eyes", "detached_sleeves")),
    ], source="https://danbooru.test")
    body = client.post(f"/api/characters/{aqua['id']}/visual-canon").json()
    assert body["tags"][:2] == ["1girl", "aqua_(konosuba)"]
    assert body["looks_like"][0]["name"] == "aqua_(konosuba)"
