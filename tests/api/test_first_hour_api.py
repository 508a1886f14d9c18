"""The API behind issue 21's first-hour features: avatars, chat lists per character, sorting, naming, exports."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from neuralrp.library.cardfile import parse_card
from tests.api.chat_helpers import CARD, chat_client, messages, new_chat
from tests.conftest import FIXTURES
from tests.fakes import FakeLLM

SERAPHINA_PNG = FIXTURES / "cards/st_default_Seraphina.png"


@pytest.fixture
def client(make_settings: Any) -> Any:
    with chat_client(make_settings(llm={"base_url": "http://llm.test/v1"}), FakeLLM("llamacpp")) as c:
        yield c


def picture(color: tuple[int, int, int], size: tuple[int, int] = (30, 45), fmt: str = "PNG") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format=fmt)
    return out.getvalue()


def pixels(png: bytes) -> tuple[tuple[int, int], Any]:
    image = Image.open(io.BytesIO(png)).convert("RGB")
    return image.size, image.getpixel((5, 5))


def card_named(name: str, **data: Any) -> dict[str, Any]:
    base: dict[str, Any] = dict(CARD["data"])  # type: ignore[arg-type]
    return {**CARD, "data": {**base, "name": name, **data}}


def make_character(client: TestClient, name: str) -> dict[str, Any]:
    made = client.post("/api/characters", json=card_named(name))
    assert made.status_code == 201, made.text
    return made.json()


def data_dir(client: TestClient) -> Path:
    return Path(client.app.state.services.settings.data_dir)  # type: ignore[attr-defined]


# ---- avatars


def test_uploading_an_avatar_rewrites_the_card_file_and_keeps_the_old_picture(client: TestClient) -> None:
    stored = client.post("/api/characters/import", files={"file": ("Seraphina.png", SERAPHINA_PNG.read_bytes())})
    character = stored.json()
    assert character["has_avatar"] is True
    old_picture = client.get(f"/api/characters/{character['id']}/avatar").content

    jpeg = picture((200, 30, 40), fmt="JPEG")
    resp = client.post(f"/api/characters/{character['id']}/avatar", files={"file": ("new.jpg", jpeg)})
    assert resp.status_code == 200, resp.text
    updated = resp.json()
    assert updated["has_avatar"] is True and updated["updated_at"] > character["updated_at"]

    served = client.get(f"/api/characters/{character['id']}/avatar")
    assert served.headers["content-type"] == "image/png"
    size, color = pixels(served.content)
    assert size == (30, 45) and abs(color[0] - 200) < 8 and color[1] < 45
    mirror = data_dir(client) / "characters" / updated["source_file"]
    on_disk = parse_card(mirror.read_bytes(), mirror.name)  # the file SillyTavern reads has the new picture
    assert on_disk.name == "Seraphina" and on_disk.avatar_png is not None
    assert pixels(on_disk.avatar_png) == (size, color)
    assert on_disk.character_book is not None  # the card's lorebook is still in the file
    exported = client.get(f"/api/characters/{character['id']}/export?format=png").content
    assert pixels(exported)[0] == (30, 45)
    kept = [p.read_bytes() for p in (data_dir(client) / "trash").iterdir()]
    assert old_picture in kept


def test_a_character_without_art_gets_one_and_the_chat_cast_says_so(client: TestClient) -> None:
    chat = new_chat(client)
    member = chat["cast"][0]
    assert member["has_avatar"] is False
    assert member["avatar_url"].startswith(f"/api/characters/{member['character_id']}/avatar?v=")
    resp = client.post(f"/api/characters/{member['character_id']}/avatar",
                       files={"file": ("a.webp", picture((10, 200, 10), fmt="WEBP"))})
    assert resp.status_code == 200, resp.text
    again = client.get(f"/api/chats/{chat['id']}").json()["cast"][0]
    assert again["has_avatar"] is True and again["avatar_url"] != member["avatar_url"]
    listed = client.get("/api/chats").json()[0]["avatar"]
    assert listed == {"character_id": member["character_id"], "has_avatar": True, "avatar_url": again["avatar_url"]}


@pytest.mark.parametrize(("name", "data", "sentence"), [
    ("notes.txt", b"hello there", "not a picture NeuralRP can read"),
    ("empty.png", b"", "the file is empty"),
    ("cut.png", picture((1, 2, 3))[:60], "not a picture NeuralRP can read"),
])
def test_a_bad_avatar_is_refused_and_nothing_changes(client: TestClient, name: str, data: bytes,
                                                      sentence: str) -> None:
    character = make_character(client, "Mira")
    before = client.get(f"/api/characters/{character['id']}").json()
    resp = client.post(f"/api/characters/{character['id']}/avatar", files={"file": (name, data)})
    assert resp.status_code == 422
    assert resp.json()["detail"].startswith(f"{name}: {sentence}")
    assert client.get(f"/api/characters/{character['id']}").json() == before
    assert client.post("/api/characters/999/avatar", files={"file": ("a.png", picture((1, 1, 1)))}).status_code == 404


def test_a_huge_avatar_is_shrunk(client: TestClient) -> None:
    character = make_character(client, "Tall")
    resp = client.post(f"/api/characters/{character['id']}/avatar",
                       files={"file": ("big.png", picture((9, 9, 9), size=(800, 2400)))})
    assert resp.status_code == 200
    assert pixels(client.get(f"/api/characters/{character['id']}/avatar").content)[0] == (341, 1024)


# ---- chat lists and the library's order


def test_chat_list_per_character_search_and_sort(client: TestClient) -> None:
    mira = make_character(client, "Mira")
    bran = make_character(client, "Bran")
    first = client.post("/api/chats", json={"character_ids": [mira["id"]], "title": "Zebra crossing"}).json()
    second = client.post("/api/chats", json={"character_ids": [bran["id"]]}).json()
    third = client.post("/api/chats", json={"character_ids": [bran["id"], mira["id"]], "title": "Apple"}).json()
    client.post(f"/api/chats/{first['id']}/messages", json={"content": "hi", "stream": False})

    ids = lambda resp: [c["id"] for c in resp.json()]  # noqa: E731
    assert ids(client.get("/api/chats")) == [first["id"], third["id"], second["id"]]
    assert ids(client.get("/api/chats", params={"sort": "created"})) == [third["id"], second["id"], first["id"]]
    assert ids(client.get("/api/chats", params={"sort": "name"})) == [third["id"], second["id"], first["id"]]
    assert ids(client.get("/api/chats", params={"character_id": mira["id"]})) == [first["id"], third["id"]]
    assert ids(client.get("/api/chats", params={"q": "bra"})) == [first["id"], third["id"], second["id"]]
    assert ids(client.get("/api/chats", params={"q": "zebra"})) == [first["id"]]
    assert ids(client.get("/api/chats", params={"q": "100%_"})) == []
    assert client.get("/api/chats", params={"sort": "size"}).status_code == 422
    assert client.get("/api/chats", params={"character_id": 999}).status_code == 404
    listed = client.get("/api/chats", params={"character_id": bran["id"]}).json()
    assert [c["cast_names"] for c in listed] == ["Bran, Mira", "Bran"]
    assert all(c["created_at"] for c in listed)


def test_library_sorts_by_name_recent_chat_and_creation(client: TestClient) -> None:
    made = [make_character(client, name) for name in ("Cora", "alba", "Bex")]
    client.post("/api/chats", json={"character_ids": [made[2]["id"]]})
    client.post("/api/chats", json={"character_ids": [made[0]["id"]]})

    names = lambda sort: [c["name"] for c in client.get("/api/characters", params={"sort": sort}).json()]  # noqa: E731
    assert names("name") == ["alba", "Bex", "Cora"]
    assert names("created") == ["Bex", "alba", "Cora"]
    assert names("recent") == ["Cora", "Bex", "alba"]  # last chatted with first; never chatted last
    listed = client.get("/api/characters").json()
    assert [c["last_chat_at"] is None for c in listed] == [True, False, False]
    assert client.get("/api/characters", params={"sort": "tokens"}).status_code == 422


# ---- names: fork, search, export


def test_fork_without_a_title_is_named_like_the_chat_list_names_it(client: TestClient) -> None:
    chat = new_chat(client, card_named("Seraphina"))
    first = messages(client, chat["id"])[0]
    fork = client.post(f"/api/chats/{chat['id']}/fork", json={"message_id": first["id"]}).json()
    assert fork["title"] == "Seraphina (fork)"
    client.patch(f"/api/chats/{chat['id']}", json={"title": "Glade"})
    assert client.post(f"/api/chats/{chat['id']}/fork", json={"message_id": first["id"]}).json()["title"] == \
        "Glade (fork)"


def test_search_names_an_untitled_chat_as_the_list_does(client: TestClient) -> None:
    chat = new_chat(client, card_named("Seraphina", first_mes="The lanterns glow softly."))
    titled = client.post("/api/chats", json={"card": card_named("Bran", first_mes="Lanterns everywhere."),
                                             "title": "Market"}).json()
    hits = client.get("/api/search", params={"q": "lanterns"}).json()["results"]
    names = {h["chat_id"]: h["chat_name"] for h in hits}
    assert names == {chat["id"]: "Seraphina", titled["id"]: "Market"}
    listed = {c["id"]: c for c in client.get("/api/chats").json()}
    assert listed[chat["id"]]["title"] is None and listed[chat["id"]]["cast_names"] == "Seraphina"


def test_chat_export_is_named_after_the_character_and_dated_at_creation(client: TestClient) -> None:
    chat = new_chat(client, card_named("Séra/phina"))
    resp = client.get(f"/api/chats/{chat['id']}/export", params={"format": "jsonl"})
    assert resp.status_code == 200
    header = json.loads(resp.text.splitlines()[0])
    stamp = chat["created_at"][:19].replace("T", "@").replace(":", "h", 1).replace(":", "m") + "s"
    assert header["create_date"] == stamp  # the chat's creation, not the moment of export
    disposition = resp.headers["content-disposition"]
    assert f'filename="S_ra_phina - {stamp}.jsonl"' in disposition
    assert unquote(disposition.split("filename*=UTF-8''", 1)[1]) == f"Séra_phina - {stamp}.jsonl"
    training = client.get(f"/api/chats/{chat['id']}/export", params={"format": "alpaca"})
    assert f"Séra_phina - {stamp} (alpaca).jsonl" in unquote(training.headers["content-disposition"])


def test_settings_say_whether_the_built_in_model_is_in_use(client: TestClient) -> None:
    assert client.get("/api/settings").json()["built_in"] == {"built_in": False}
