"""Streaming for the fake LLM: SSE/NDJSON bodies with the stream faults (`slow`, `cut`, `interrupt`,
`malformed`, `error_event`, `hang`) injected at their chunk index, plus abort and disconnect book-keeping.

`LLMStreaming` is a mixin for `FakeLLM`, which supplies the state declared on it.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .base import Faults
from .llm_shapes import Generation, Shapes, ndjson
from .sse import comment, frame


@dataclass(eq=False)
class StreamState:
    """Book-keeping for one running generation."""

    aborted: bool = False
    started: float = field(default_factory=time.monotonic)


def _param(faults: Faults, kind: str, key: str, default: Any) -> Any:
    """A fault parameter, or `default` when that fault (or key) is not armed."""
    return faults[kind].get(key, default) if kind in faults else default


def _at(faults: Faults, kind: str, index: int, default_after: int) -> bool:
    """Whether fault `kind` fires before frame `index`."""
    return kind in faults and int(faults[kind].get("after", default_after)) == index


class LLMStreaming:
    """Builds and paces the streamed (and delayed non-stream) bodies of `FakeLLM` generations."""

    flavour: str
    pings: bool
    hang_timeout: float
    disconnects: int
    _disconnected: threading.Event
    _streams: set[StreamState]
    _shapes: Shapes

    def _frame(self, payload: str) -> bytes:
        """A `data:` frame in this flavour's line endings."""
        return frame(payload, crlf=self._shapes.crlf)

    async def _stream(self, gen: Generation, faults: Faults, *, native: bool = False) -> AsyncIterator[bytes]:
        """The SSE (native: NDJSON) body of one streamed generation, with faults applied."""
        if native:
            frames = [ndjson(c) for c in self._shapes.native_chunks(gen)]
            n_content = len(gen.pieces) + len(gen.thinking)
        else:
            chunks, n_content = self._shapes.chunks(gen)
            frames = [self._frame(json.dumps(c)) for c in chunks] + [self._shapes.done()]
        state = StreamState()
        self._streams.add(state)
        try:
            await self._pause(_param(faults, "slow", "first", 0.0), state)
            async for out in self._emit(frames, n_content, faults, state, native):
                yield out
        finally:
            self._streams.discard(state)

    async def _emit(
        self, frames: list[bytes], n_content: int, faults: Faults, state: StreamState, native: bool = False
    ) -> AsyncIterator[bytes]:
        """Yield frames one by one, injecting the armed stream faults at their chunk index."""
        between = float(_param(faults, "slow", "between", 0.0))
        index = 0
        while index < len(frames):
            if _at(faults, "malformed", index, 1):
                garbage = str(faults["malformed"].get("text", "{not json"))
                yield garbage.encode() + b"\n" if native else self._frame(garbage)
            if _at(faults, "error_event", index, 1):
                message = str(faults["error_event"].get("message", "generation failed"))
                error = ndjson({"error": message}) if native else self._shapes.stream_error(message)
                if error is not None:
                    yield error
                return
            if _at(faults, "cut", index, 2):
                return
            if _at(faults, "interrupt", index, 2):
                if not native:
                    yield frames[-1]  # the [DONE] terminator, without the finish chunk
                return
            if _at(faults, "hang", index, 1) and not await self._hang(state):
                return
            if state.aborted and index < n_content:
                index = n_content
            yield frames[index]
            if index == 0 and self.flavour == "tabbyapi" and self.pings:
                yield comment(f"ping - {datetime.now(UTC)}", crlf=True)
            index += 1
            if between and index < len(frames):
                await self._pause(between, state)

    async def _pause(self, seconds: float, state: StreamState) -> None:
        """Sleep up to `seconds`, waking early on abort."""
        deadline = time.monotonic() + float(seconds)
        while not state.aborted and time.monotonic() < deadline:
            await asyncio.sleep(min(0.01, max(0.0, deadline - time.monotonic())))

    async def _hang(self, state: StreamState) -> bool:
        """Stall until abort (True) or `hang_timeout` (False); a disconnect cancels us meanwhile."""
        await self._pause(self.hang_timeout, state)
        return state.aborted

    async def _slow_json(self, payload: dict[str, Any], faults: Faults) -> AsyncIterator[bytes]:
        """A non-stream JSON body sent after the `slow`/`hang` delay."""
        state = StreamState()
        self._streams.add(state)
        try:
            await self._pause(_param(faults, "slow", "first", 0.0), state)
            if "hang" in faults:
                await self._hang(state)
            yield json.dumps(payload).encode()
        finally:
            self._streams.discard(state)

    def _note_disconnect(self) -> None:
        """Count a client that left before its response was complete."""
        self.disconnects += 1
        self._disconnected.set()
