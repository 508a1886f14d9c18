"""Shared helpers for the tests of the fakes (tests/test_fake_*.py): request bodies and in-process clients."""

from __future__ import annotations

from typing import Any

import httpx

CHAT = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"
HELLO = [{"role": "system", "content": "You are a knight."}, {"role": "user", "content": "Hello there, traveller."}]


def client(app: Any) -> httpx.AsyncClient:
    """An in-process client (whole responses are buffered by ASGITransport)."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://fake")


def chat_body(stream: bool = True, **extra: Any) -> dict[str, Any]:
    """A chat request body for the llama3.2 model (accepted by every flavour)."""
    return {"model": "llama3.2", "messages": HELLO, "stream": stream, **extra}


async def post(app: Any, path: str, body: Any) -> httpx.Response:
    """POST JSON to an app in-process."""
    async with client(app) as c:
        return await c.post(path, json=body)


def content_of(chunks: list[dict[str, Any]]) -> str:
    """Join the delta contents of chat chunks."""
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
