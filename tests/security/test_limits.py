"""Limits: upload and body size, PNG chunk size, JSON depth, message length, file names that try to escape."""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from neuralrp.app import create_app
from neuralrp.chats.service import MAX_MESSAGE_CHARS
from neuralrp.config import load_settings
from neuralrp.errors import InvalidInput
from neuralrp.library import pngchunks

EVIL_NAMES = ["../../../escape.json", "/tmp/absolute.json", "..\\..\\win.json", "nul\x00byte.json",
              "x" * 5000 + ".json", "....//....//dots.json", "%2e%2e%2fenc.json", "CON.json", ".", ""]


def _chunk(kind: bytes, payload: bytes, length: int | None = None) -> bytes:
    size = len(payload) if length is None else length
    return struct.pack(">I", size) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def _png(*chunks: bytes) -> bytes:
    ihdr = _chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
    idat = _chunk(b"IDAT", zlib.compress(b"\x00\x00\x00\x00"))
    return b"\x89PNG\r\n\x1a\n" + ihdr + b"".join(chunks) + idat + _chunk(b"IEND", b"")


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    """An app with a 1 MiB upload limit and the default JSON depth (64)."""
    settings = load_settings(overrides={"paths": {"data_dir": str(tmp_path / "data")},
                                        "security": {"max_upload_mb": 1}}, environ={})
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as test_client:
        yield test_client


def _files_outside(root: Path) -> list[Path]:
    """Files under root that are not inside root/data (where NeuralRP may write)."""
    return [p for p in root.rglob("*") if p.is_file() and (root / "data") not in p.parents]


def test_oversized_upload_and_body_are_refused(client: TestClient) -> None:
    big = client.post("/api/characters/import", files={"file": ("big.png", b"\x89PNG" + b"0" * 1_100_000)})
    assert big.status_code == 413 and "security.max_upload_mb" in big.json()["detail"]  # counted as it arrives
    body = json.dumps({"name": "Big", "description": "x" * 1_100_000})
    huge = client.post("/api/characters", content=body, headers={"content-type": "application/json"})
    assert huge.status_code == 413 and "security.max_upload_mb" in huge.json()["detail"]
    assert client.get("/api/characters").json() == []


def test_png_chunk_that_claims_to_be_huge_is_refused(client: TestClient) -> None:
    liar = _png(_chunk(b"tEXt", b"chara\x00abc", length=0x7FFFFFF0))
    resp = client.post("/api/characters/import", files={"file": ("liar.png", liar)})
    assert resp.status_code == 422, resp.text
    assert client.get("/api/characters").json() == []


def test_png_chunk_over_the_limit_is_refused() -> None:
    oversized = _png(_chunk(b"tEXt", b"chara\x00" + b"A" * 5000))
    with pytest.raises(InvalidInput, match="over the"):
        pngchunks.read_chunks(oversized, max_chunk_size=4096)
    assert len(pngchunks.read_chunks(oversized, max_chunk_size=8192)) == 4


def test_json_nested_too_deep_is_refused(client: TestClient) -> None:
    deep = '{"name": "Deep", "extensions": {"x": ' + "[" * 200 + "]" * 200 + "}}"
    resp = client.post("/api/characters", content=deep, headers={"content-type": "application/json"})
    assert resp.status_code == 422 and "security.max_json_depth" in resp.json()["detail"]
    bomb = ("[" * 100_000 + "]" * 100_000).encode()
    resp = client.post("/api/characters/import", files={"file": ("deep.json", bomb)})
    assert resp.status_code == 422, resp.text
    resp = client.post("/api/chats", content=bomb, headers={"content-type": "application/json"})
    assert resp.status_code == 422
    assert client.get("/api/characters").json() == []


def test_message_length_is_limited(client: TestClient) -> None:
    made = client.post("/api/chats", json={"card": {"name": "A", "first_mes": "hi"}})
    assert made.status_code == 201, made.text
    chat_id = made.json()["id"]
    resp = client.post(f"/api/chats/{chat_id}/messages", json={"content": "x" * (MAX_MESSAGE_CHARS + 1)})
    assert resp.status_code == 422 and str(MAX_MESSAGE_CHARS) in resp.json()["detail"]


@pytest.mark.parametrize("name", EVIL_NAMES)
def test_upload_names_never_escape_the_data_dir(client: TestClient, tmp_path: Path, name: str) -> None:
    card = json.dumps({"name": name or "Blank", "description": "d"}).encode()
    for route, field in (("/api/library/import", "files"), ("/api/characters/import", "file"),
                         ("/api/worlds/import", "file")):
        resp = client.post(route, files={field: (name, card)})
        assert resp.status_code < 500, resp.text
    assert _files_outside(tmp_path) == []
    for character in client.get("/api/characters").json():
        for fmt in ("png", "json"):
            export = client.get(f"/api/characters/{character['id']}/export", params={"format": fmt})
            assert export.status_code == 200
            disposition = export.headers["content-disposition"]
            filename = disposition.split("filename=", 1)[1]
            assert "/" not in filename and "\\" not in filename and "\x00" not in filename
        assert client.get(f"/api/characters/{character['id']}/avatar").status_code == 200


def test_character_named_like_a_path_stays_inside(client: TestClient, tmp_path: Path) -> None:
    for name in EVIL_NAMES[:6]:
        made = client.post("/api/characters", json={"name": name, "description": "d"})
        assert made.status_code in (201, 422), made.text
        if made.status_code == 201:
            updated = client.put(f"/api/characters/{made.json()['id']}", json={"name": name + "/../../x"})
            assert updated.status_code < 500, updated.text
    assert _files_outside(tmp_path) == []


@pytest.mark.parametrize("name", ["../../data/neuralrp.db", "/etc/passwd", "..", "a\x00b.db.gz",
                                  "neuralrp-20250101-000000.db.gz/../../x", "x" * 4000])
def test_backup_names_cannot_traverse(client: TestClient, tmp_path: Path, name: str) -> None:
    path = quote(name, safe="")
    for method, route in (("DELETE", f"/api/backups/{path}"), ("POST", f"/api/backups/{path}/restore")):
        resp = client.request(method, route)
        assert 400 <= resp.status_code < 500, (route, resp.status_code, resp.text)
    assert (tmp_path / "data").exists()
    assert _files_outside(tmp_path) == []
