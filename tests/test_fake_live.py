"""LiveServer runs an app on a real port; the fake LLM streams, hangs and aborts over it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from fastapi import FastAPI

from tests.fake_helpers import CHAT, chat_body, content_of
from tests.fakes import FakeLLM, LiveServer, data_payloads, json_chunks
from tests.waiting import async_wait_until

# --------------------------------------------------------------------------- live server


def live_client(server: LiveServer, timeout: float) -> httpx.AsyncClient:
    """A real-socket client for a LiveServer (ignores proxy settings from the environment)."""
    return httpx.AsyncClient(base_url=server.url, timeout=timeout, trust_env=False)


def test_live_server_sync_client_and_lifespan() -> None:
    events: list[str] = []

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        events.append("startup")
        yield
        events.append("shutdown")

    app = FastAPI(lifespan=lifespan)

    @app.get("/ping")
    async def ping() -> dict[str, str]:
        return {"pong": "yes"}

    with LiveServer(app) as server:
        assert events == ["startup"] and server.url == f"http://127.0.0.1:{server.port}"
        assert httpx.get(server.url + "/ping", trust_env=False).json() == {"pong": "yes"}
    assert events == ["startup", "shutdown"]


def test_live_server_reports_failed_startup() -> None:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        raise RuntimeError("no")
        yield

    with pytest.raises(RuntimeError, match="did not start"):
        LiveServer(FastAPI(lifespan=lifespan), startup_timeout=5).start()


async def test_real_stream_arrives_in_chunks_over_live_server() -> None:
    fake = FakeLLM("tabbyapi")
    fake.enqueue("one two three")
    fake.fault("slow", between=0.05)
    parts: list[bytes] = []
    async with LiveServer(fake.app) as server, live_client(server, 5) as c:
        async with c.stream("POST", CHAT, json=chat_body()) as response:
            parts = [part async for part in response.aiter_raw()]
    assert len(parts) > 2 and b"".join(parts).endswith(b"data: [DONE]\r\n\r\n")
    assert fake.disconnects == 0


async def test_hang_until_client_disconnects() -> None:
    fake = FakeLLM("llamacpp")
    fake.fault("hang", after=2)
    async with LiveServer(fake.app) as server, live_client(server, 5) as c:
        async with c.stream("POST", CHAT, json=chat_body()) as response:
            seen = b""
            async for part in response.aiter_raw():
                seen += part
                if seen.count(b"data: ") >= 2:
                    break
            assert fake.in_flight == 1 and fake.disconnects == 0
        assert await fake.wait_disconnect()
    assert fake.disconnects == 1 and fake.in_flight == 0


async def test_non_stream_hang_detects_disconnect() -> None:
    fake = FakeLLM("openai")
    fake.fault("hang")
    async with LiveServer(fake.app) as server, live_client(server, 0.3) as c:
        with pytest.raises(httpx.ReadTimeout):
            await c.post(CHAT, json=chat_body(False))
        assert await fake.wait_disconnect()


async def test_kobold_abort_finishes_a_hanging_stream() -> None:
    fake = FakeLLM("koboldcpp")
    fake.enqueue("a b c d e f")
    fake.fault("hang", after=1)
    async with LiveServer(fake.app) as server, live_client(server, 5) as c:
        task = asyncio.create_task(c.post(CHAT, json=chat_body()))
        await async_wait_until(lambda: fake.in_flight, what="the generation to start")
        abort = await c.post("/api/extra/abort", json={"genkey": "KCPP1"})
        response = await task
    assert abort.json() == {"success": "true", "done": "true"} and fake.aborts == 1
    chunks = json_chunks(response.content)
    assert content_of(chunks) == "a" and chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert data_payloads(response.content)[-1] == "[DONE]" and fake.disconnects == 0
    assert fake.requests_to("/api/extra/abort")[0].json == {"genkey": "KCPP1"}
