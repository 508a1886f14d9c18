"""Issue 20, stored paths: a path read from the DB is confined to its folder on read and delete, and a backup
whose rows point outside their folders is refused by verification."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from neuralrp.app import create_app
from neuralrp.config import load_settings
from neuralrp.library import characters as chars
from neuralrp.library.files import confined, stored_path_problem
from neuralrp.ops.backup import BackupError, create_backup, verify_backup

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
SECRET = b"\x89PNG secret outside the data folder"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = load_settings(overrides={"paths": {"data_dir": str(tmp_path / "data")}}, environ={})
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as test_client:
        yield test_client


@pytest.mark.parametrize("stored", ["images/avatars/../../../secret.png", "../secret.png", "/etc/passwd",
                                    "images/avatars/", "images/avatars/..", "images\\avatars\\..\\..\\x.png",
                                    "images/avatars/a\x00.png", "characters/x.png"])
def test_stored_path_problem_names_escapes(stored: str) -> None:
    assert stored_path_problem("images/avatars", stored) is not None


def test_confined_refuses_a_link_out(tmp_path: Path) -> None:
    (tmp_path / "images" / "avatars").mkdir(parents=True)
    (tmp_path / "images" / "avatars" / "ok.png").write_bytes(b"x")
    (tmp_path / "images" / "avatars" / "link.png").symlink_to(tmp_path / "outside.png")
    assert confined(tmp_path, "images/avatars", "images/avatars/ok.png") == (tmp_path / "images/avatars/ok.png")
    assert confined(tmp_path, "images/avatars", "images/avatars/link.png") is None


def _poison(client: TestClient, tmp_path: Path) -> tuple[int, int]:
    """A character whose avatar_path and an image whose file_name lead to tmp_path/secret.png."""
    (tmp_path / "secret.png").write_bytes(SECRET)
    card = (FIXTURES / "cards" / "st_default_Seraphina.png").read_bytes()
    imported = client.post("/api/characters/import", files={"file": ("s.png", card, "image/png")})
    assert imported.status_code in (200, 201), imported.text
    cid = client.get("/api/characters").json()[0]["id"]
    db = client.app.state.services.db  # type: ignore[attr-defined]
    with db.session() as conn:
        chars.set_avatar_path(conn, cid, "images/avatars/../../../secret.png")
        conn.execute("INSERT INTO images (uid, file_name, source, prompt, negative_prompt, created_at)"
                     " VALUES ('u1', '../../secret.png', 'manual', 'p', '', '2025-01-01T00:00:00Z')")
        iid = conn.execute("SELECT id FROM images WHERE uid = 'u1'").fetchone()["id"]
    return cid, iid


def test_paths_from_the_db_never_leave_their_folder(client: TestClient, tmp_path: Path) -> None:
    cid, iid = _poison(client, tmp_path)
    avatar = client.get(f"/api/characters/{cid}/avatar")
    assert avatar.status_code == 200 and avatar.content != SECRET  # the placeholder, not the file outside
    image = client.get(f"/api/images/{iid}/file")
    assert image.status_code == 422 and "would leave images/" in image.json()["detail"]
    assert client.delete(f"/api/images/{iid}").status_code == 200
    assert client.delete(f"/api/characters/{cid}").status_code in (200, 204)
    assert (tmp_path / "secret.png").read_bytes() == SECRET


def test_backup_with_escaping_paths_fails_verification(client: TestClient, tmp_path: Path) -> None:
    _poison(client, tmp_path)
    services = client.app.state.services  # type: ignore[attr-defined]
    folder = tmp_path / "b"
    info = create_backup(services.db, folder, now=datetime(2025, 3, 1, tzinfo=UTC))  # backing up still works
    with pytest.raises(BackupError, match="leave their folders") as refused:
        verify_backup(info.path)
    assert "characters.avatar_path" in str(refused.value) and "images.file_name" in str(refused.value)
