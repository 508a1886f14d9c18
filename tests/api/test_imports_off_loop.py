"""Import routes run the import on a worker thread: while one is held mid-import the server keeps answering."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi.testclient import TestClient

from neuralrp.app import create_app

GATE_TIMEOUT_S = 20.0
WORLD = json.dumps({"entries": {str(i): {"uid": i, "key": [f"place{i}"], "content": f"Lore {i}."}
                                for i in range(200)}}).encode()
CARD = json.dumps({"name": "Gated", "description": "Held at the gate.", "first_mes": "Hi."}).encode()


@pytest.fixture
def client(make_settings: Any) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings())) as test_client:
        yield test_client


def _world(client: TestClient) -> Any:
    return client.post("/api/worlds/import", files={"file": ("big.json", WORLD)})


def _card(client: TestClient) -> Any:
    return client.post("/api/characters/import", files={"file": ("gated.json", CARD)})


def _many(client: TestClient) -> Any:
    return client.post("/api/library/import", files=[("files", ("big.json", WORLD)), ("files", ("gated.json", CARD))])


@pytest.mark.parametrize("send, method", [(_world, "import_world"), (_card, "import_card"), (_many, "import_world")],
                         ids=["world", "card", "several files"])
def test_import_runs_off_the_event_loop(client: TestClient, monkeypatch: pytest.MonkeyPatch,
                                        send: Callable[[TestClient], Any], method: str) -> None:
    """The import is held inside the library until /api/system/health has answered; on the loop, health could
    only answer after the gate timed out, which `released` records."""
    library = client.app.state.services.library  # type: ignore[attr-defined]
    real = getattr(library, method)
    entered, release = threading.Event(), threading.Event()
    released: list[bool] = []

    def held(*args: Any, **kwargs: Any) -> Any:
        entered.set()
        released.append(release.wait(GATE_TIMEOUT_S))
        return real(*args, **kwargs)

    monkeypatch.setattr(library, method, held)
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(send, client)
        assert entered.wait(GATE_TIMEOUT_S), f"{method} was never called"
        assert client.get("/api/system/health").json() == {"status": "ok"}
        release.set()
        resp = pending.result(GATE_TIMEOUT_S)
    assert resp.status_code in (200, 201), resp.text
    assert released == [True]


def test_imported_world_and_card_come_back_whole(client: TestClient) -> None:
    world = _world(client)
    assert world.status_code == 201, world.text
    assert world.headers["content-type"] == "application/json"
    assert len(world.json()["entries"]) == 200
    assert client.get(f"/api/worlds/{world.json()['id']}").json() == world.json()
    card = _card(client)
    assert card.status_code == 201, card.text
    assert card.json()["name"] == "Gated"
    assert client.get(f"/api/characters/{card.json()['id']}").json() == card.json()
    results = _many(client).json()["results"]
    assert [(r["file"], r["status"]) for r in results] == [("big.json", "imported"), ("gated.json", "skipped")]
