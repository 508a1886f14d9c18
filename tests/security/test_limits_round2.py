"""Issue 20, limits: every body counted whatever its content type, multipart stopped while it arrives, gzip
backups bounded while they inflate."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from neuralrp.app import create_app
from neuralrp.config import load_settings
from neuralrp.ops.backup import BackupError, verify_backup

MIB = 1024 * 1024


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    """An app with a 1 MiB body limit and the default JSON depth (64)."""
    settings = load_settings(overrides={"paths": {"data_dir": str(tmp_path / "data")},
                                        "security": {"max_upload_mb": 1}}, environ={})
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as test_client:
        yield test_client


@pytest.mark.parametrize("content_type", ["application/JSON", "Application/Json; charset=UTF-8", None])
def test_depth_and_size_hold_whatever_the_content_type(client: TestClient, content_type: str | None) -> None:
    headers = {"content-type": content_type} if content_type else {}
    deep = "[" * 900 + "]" * 900
    body = json.dumps({"name": "Deep", "description": "d", "tags": []})[:-1] + f', "extensions": {{"x": {deep}}}}}'
    refused = client.post("/api/characters", content=body, headers=headers)
    assert refused.status_code == 422 and "security.max_json_depth" in refused.json()["detail"]
    big = json.dumps({"name": "Big", "description": "x" * (MIB + 10)})
    huge = client.post("/api/characters", content=big, headers=headers)
    assert huge.status_code == 413 and "security.max_upload_mb" in huge.json()["detail"]
    assert client.get("/api/characters").json() == []


def test_oversized_multipart_is_refused_by_its_declared_length(client: TestClient) -> None:
    big = client.post("/api/characters/import", files={"file": ("big.png", b"\x89PNG" + b"0" * (MIB + 10))})
    assert big.status_code == 413 and "security.max_upload_mb" in big.json()["detail"]


def _scope(path: str, content_type: bytes) -> dict[str, Any]:
    """An HTTP scope without Content-Length (a chunked upload)."""
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
            "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "", "query_string": b"",
            "headers": [(b"host", b"127.0.0.1:8000"), (b"content-type", content_type)],
            "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000)}


@pytest.mark.parametrize("path, content_type", [("/api/characters/import", b"multipart/form-data; boundary=xyz"),
                                                ("/api/characters", b"application/octet-stream")])
def test_endless_chunked_body_is_stopped_while_it_arrives(client: TestClient, path: str, content_type: bytes) -> None:
    pulled = 0
    sent: list[dict[str, Any]] = []
    head = b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\n'

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        pulled += 1
        if pulled > 200:  # 12 MiB: far past the limit; the app should have stopped long before
            return {"type": "http.disconnect"}
        return {"type": "http.request", "body": head if pulled == 1 else b"0" * 65536, "more_body": True}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    client.portal.call(client.app, _scope(path, content_type), receive, send)
    assert sent[0]["status"] == 413
    assert "security.max_upload_mb" in json.loads(sent[1]["body"])["detail"]
    assert pulled <= MIB // 65536 + 2


def _sqlite_header(pages: int) -> bytes:
    """A 100-byte SQLite header declaring `pages` pages of 4096 bytes (valid page count)."""
    header = bytearray(100)
    header[:16] = b"SQLite format 3\x00"
    header[16:18] = (4096).to_bytes(2, "big")
    header[24:28] = (7).to_bytes(4, "big")
    header[28:32] = pages.to_bytes(4, "big")
    header[92:96] = (7).to_bytes(4, "big")
    return bytes(header)


def _bomb(path: Path, head: bytes, inflated: int) -> None:
    """A gzip file that inflates to `inflated` bytes, written a MiB at a time."""
    with gzip.open(path, "wb", compresslevel=1) as out:
        out.write(head)
        zeros = bytes(MIB)
        for _ in range(inflated // MIB):
            out.write(zeros)


@pytest.mark.parametrize("head, reason", [(_sqlite_header(2), "inflates past the 8192 bytes"),
                                          (b"not sqlite" * 20, "no SQLite header")])
def test_gzip_bomb_backup_stops_at_its_limit(tmp_path: Path, head: bytes, reason: str) -> None:
    bomb = tmp_path / "neuralrp-20250301-120000.db.gz"
    _bomb(bomb, head, 256 * MIB)
    kept = tmp_path / "staged.db"
    with pytest.raises(BackupError, match=reason):
        verify_backup(bomb, keep_as=kept)
    assert not kept.exists()
    assert [p.name for p in tmp_path.iterdir()] == [bomb.name]
