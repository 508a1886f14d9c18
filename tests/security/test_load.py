"""Backend faults under load: 50 concurrent requests while the fake LLM stalls or dies.

NeuralRP and the fake LLM both run on loopback ports. During the storm `/api/system/health` must answer within
1 s; every reply ends (a streamed one with a final `done` or `error` event, else 200/201 or a clear 502/503);
afterwards the SQLite file passes `PRAGMA integrity_check`, every user message that was accepted is stored, and
no reply is left `streaming`. The LLM scheduler runs `llm.parallel_slots` replies at once and queues the rest:
the LLM dies both with one slot (one reply streaming, the others waiting for it) and with five.
"""

from __future__ import annotations

import asyncio
import contextlib
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
from tests.waiting import async_wait_until

pytestmark = pytest.mark.slow

REQUESTS = 50
CHATS = REQUESTS // 2
HEALTH_BUDGET_S = 1.0
# Client-side limits sized for a busy two-core machine: a slow answer must show up as a measured latency (checked
# against HEALTH_BUDGET_S) or a late reply, never as an httpx timeout that hides what happened.
CLIENT_TIMEOUT = httpx.Timeout(120.0, connect=30.0)


@dataclass
class Rig:
    """The fake LLM, its server, NeuralRP's URL and settings."""

    fake: FakeLLM
    llm_server: LiveServer
    url: str
    settings: Settings


@dataclass
class Ended:
    """How one sent message ended: the HTTP status and, for a streamed reply, its last event type."""

    status: int
    last_event: str | None = None

    @property
    def failed(self) -> bool:
        """A clear backend error: 502/503, or a stream whose final event is `error`."""
        return self.status in (502, 503) or self.last_event == "error"


@pytest.fixture
def rig(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Rig]:
    """NeuralRP (LLM read timeout 2 s; `llm.parallel_slots` from the test's parameter, else 1) against the fake
    llama.cpp on real loopback ports."""
    slots = getattr(request, "param", 1)
    fake = FakeLLM("llamacpp", hang_timeout=8.0)
    llm_server = LiveServer(fake.app).start()
    settings = load_settings(overrides={"paths": {"data_dir": str(tmp_path / "data")},
                                        "llm": {"base_url": llm_server.url, "timeout_s": 2.0,
                                                "connect_timeout_s": 1.0, "parallel_slots": slots}}, environ={})
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


async def _send(client: httpx.AsyncClient, chat_id: int, text: str, sent: list[str]) -> Ended:
    """Send one message (streamed); remember its text when the server accepted it."""
    async with client.stream("POST", f"/api/chats/{chat_id}/messages", json={"content": text}) as resp:
        if resp.status_code < 300:
            sent.append(text)
        events = [line[6:].strip() async for line in resp.aiter_lines() if line.startswith("event:")]
        assert resp.status_code in (200, 201, 502, 503), resp.status_code  # a reply, or a clear backend error
        if resp.status_code == 200:  # streamed: it must end with a final event, never just stop
            assert events and events[-1] in ("done", "error"), events[-5:]
        return Ended(resp.status_code, events[-1] if events else None)


async def _watch_health(client: httpx.AsyncClient, stop: asyncio.Event, worst: list[float]) -> None:
    """Poll health while the storm runs; record every latency."""
    while not stop.is_set():
        started = time.perf_counter()
        resp = await client.get("/api/system/health")
        assert resp.status_code == 200
        worst.append(time.perf_counter() - started)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=0.05)


async def _replies_under_way(client: httpx.AsyncClient, rig: Rig, slots: int) -> bool:
    """Every slot streams at the fake LLM and five replies in all are running or waiting for a slot."""
    tasks = (await client.get("/api/system/llm-tasks")).json()
    return rig.fake.in_flight >= slots and tasks["replies"] >= 5


async def _storm(rig: Rig, during: Callable[[], Awaitable[None]] | None = None
                 ) -> tuple[list[str], list[float], list[Ended]]:
    """50 requests (sends and GETs) with health polling; `during` runs once every LLM slot streams and five
    replies are under way (streaming or queued)."""
    limits = httpx.Limits(max_connections=REQUESTS + 5)
    async with httpx.AsyncClient(base_url=rig.url, timeout=CLIENT_TIMEOUT, limits=limits) as client:
        ids = await _chats(client)
        sent: list[str] = []
        latencies: list[float] = []
        stop = asyncio.Event()
        watcher = asyncio.create_task(_watch_health(client, stop, latencies))
        jobs = [_send(client, ids[n // 2], f"storm message {n}", sent) if n % 2 == 0
                else client.get(f"/api/chats/{ids[n // 2]}/messages") for n in range(REQUESTS)]
        tasks = [asyncio.ensure_future(job) for job in jobs]
        if during is not None:
            slots = rig.settings.llm.parallel_slots
            await async_wait_until(lambda: _replies_under_way(client, rig, slots),
                                   what=f"{slots} replies streaming from the LLM and five under way")
            await during()
        answers = await asyncio.gather(*tasks, return_exceptions=False)
        stop.set()
        await watcher
        await _settle(client, ids)
        return sent, latencies, [a for a in answers if isinstance(a, Ended)]


async def _settle(client: httpx.AsyncClient, ids: list[int]) -> None:
    """Wait until no chat has a reply still streaming."""

    async def statuses() -> list[str | None]:
        return [m.get("status") for cid in ids
                for m in (await client.get(f"/api/chats/{cid}/messages")).json()["messages"]]

    await async_wait_until(statuses, until=lambda seen: "streaming" not in seen, interval=0.2,
                           what="every reply to stop streaming")


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
    sent, latencies, _ = await _storm(rig)
    assert sent, "no message was accepted"
    assert latencies and max(latencies) < HEALTH_BUDGET_S, f"slowest health answers: {sorted(latencies)[-5:]}"
    _assert_consistent(rig.settings, sent)


@pytest.mark.parametrize("rig", [1, 5], indirect=True, ids=["one-slot", "five-slots"])
async def test_llm_dies_under_load(rig: Rig) -> None:
    """The LLM server dies while its slots stream and other replies wait in NeuralRP's queue: every reply
    ends, the ones cut short or still queued with a clear 502/503 (or a final `error` event)."""
    rig.fake.set_fault("slow", between=0.3)

    async def kill() -> None:
        await asyncio.to_thread(rig.llm_server.stop)

    sent, latencies, ended = await _storm(rig, kill)
    assert sent, "no message was accepted"
    assert any(e.failed for e in ended), f"no reply saw the LLM die: {ended}"
    assert latencies and max(latencies) < HEALTH_BUDGET_S, f"slowest health answers: {sorted(latencies)[-5:]}"
    _assert_consistent(rig.settings, sent)
