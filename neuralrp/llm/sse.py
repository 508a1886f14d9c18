"""A forgiving Server-Sent Events reader for every LLM server's stream dialect.

Handles LF and CRLF framing, `:` comment (ping) lines, `event:` lines, llama.cpp's
`error:` lines, multi-line `data:` events, a missing `[DONE]`, and a final event
without its blank line. It yields raw event payloads; callers decode JSON.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from typing import Literal

DONE = "[DONE]"


@dataclass(frozen=True)
class SSEEvent:
    """One dispatched event: a data payload or an error payload."""

    kind: Literal["data", "error"]
    payload: str


class SSEDecoder:
    """Incremental line-based decoder; feed lines, collect events."""

    def __init__(self) -> None:
        self._data: list[str] = []

    def feed(self, line: str) -> SSEEvent | None:
        """Consume one line (without its terminator); return an event when one completes."""
        line = line.rstrip("\r")
        if line == "":
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "data":
            self._data.append(value)
        elif name == "error":
            self._data.clear()
            return SSEEvent("error", value)
        return None

    def flush(self) -> SSEEvent | None:
        """Dispatch whatever is pending at end of stream."""
        return self._dispatch()

    def _dispatch(self) -> SSEEvent | None:
        if not self._data:
            return None
        payload = "\n".join(self._data)
        self._data.clear()
        return SSEEvent("data", payload)


def iter_events(lines: Iterable[str]) -> Iterator[SSEEvent]:
    """Decode an iterable of lines into events."""
    decoder = SSEDecoder()
    for line in lines:
        event = decoder.feed(line)
        if event is not None:
            yield event
    tail = decoder.flush()
    if tail is not None:
        yield tail


async def aiter_events(lines: AsyncIterable[str]) -> AsyncIterator[SSEEvent]:
    """Decode an async iterable of lines into events."""
    decoder = SSEDecoder()
    async for line in lines:
        event = decoder.feed(line)
        if event is not None:
            yield event
    tail = decoder.flush()
    if tail is not None:
        yield tail
