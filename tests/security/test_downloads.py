"""Issue 20, download names: RFC 6266 `filename*` carries any name, and CR/LF in a title cannot end the header."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

import pytest
from fastapi.testclient import TestClient

from neuralrp.api.downloads import attachment
from neuralrp.app import create_app
from neuralrp.config import load_settings

WORLD_NAME = "东方大陆的传说"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = load_settings(overrides={"paths": {"data_dir": str(tmp_path / "data")}}, environ={})
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as test_client:
        yield test_client


def _star_name(disposition: str) -> str:
    """The name carried in filename*."""
    return unquote(disposition.split("filename*=UTF-8''", 1)[1])


@pytest.mark.parametrize("name", ["plain.json", f"{WORLD_NAME}.json", "a\r\nSet-Cookie: x=1.jsonl",
                                  'quote " and \\ back; semi %41.json', "\x00\x7f.json", ""])
def test_attachment_is_one_safe_header_that_keeps_the_name(name: str) -> None:
    header = attachment(name)
    assert header.isascii() and not any(c in header for c in "\r\n\x00\x7f")
    plain = header.split('filename="', 1)[1].split('"', 1)[0]
    assert not any(c in plain for c in '"\\%;')
    expected = " ".join(name.replace("\x00", " ").replace("\x7f", " ").replace("\r\n", " ").split(" ")).strip()
    assert _star_name(header) == (expected or "download")


def test_unicode_world_name_survives_export(client: TestClient) -> None:
    book = {"name": WORLD_NAME, "entries": {"0": {"uid": 0, "key": ["龙"], "content": "龙住在山里。"}}}
    imported = client.post("/api/worlds/import", files={"file": ("w.json", json.dumps(book).encode())})
    assert imported.status_code in (200, 201), imported.text
    wid = client.get("/api/worlds").json()[0]["id"]
    exported = client.get(f"/api/worlds/{wid}/export")
    assert exported.status_code == 200
    assert _star_name(exported.headers["content-disposition"]) == f"{WORLD_NAME}.json"


def test_cr_lf_and_unicode_in_names_keep_the_chat_export_whole(client: TestClient) -> None:
    card = {"spec": "chara_card_v2", "spec_version": "2.0",
            "data": {"name": "龙\r\nSet-Cookie: a=b", "first_mes": "Hello."}}
    chat = client.post("/api/chats", json={"card": card}).json()
    renamed = client.patch(f"/api/chats/{chat['id']}", json={"title": "Evil\r\nSet-Cookie: a=b\r\n\r\nbody"})
    assert renamed.status_code == 200, renamed.text
    for fmt in ("jsonl", "sharegpt"):
        exported = client.get(f"/api/chats/{chat['id']}/export", params={"format": fmt})
        assert exported.status_code == 200 and "set-cookie" not in exported.headers
        assert _star_name(exported.headers["content-disposition"]).startswith("龙")
        assert exported.content.strip()
