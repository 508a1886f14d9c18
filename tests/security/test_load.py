"""Backend faults under load: 50 concurrent requests while the fake LLM stalls or dies.

NeuralRP and the fake LLM both run on loopback ports. During the storm `/api/system/health` must answer within
1 s; afterwards the SQLite file passes `PRAGMA integrity_check`, every user message that was accepted is
stored, and no reply is left `streaming`.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from neuralrp.app import create_app
from neuralrp.config import Settings, load_settings
from tests.fakes import FakeLLM, LiveServer

pytestmark = pytest.mark.slow

REQUESTS = 50
CHATS = REQUESTS // 2
HEALTH_BUDGET_S = 1.0


@dataclass
class Rig:
    """The fake LLM, its server, NeuralRP's URL and settings."""

    fake: FakeLLM
    llm_server: LiveServer
    url: str
    settings: Settings


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    """NeuralRP (LLM read timeout 2 s) against the fake llama.cpp on real loopback ports."""
    fake = FakeLLM("llamacpp", hang_timeout=8.0)
    llm_server = LiveServer(fake.app).start()
    settings = load_settings(overrides={"paths": {"data_dir": str(tmp_path / "data")},
                                        "llm": {"base_url": llm_server.url, "timeout_s": 2.0,
                                                "connect_timeout_s": 1.0}}, environ={})
    with LiveServer(create_app(settings), graceful_timeout=3.0) as server:
        yield Rig(fake, llm_server, server.url, settings)
    llm_server.stop()


async def _chats(client: httpx.AsyncClient) -> list[int]:
    ids = []
    for n in range(CHATS):
        made = await client.post("/api/chats", json={"card": {"name": f"Load {n}", "first_mes": "Hello."}})
        assert made.status_code == 201, made.text
        ids.append(made.json()["id"])
    return ids


async def _send(client: httpx.AsyncClient, chat_id: int, text: str, sent: list[str]) -> int:
    """Send one message (streamed); remember its text when the server accepted it."""
    async with client.stream("POST", f"/api/chats/{chat_id}/messages", json={"content": text}) as resp:
        if resp.status_code < 300:
            sent.append(text)
        async for _ in resp.aiter_bytes():
            pass
        assert resp.status_code in (200, 502, 503), resp.status_code  # a reply, or a clear backend error
        return resp.status_code


async def _watch_health(client: httpx.AsyncClient, stop: asyncio.Event, worst: list[float]) -> None:
    """Poll health while the storm runs; record every latency."""
    while not stop.is_set():
        started = time.perf_counter()
        resp = await client.get("/api/system/health", timeout=HEALTH_BUDGET_S)
        assert resp.status_code == 200
        worst.append(time.perf_counter() - started)
        await asyncio.sleep(0.05)


async def _storm(rig: Rig, during: Callable[[], Awaitable[None]] | None = None) -> tuple[list[str], list[float]]:
    """50 requests (sends and GETs) with health polling; `during` runs once the storm is under way."""
    limits = httpx.Limits(max_connections=REQUESTS + 5)
    async with httpx.AsyncClient(base_url=rig.url, timeout=20.0, limits=limits) as client:
        ids = await _chats(client)
        sent: list[str] = []
        latencies: list[float] = []
        stop = asyncio.Event()
        watcher = asyncio.create_task(_watch_health(client, stop, latencies))
        jobs = [_send(client, ids[n // 2], f"storm message {n}", sent) if n % 2 == 0
                else client.get(f"/api/chats/{ids[n // 2]}/messages") for n in range(REQUESTS)]
        tasks = [asyncio.ensure_future(job) for job in jobs]
        if during is not None:
            await _until(lambda: rig.fake.in_flight >= 5)
            await during()
        await asyncio.gather(*tasks, return_exceptions=False)
        stop.set()
        await watcher
        await _settle(client, ids)
        return sent, latencies


async def _until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait (politely) until check() holds."""
    deadline = time.monotonic() + timeout
    while not check() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)


async def _settle(client: httpx.AsyncClient, ids: list[int], timeout: float = 15.0) -> None:
    """Wait until no chat has a reply still streaming."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        statuses = [m.get("status") for cid in ids
                    for m in (await client.get(f"/api/chats/{cid}/messages")).json()["messages"]]
        if "streaming" not in statuses:
            return
        await asyncio.sleep(0.2)


def _assert_consistent(settings: Settings, sent: list[str]) -> None:
    """integrity_check ok, every accepted user message stored, nothing left streaming."""
    conn = sqlite3.connect(settings.db_path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        stored = {row[0] for row in conn.execute("SELECT content FROM messages WHERE role = 'user'")}
        assert set(sent) <= stored
        assert conn.execute("SELECT COUNT(*) FROM messages WHERE status = 'streaming'").fetchone()[0] == 0
    finally:
        conn.close()


async def test_llm_stalls_under_load(rig: Rig) -> None:
    rig.fake.set_fault("hang", after=3)
    sent, latencies = await _storm(rig)
    assert sent, "no message was accepted"
    assert latencies and max(latencies) < HEALTH_BUDGET_S
    _assert_consistent(rig.settings, sent)


async def test_llm_dies_under_load(rig: Rig) -> None:
    rig.fake.set_fault("slow", between=0.3)

    async def kill() -> None:
        await asyncio.to_thread(rig.llm_server.stop)

    sent, latencies = await _storm(rig, kill)
    assert sent, "no message was accepted"
    assert latencies and max(latencies) < HEALTH_BUDGET_S
    _assert_consistent(rig.settings, sent)
