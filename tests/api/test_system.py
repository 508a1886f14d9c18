"""System status API, in-process, with backends reached through injected transports."""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from fastapi.testclient import TestClient

from neuralrp import __version__
from neuralrp.app import create_app
from neuralrp.backends import Probe, ProbeCache
from neuralrp.db.connection import Database


def recording_transport(status: int, body: Any, seen: list[str]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(status, json=body)

    return httpx.MockTransport(handler)


def test_status_reports_version_schema_and_db(make_settings: Any) -> None:
    settings = make_settings()
    with TestClient(create_app(settings)) as client:
        body = client.get("/api/system/status").json()
    assert body["version"] == __version__
    assert body["schema_version"] >= 1
    assert body["database"]["path"] == str(settings.db_path)
    assert body["database"]["size_bytes"] > 0
    assert body["database"]["vec_version"].startswith("v0.1")
    assert body["database"]["counts"]["chats"] == 0
    assert body["disk"]["free_bytes"] > 0
    assert body["backends"]["llm"]["configured"] is False
    assert "llm.base_url" in body["backends"]["llm"]["hint"]
    for sub in ("characters", "worlds", "images", "backups", "logs"):
        assert (settings.data_dir / sub).is_dir()


def test_status_probes_configured_backends(make_settings: Any) -> None:
    settings = make_settings(llm={"base_url": "http://llm.test:5001/v1"}, images={"base_url": "http://sd.test:7860"})
    seen: list[str] = []
    app = create_app(
        settings,
        llm_transport=recording_transport(200, {"object": "list", "data": [{"id": "m"}]}, seen),
        image_transport=recording_transport(404, {"detail": "Not Found"}, seen),
    )
    with TestClient(app) as client:
        body = client.get("/api/system/status").json()
    assert "http://llm.test:5001/v1/models" in seen
    assert "http://sd.test:7860/sdapi/v1/sd-models" in seen
    assert body["health"] == "ok"
    assert body["backends"]["llm"]["reachable"] is True
    images = body["backends"]["images"]
    assert images["reachable"] is False
    assert "HTTP 404" in images["detail"]
    assert "--api" in images["hint"]


def test_status_when_llm_is_down(make_settings: Any) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    settings = make_settings(llm={"base_url": "http://127.0.0.1:5001"})
    with TestClient(create_app(settings, llm_transport=httpx.MockTransport(refuse))) as client:
        body = client.get("/api/system/status").json()
    assert body["health"] == "degraded"
    assert body["backends"]["llm"]["reachable"] is False
    assert "cannot connect" in body["backends"]["llm"]["detail"]


def test_web_shell_is_served(make_settings: Any) -> None:
    with TestClient(create_app(make_settings())) as client:
        page = client.get("/")
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    assert "NeuralRP" in page.text


def test_unknown_api_route_is_json_404(make_settings: Any) -> None:
    with TestClient(create_app(make_settings())) as client:
        resp = client.get("/api/nope")
    assert resp.status_code == 404


def test_status_asks_the_image_server_once_while_its_answer_is_fresh(make_settings: Any) -> None:
    settings = make_settings(images={"base_url": "http://sd.test:7860"})
    seen: list[str] = []
    app = create_app(settings, image_transport=recording_transport(200, [{"title": "m"}], seen))
    with TestClient(app) as client:
        answers = [client.get("/api/system/status").json() for _ in range(3)]
    assert seen == ["http://sd.test:7860/sdapi/v1/sd-models"]  # a status page polling costs the server nothing
    assert all(a["backends"]["images"]["reachable"] is True for a in answers)


async def test_probe_cache_asks_again_for_another_address_or_after_a_failure() -> None:
    cache = ProbeCache(ttl_s=60)
    asked: list[str] = []

    def fresh(url: str, reachable: bool) -> Callable[[], Awaitable[Probe]]:
        async def ask() -> Probe:
            asked.append(url)
            return Probe("images", True, reachable, url, "")
        return ask

    await cache.get(fresh("http://a", True), busy=False, url="http://a")
    await cache.get(fresh("http://a", True), busy=False, url="http://a")
    moved = await cache.get(fresh("http://b", False), busy=False, url="http://b")
    await cache.get(fresh("http://b", True), busy=False, url="http://b")
    assert asked == ["http://a", "http://b", "http://b"] and moved.url == "http://b"


def test_database_size_survives_a_wal_that_comes_and_goes(tmp_path: Path) -> None:
    db = Database(tmp_path / "neuralrp.db")
    db.path.write_bytes(b"x" * 4096)
    wal = tmp_path / "neuralrp.db-wal"
    stop = threading.Event()

    def checkpoints() -> None:  # SQLite creates the WAL and deletes it again (checkpoint on close)
        while not stop.is_set():
            wal.write_bytes(b"w")
            wal.unlink()

    churn = threading.Thread(target=checkpoints)
    churn.start()
    try:
        sizes = {db.size_bytes()["wal"] for _ in range(60_000)}  # the old exists()-then-stat() failed ~10 times
    finally:
        stop.set()
        churn.join()
    assert sizes <= {0, 1} and db.size_bytes() == {"db": 4096, "wal": 0}
