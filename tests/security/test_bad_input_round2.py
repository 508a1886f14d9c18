"""Issue 20, bad input: ids past 2^63 on every route, NUL in a search term, names of many 4-byte characters,
image decompression bombs, World Info with a top-level `name`, and `neuralrp import` going on after a bad file."""

from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from neuralrp.app import create_app
from neuralrp.cli import cli
from neuralrp.config import load_settings
from neuralrp.library.files import safe_stem
from neuralrp.library.service import Library

HUGE = 2**64
LONG_NAME = "𝕏" * 100  # 400 bytes in UTF-8: past the 255-byte file name limit


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = load_settings(overrides={"paths": {"data_dir": str(tmp_path / "data")}}, environ={})
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000",
                    raise_server_exceptions=False) as test_client:
        yield test_client


def _int_path_routes(client: TestClient) -> list[tuple[str, str, str]]:
    """(method, path with HUGE in each integer path parameter, first parameter name) from the OpenAPI schema."""
    found = []
    for path, item in client.get("/openapi.json").json()["paths"].items():
        for method, op in item.items():
            ints = [p["name"] for p in op.get("parameters", [])
                    if p["in"] == "path" and p.get("schema", {}).get("type") == "integer"]
            if ints:
                filled = path
                for name in ints:
                    filled = filled.replace("{" + name + "}", str(HUGE))
                found.append((method.upper(), filled, ints[0]))
    return found


def test_ids_past_2_63_are_a_422_on_every_route(client: TestClient) -> None:
    routes = _int_path_routes(client)
    assert len(routes) >= 20
    failures = []
    for method, path, name in routes:
        answer = client.request(method, path, json={}) if method in ("POST", "PUT", "PATCH") else \
            client.request(method, path)
        if answer.status_code >= 500:
            failures.append(f"{method} {path}: {answer.status_code}")
        elif method in ("GET", "DELETE") and answer.status_code == 422:
            assert name in answer.json()["detail"] or "2^63" in answer.json()["detail"], answer.text
    assert not failures, failures
    one = client.get(f"/api/chats/{HUGE}")
    assert one.status_code == 422 and "path parameter chat_id" in one.json()["detail"]


def test_nul_in_a_search_term_is_a_422(client: TestClient) -> None:
    answer = client.get("/api/search", params={"q": "dragon\x00fire"})
    assert answer.status_code == 422 and "NUL" in answer.json()["detail"]


def test_names_of_many_4_byte_characters_are_cut_by_bytes(client: TestClient, tmp_path: Path) -> None:
    assert len(safe_stem(LONG_NAME).encode()) <= 160 and safe_stem(LONG_NAME).startswith("𝕏")
    made = client.post("/api/characters", json={"name": LONG_NAME, "first_mes": "hi"})
    assert made.status_code == 201, made.text
    world = client.post("/api/worlds", json={"name": LONG_NAME})
    assert world.status_code == 201, world.text
    files = [p for p in (tmp_path / "data").rglob("*") if p.is_file() and "𝕏" in p.name]
    assert files and all(len(p.name.encode()) <= 255 for p in files)


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims width x height (a decompression bomb as far as any decoder can tell)."""
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
    ihdr = chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
    return b"\x89PNG\r\n\x1a\n" + ihdr + chunk(b"IDAT", zlib.compress(b"\x00" * 1024)) + chunk(b"IEND", b"")


def test_image_decompression_bombs_are_4xx(client: TestClient) -> None:
    bomb = _png_header_only(60000, 60000)
    made = client.post("/api/characters", json={"name": "Bombed", "first_mes": "hi"}).json()
    avatar = client.post(f"/api/characters/{made['id']}/avatar", files={"file": ("bomb.png", bomb, "image/png")})
    assert avatar.status_code in (413, 422), avatar.text
    imported = client.post("/api/characters/import", files={"file": ("bomb.png", bomb, "image/png")})
    assert imported.status_code in (413, 422), imported.text
    persona = client.post("/api/personas", json={"name": "P"})
    if persona.status_code in (200, 201):
        pic = client.post(f"/api/personas/{persona.json()['id']}/avatar", files={"file": ("b.png", bomb, "image/png")})
        assert pic.status_code in (413, 422), pic.text


def test_world_info_with_a_top_level_name_is_imported_as_a_world(client: TestClient) -> None:
    book = {"name": "Named World", "entries": {"0": {"uid": 0, "key": ["k"], "content": "c"}}}
    answer = client.post("/api/library/import", files={"files": ("named.json", json.dumps(book).encode())})
    assert answer.status_code == 200
    assert answer.json()["results"][0]["kind"] == "world", answer.text
    assert client.get("/api/characters").json() == []
    assert [w["name"] for w in client.get("/api/worlds").json()] == ["Named World"]


def test_cli_import_reports_a_bad_file_and_goes_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a.json", "b.json", "c.json"):
        card: dict[str, Any] = {"spec": "chara_card_v2", "spec_version": "2.0",
                                "data": {"name": name[0].upper(), "first_mes": "hi"}}
        (folder / name).write_text(json.dumps(card), encoding="utf-8")
    real = Library.import_card

    def failing(self: Library, data: bytes, filename: str, *args: Any, **kwargs: Any) -> Any:
        if filename == "b.json":
            raise OSError(36, "File name too long")
        return real(self, data, filename, *args, **kwargs)

    monkeypatch.setattr(Library, "import_card", failing)
    result = CliRunner().invoke(cli, ["import", str(folder)], env={"NEURALRP_PATHS_DATA_DIR": str(tmp_path / "d")})
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "b.json: could not be stored: File name too long" in result.output
    assert result.output.count("imported character") == 2


def test_serve_on_a_busy_port_exits_1_with_one_line(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("NEURALRP_")}
        proc = subprocess.run([sys.executable, "-m", "neuralrp", "serve", "--port", str(port),
                               "--data-dir", str(tmp_path / "d")], env=env, capture_output=True, text=True,
                              timeout=60)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"port {port} is in use, set --port or NEURALRP_SERVER_PORT" in proc.stderr
    assert "ready" not in proc.stdout + proc.stderr and "Traceback" not in proc.stderr
