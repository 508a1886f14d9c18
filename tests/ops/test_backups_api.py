"""Backup API: list, create, delete, restore (replies and background writers stopped first)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from neuralrp.app import create_app
from neuralrp.config import Settings
from tests.ops.helpers import fingerprint, seed


def test_create_list_restore_delete(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        db = client.app.state.services.db  # type: ignore[attr-defined]
        with db.session() as conn:
            seed(conn)
        before = fingerprint(db.path)
        made = client.post("/api/backups", json={"label": "api"})
        assert made.status_code == 201, made.text
        name = made.json()["name"]
        assert name.endswith("-api.db.gz")
        with db.session() as conn:
            conn.execute("DELETE FROM chats")
        restored = client.post(f"/api/backups/{name}/restore")
        assert restored.status_code == 200, restored.text
        assert restored.json()["pre_restore"].endswith("-pre-restore.db.gz")
        assert fingerprint(db.path) == before
        assert client.get("/api/chats").status_code == 200
        listing = client.get("/api/backups").json()
        assert {b["name"] for b in listing["backups"]} == {name, restored.json()["pre_restore"]}
        status = client.get("/api/system/status").json()
        assert status["backups"]["count"] == 2 and status["backups"]["total_bytes"] > 0
        assert set(status["jobs"]) == {"backup", "retention", "vacuum", "history"}
        assert client.delete(f"/api/backups/{name}").status_code == 204
        assert len(client.get("/api/backups").json()["backups"]) == 1


def test_bad_names_are_refused(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        assert client.delete("/api/backups/..%2Fneuralrp.db").status_code in (404, 405, 422)
        assert client.post("/api/backups/neuralrp-20990101-000000.db.gz/restore").status_code == 404
        assert client.delete("/api/backups/evil.db.gz").status_code == 422
        assert client.post("/api/backups", json={"label": "../x"}).status_code == 422
        assert settings.db_path.exists()
