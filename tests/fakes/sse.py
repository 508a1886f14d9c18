"""SSE helpers for the fakes and their tests.

Framing: `frame(payload, field="data", crlf=False)` builds one event (`data: ...` plus a blank line),
`comment(text)` a `: ...` comment line.  `StreamBody` is a tiny ASGI response that streams an async
iterator of bytes and, unlike a plain buffered response, notices when the client goes away while the body
is still being produced (it listens on `receive()` for `http.disconnect` and cancels the producer).

Parsing (for tests, deliberately strict about framing so quirks stay visible):
`sse_lines(raw)` splits raw bytes into lines (CRLF or LF), `sse_fields(raw)` gives `(field, value)` pairs for
every non-blank line (comments as field `""`), `data_payloads(raw)` the `data:` values in order and
`json_chunks(raw)` those payloads decoded, skipping `[DONE]` and anything that is not JSON.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any

import anyio
from starlette.responses import Response

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_LINE_SPLIT = re.compile(r"\r\n|\n|\r")


def frame(payload: str, *, field: str = "data", crlf: bool = False, blank: bool = True) -> bytes:
    """Encode one SSE event line (`field: payload`), followed by a blank line unless `blank` is False."""
    nl = "\r\n" if crlf else "\n"
    return f"{field}: {payload}{nl}{nl if blank else ''}".encode()


def comment(text: str, *, crlf: bool = False) -> bytes:
    """Encode an SSE comment line (`: text`) followed by a blank line."""
    nl = "\r\n" if crlf else "\n"
    return f": {text}{nl}{nl}".encode()


def sse_lines(raw: bytes) -> list[str]:
    """Split a raw SSE body into lines, accepting LF, CRLF and CR line endings."""
    text = raw.decode("utf-8")
    lines = _LINE_SPLIT.split(text)
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def sse_fields(raw: bytes) -> list[tuple[str, str]]:
    """Return `(field, value)` for every non-blank line; comment lines have field `""`."""
    out: list[tuple[str, str]] = []
    for line in sse_lines(raw):
        if not line:
            continue
        field, _, value = line.partition(":")
        out.append((field, value[1:] if value.startswith(" ") else value))
    return out


def data_payloads(raw: bytes) -> list[str]:
    """Return the values of all `data:` lines in order (including `[DONE]` and garbage)."""
    return [value for field, value in sse_fields(raw) if field == "data"]


def json_chunks(raw: bytes) -> list[dict[str, Any]]:
    """Return every `data:` payload that decodes as a JSON object, in order."""
    chunks: list[dict[str, Any]] = []
    for payload in data_payloads(raw):
        try:
            value = json.loads(payload)
        except ValueError:
            continue
        if isinstance(value, dict):
            chunks.append(value)
    return chunks


class StreamBody(Response):
    """ASGI response streaming `body`; calls `on_disconnect()` if the client leaves before the end."""

    def __init__(
        self,
        body: AsyncIterator[bytes],
        on_disconnect: Callable[[], None],
        *,
        status: int = 200,
        media_type: str = "text/event-stream",
    ) -> None:
        super().__init__(status_code=status, media_type=media_type)
        self.chunks = body
        self.on_disconnect = on_disconnect

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the producer and a disconnect listener side by side."""
        headers = [(k, v) for k, v in self.raw_headers if k != b"content-length"]
        headers.append((b"cache-control", b"no-cache"))
        await send({"type": "http.response.start", "status": self.status_code, "headers": headers})
        state = {"finished": False, "disconnected": False}
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._listen, receive, state, tg.cancel_scope)
            await self._produce(send, state)
            tg.cancel_scope.cancel()
        if state["disconnected"]:
            self.on_disconnect()

    async def _listen(self, receive: Receive, state: dict[str, bool], scope: anyio.CancelScope) -> None:
        """Wait for `http.disconnect`; if the body is unfinished, flag it and cancel the producer."""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
        if not state["finished"]:
            state["disconnected"] = True
            scope.cancel()

    async def _produce(self, send: Send, state: dict[str, bool]) -> None:
        """Send every chunk of the body, then the final empty chunk."""
        try:
            async for chunk in self.chunks:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            state["finished"] = True
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:
            state["disconnected"] = True
