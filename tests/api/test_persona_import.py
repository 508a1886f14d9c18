"""Importing SillyTavern personas (issue 14, item 5): POST /api/personas/import with SillyTavern's settings.json and,
optionally, the pictures of its User Avatars folder. Re-importing changes nothing; bad input stores nothing."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from neuralrp.app import create_app
from neuralrp.library.service import Library
from tests.conftest import FIXTURES

SETTINGS = FIXTURES / "personas" / "st_settings_personas.json"
KAI = "1727000000001-Kai.png"
XUE = "1727000000002-.png"
KAI_TEXT = ("{{user}} is a lost cartographer who owes {{char}} a favour.\n"
            "Kai keeps a brass compass that points at whatever {{user}} fears most.")
XUE_TEXT = "小雪是一名来自北方山村的药师，说话温柔，随身带着一本草药笔记。"


@pytest.fixture
def client(make_settings: Any) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings())) as c:
        yield c


def picture(colour: str, fmt: str = "PNG") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (6, 6), colour).save(out, format=fmt)
    return out.getvalue()


def import_st(client: TestClient, data: bytes | None = None, avatars: list[tuple[str, bytes]] | None = None) -> Any:
    files = [("settings", ("settings.json", SETTINGS.read_bytes() if data is None else data))]
    files += [("avatars", (name, content)) for name, content in avatars or []]
    return client.post("/api/personas/import", files=files)


def stored(client: TestClient) -> list[dict[str, Any]]:
    return client.get("/api/personas").json()


def library(client: TestClient) -> Library:
    app: Any = client.app
    return app.state.services.library


def avatar_files(client: TestClient) -> list[str]:
    folder = library(client).paths.avatars
    return sorted(p.name for p in Path(folder).glob("*")) if Path(folder).exists() else []


def test_the_personas_of_a_settings_file_are_imported_with_the_default(client: TestClient) -> None:
    resp = import_st(client)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert (body["imported"], body["skipped"], body["unmatched_avatars"]) == (3, 0, [])
    assert [(r["key"], r["name"], r["status"], r["is_default"]) for r in body["personas"]] == [
        ("user-default.png", "User", "imported", False), (KAI, "Kai", "imported", True),
        (XUE, "小雪", "imported", False)]
    personas = {p["name"]: p for p in stored(client)}
    assert personas["Kai"]["is_default"] and not personas["User"]["is_default"]
    assert personas["Kai"]["description"] == KAI_TEXT, "macros are stored as written, replaced in each prompt"
    assert personas["小雪"]["description"] == XUE_TEXT
    assert personas["User"]["description"] == ""
    assert stored(client)[0]["name"] == "Kai", "the default is listed first"


def test_importing_the_same_file_again_changes_nothing(client: TestClient) -> None:
    first = import_st(client, avatars=[(KAI, picture("teal"))]).json()
    before, files = stored(client), avatar_files(client)
    again = import_st(client, avatars=[(KAI, picture("red"))]).json()
    assert (again["imported"], again["skipped"]) == (0, 3)
    assert [r["id"] for r in again["personas"]] == [r["id"] for r in first["personas"]]
    assert all("already stored" in r["detail"] and not r["avatar"] for r in again["personas"])
    assert stored(client) == before and avatar_files(client) == files


def test_an_existing_default_stays_the_default(client: TestClient) -> None:
    rhea = client.post("/api/personas", json={"name": "Rhea", "description": "A knight."}).json()
    assert rhea["is_default"]
    body = import_st(client).json()
    assert not any(r["is_default"] for r in body["personas"])
    assert [p["name"] for p in stored(client) if p["is_default"]] == ["Rhea"]


def test_same_name_and_text_is_skipped_whatever_the_case_but_another_text_is_a_new_persona(
        client: TestClient) -> None:
    same = client.post("/api/personas", json={"name": "KAI", "description": KAI_TEXT}).json()
    other = client.post("/api/personas", json={"name": "小雪", "description": "Someone else."}).json()
    body = import_st(client).json()
    by_key = {r["key"]: r for r in body["personas"]}
    assert by_key[KAI]["status"] == "skipped" and by_key[KAI]["id"] == same["id"]
    assert by_key[XUE]["status"] == "imported" and by_key[XUE]["id"] != other["id"]
    names = sorted(p["name"] for p in stored(client))
    assert names == sorted(["KAI", "User", "小雪", "小雪"]), "SillyTavern allows two personas of one name"


def test_pictures_attach_to_the_persona_named_by_their_file_name(client: TestClient) -> None:
    body = import_st(client, avatars=[(KAI, picture("teal")), (XUE, picture("red", "JPEG")),
                                      ("Stranger.png", picture("blue"))]).json()
    assert body["unmatched_avatars"] == ["Stranger.png"]
    by_key = {r["key"]: r for r in body["personas"]}
    assert (by_key[KAI]["avatar"], by_key[XUE]["avatar"], by_key["user-default.png"]["avatar"]) == (True, True, False)
    personas = {p["name"]: p for p in stored(client)}
    assert not personas["User"]["has_avatar"]
    for name, colour in (("Kai", (0, 128, 128)), ("小雪", (254, 0, 0))):
        got = client.get(f"/api/personas/{personas[name]['id']}/avatar")
        assert got.headers["content-type"] == "image/png"
        pixel = Image.open(io.BytesIO(got.content)).convert("RGB").getpixel((3, 3))
        assert isinstance(pixel, tuple)
        assert all(abs(a - b) <= 3 for a, b in zip(pixel, colour, strict=True)), (name, pixel)


def _edit(change: Any) -> bytes:
    doc = json.loads(SETTINGS.read_text("utf-8"))
    change(doc)
    return json.dumps(doc).encode()


def _set(path: list[str], value: Any) -> Any:
    def change(doc: dict[str, Any]) -> None:
        for key in path[:-1]:
            doc = doc[key]
        doc[path[-1]] = value
    return change


BAD = [
    ("not json", b"{ this is not JSON", "settings.json is invalid"),
    ("not utf-8", b"\xff\xfe{}", "not valid UTF-8"),
    ("a list", b"[1, 2]", "expected a JSON object"),
    ("no power_user", _edit(lambda d: d.pop("power_user")), "no power_user section"),
    ("power_user text", _edit(_set(["power_user"], "x")), "power_user must be an object"),
    ("personas a list", _edit(_set(["power_user", "personas"], ["Kai"])), "power_user.personas must be an object"),
    ("no personas", _edit(_set(["power_user", "personas"], {})), "power_user.personas is empty"),
    ("name a number", _edit(_set(["power_user", "personas", KAI], 7)), f"the name of persona '{KAI}' must be text"),
    ("empty name", _edit(_set(["power_user", "personas", KAI], " ")), f"persona '{KAI}': a persona needs a name"),
    ("long name", _edit(_set(["power_user", "personas", KAI], "k" * 101)), "the limit is 100"),
    ("descriptions a list", _edit(_set(["power_user", "persona_descriptions"], [])),
     "power_user.persona_descriptions must be an object"),
    ("descriptor text", _edit(_set(["power_user", "persona_descriptions", KAI], "hi")),
     f"persona_descriptions['{KAI}'] must be an object"),
    ("description a number", _edit(_set(["power_user", "persona_descriptions", KAI, "description"], 3)),
     "description must be text"),
    ("default a number", _edit(_set(["power_user", "default_persona"], 1)), "default_persona must be an avatar file"),
]


@pytest.mark.parametrize(("data", "problem"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_settings_name_the_problem_and_store_nothing(client: TestClient, data: bytes, problem: str) -> None:
    client.post("/api/personas", json={"name": "Rhea", "description": "A knight."})
    before = stored(client)
    resp = import_st(client, data, avatars=[(KAI, picture("teal"))])
    assert resp.status_code == 422, resp.text
    assert problem in resp.json()["detail"], resp.json()
    assert stored(client) == before and avatar_files(client) == []


def test_a_bad_or_oversized_picture_names_the_file_and_stores_nothing(client: TestClient) -> None:
    before = stored(client)
    bad = import_st(client, avatars=[(KAI, picture("teal")), (XUE, b"not a picture")])
    assert bad.status_code == 422 and bad.json()["detail"].startswith(f"{XUE}: not a picture"), bad.text
    library(client).max_bytes = 2000
    big = import_st(client, avatars=[(KAI, picture("teal") + b"\0" * 2000)])
    assert big.status_code == 413 and big.json()["detail"].startswith(f"{KAI}: file is over"), big.text
    library(client).max_bytes = 200
    too_big = import_st(client)
    assert too_big.status_code == 413 and too_big.json()["detail"].startswith("settings.json: file is over")
    assert stored(client) == before and avatar_files(client) == []


def test_a_personas_backup_file_is_read_too(client: TestClient) -> None:
    section = json.loads(SETTINGS.read_text("utf-8"))["power_user"]
    backup = {k: section[k] for k in ("personas", "persona_descriptions", "default_persona")}
    body = import_st(client, json.dumps(backup).encode()).json()
    assert body["imported"] == 3 and [p["name"] for p in stored(client) if p["is_default"]] == ["Kai"]
