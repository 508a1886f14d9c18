"""One LLM scheduler: user-facing replies first, background work only while no reply waits.

- A reply holds a slot from its prompt to its final row write (`async with scheduler.reply(label)`). When no
  slot is free and background calls hold one, the newest of them is preempted: its stream is closed, which
  stops generation at the server, and it runs again from the start once no reply waits ("paused").
- A background call (capsule, summary, snapshot keywords, card generation) is `await scheduler.run(kind, label,
  call)`: it starts when a slot is free and no reply waits, oldest first; one try may hold the server for at
  most `llm.background_timeout_s` (then BackendTimeout); `cancel(task_id)` ends it with GenerationAborted.
- Slots are `llm.parallel_slots`: 1 for single-slot servers (llama.cpp, KoboldCpp, the built-in model), so
  one generation is in flight at a time; more for servers with parallel slots.

`BackgroundBackend` is the LLMBackend that background writers get: its `complete()` is one scheduled call,
streamed even though the caller wants the whole answer, because closing a stream stops generation at every
server (a non-streamed request runs to its end at llama-cpp-python) and a stream gives the tokens so far
that the UI shows. State changes wake waiters through an event; nothing polls.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal, TypeVar

from neuralrp.errors import BackendError, BackendTimeout, GenerationAborted
from neuralrp.llm.types import BackendInfo, ChatMessage, Completion, LLMBackend, SamplingParams, StreamChunk

log = logging.getLogger(__name__)
T = TypeVar("T")

TaskState = Literal["waiting", "running", "paused"]
PREVIEW_CHARS = 160
ABORT_WAIT_S = 2.0


@dataclass(eq=False)
class LLMTask:
    """One background LLM call as the UI sees it: what it is, where it is, the tokens it got so far."""

    id: int
    kind: str
    label: str
    state: TaskState = "waiting"
    tokens: int = 0
    text: str = ""
    tries: int = 0
    created: float = field(default_factory=time.monotonic)
    started: float | None = None
    cancel_requested: bool = False
    preempted: bool = False
    call: asyncio.Future[Any] | None = field(default=None, repr=False)

    def received(self, text: str) -> None:
        """Count one streamed piece (one token) and keep the end of the text for the preview."""
        self.tokens += 1
        self.text = (self.text + text)[-PREVIEW_CHARS:]

    def public(self) -> dict[str, Any]:
        """The task as the API shows it."""
        now = time.monotonic()
        return {"id": self.id, "kind": self.kind, "label": self.label, "state": self.state,
                "tokens": self.tokens, "preview": self.text, "tries": self.tries,
                "age_s": round(now - self.created, 1),
                "running_s": round(now - self.started, 1) if self.started is not None else None}


class LLMScheduler:
    """Replies first, background calls in the free slots; see the module docstring."""

    def __init__(self, slots: Callable[[], int] = lambda: 1, timeout_s: Callable[[], float] = lambda: 300.0) -> None:
        self._slots = slots
        self._timeout_s = timeout_s
        self._ids = itertools.count(1)
        self._changed = asyncio.Event()
        self.tasks: dict[int, LLMTask] = {}
        self.replies_waiting = 0
        self.replies_running = 0

    # ---- state

    @property
    def slots(self) -> int:
        """How many generations may run at once (llm.parallel_slots)."""
        return max(1, self._slots())

    def _background_running(self) -> int:
        return sum(1 for t in self.tasks.values() if t.state == "running")

    def in_use(self) -> int:
        """Slots held by replies and background calls."""
        return self.replies_running + self._background_running()

    @property
    def busy(self) -> bool:
        """Whether the LLM server is (or is about to be) generating for NeuralRP."""
        return self.replies_waiting > 0 or self.in_use() > 0

    def list_tasks(self) -> list[dict[str, Any]]:
        """Background calls waiting, paused or running, oldest first."""
        return [t.public() for t in sorted(self.tasks.values(), key=lambda t: t.id)]

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def _until(self, predicate: Callable[[], bool]) -> None:
        while not predicate():
            await self._changed.wait()

    # ---- replies

    @contextlib.asynccontextmanager
    async def reply(self, label: str = "reply") -> AsyncIterator[None]:
        """Hold a slot for a user-facing reply, preempting background calls when none is free."""
        self.replies_waiting += 1
        self._notify()
        try:
            while self.in_use() >= self.slots:
                self._preempt_one(label)
                await self._changed.wait()
        finally:
            self.replies_waiting -= 1
            self._notify()
        self.replies_running += 1
        try:
            yield
        finally:
            self.replies_running -= 1
            self._notify()

    def _preempt_one(self, reason: str) -> None:
        running = [t for t in self.tasks.values() if t.state == "running" and t.call is not None and not t.preempted]
        if not running:
            return
        victim = max(running, key=lambda t: t.id)
        victim.preempted = True
        assert victim.call is not None
        victim.call.cancel()
        log.info("LLM: %s paused for %s after %d token(s); it runs again later", victim.label, reason, victim.tokens)

    # ---- background calls

    async def run(self, kind: str, label: str, call: Callable[[LLMTask], Awaitable[T]]) -> T:
        """Run one background call when its turn comes; a preempted call is run again from the start."""
        task = LLMTask(next(self._ids), kind, label)
        self.tasks[task.id] = task
        self._notify()
        try:
            while True:
                await self._until(lambda: task.cancel_requested or self._may_start(task))
                if task.cancel_requested:
                    raise GenerationAborted(f"{label} was cancelled")
                finished, result = await self._try(task, call)
                if finished:
                    return result  # type: ignore[return-value]
        finally:
            del self.tasks[task.id]
            self._notify()

    def _may_start(self, task: LLMTask) -> bool:
        if self.replies_waiting or self.in_use() >= self.slots:
            return False
        return min(t.id for t in self.tasks.values() if t.state != "running") == task.id

    async def _try(self, task: LLMTask, call: Callable[[LLMTask], Awaitable[T]]) -> tuple[bool, T | None]:
        """One try: (True, result), or (False, None) when a reply preempted it; raises on failure."""
        task.state, task.tokens, task.text, task.preempted = "running", 0, "", False
        task.tries += 1
        task.started = time.monotonic()
        inner = asyncio.ensure_future(call(task))
        task.call = inner
        limit = self._timeout_s()
        timed_out = False
        try:
            done, _ = await asyncio.wait({inner}, timeout=limit)
            if not done:
                timed_out = True
                inner.cancel()
                await asyncio.wait({inner})
        except asyncio.CancelledError:
            inner.cancel()
            await asyncio.wait({inner})
            raise
        finally:
            task.call, task.state = None, "paused"
            self._notify()
        if timed_out:
            raise BackendTimeout(f"{task.label} took longer than {limit:g} s (llm.background_timeout_s) and was "
                                 "stopped")
        if not inner.cancelled():
            return True, inner.result()
        if task.cancel_requested or not task.preempted:
            raise GenerationAborted(f"{task.label} was cancelled")
        return False, None

    def cancel(self, task_id: int) -> bool:
        """Cancel a background call (waiting, paused or running); False when no such call exists."""
        task = self.tasks.get(task_id)
        if task is None:
            return False
        task.cancel_requested = True
        if task.call is not None:
            task.call.cancel()
        self._notify()
        return True

    def background(self, backend: LLMBackend | None, kind: str, label: str) -> BackgroundBackend | None:
        """A view of `backend` whose complete() runs as a scheduled background call (None without a backend)."""
        return None if backend is None else BackgroundBackend(self, backend, kind, label)


async def collect(backend: LLMBackend, messages: list[ChatMessage], params: SamplingParams, task: LLMTask,
                  *, abort_on_cancel: bool = False) -> Completion:
    """One whole answer gathered from a stream, counting tokens into `task` as they arrive."""
    parts: list[str] = []
    finish: str | None = None
    chunks = backend.stream(messages, params)
    try:
        async with contextlib.aclosing(chunks):
            async for chunk in chunks:
                if chunk.text:
                    parts.append(chunk.text)
                    task.received(chunk.text)
                finish = chunk.finish_reason or finish
    except asyncio.CancelledError:
        if abort_on_cancel:  # KoboldCpp may go on generating after the stream closes; its abort stops it
            await _abort(backend)
        raise
    return Completion("".join(parts), finish)


async def _abort(backend: LLMBackend) -> None:
    try:
        async with asyncio.timeout(ABORT_WAIT_S):
            await backend.abort()
    except (BackendError, TimeoutError) as e:
        log.warning("asking the LLM server to stop a background generation failed: %s", e)


class BackgroundBackend:
    """An LLMBackend for background writers: complete() is one scheduled, preemptible, streamed call."""

    def __init__(self, scheduler: LLMScheduler, backend: LLMBackend, kind: str, label: str) -> None:
        self.scheduler = scheduler
        self.backend = backend
        self.kind = kind
        self.label = label

    async def info(self, *, refresh: bool = False) -> BackendInfo:
        """The backend's (cached) description."""
        return await self.backend.info(refresh=refresh)

    def stream(self, messages: list[ChatMessage], params: SamplingParams, *,
               continue_last: bool = False) -> AsyncGenerator[StreamChunk, None]:
        """Not scheduled: background writers ask for whole answers (complete)."""
        return self.backend.stream(messages, params, continue_last=continue_last)

    async def complete(self, messages: list[ChatMessage], params: SamplingParams) -> Completion:
        """The whole answer, from a stream run when the scheduler lets it (in the background lane: a server with
        slots keeps it off the reply's cached prompt, neuralrp/llm/dialects.py)."""
        single = self.scheduler.slots == 1
        params = replace(params, lane="background")
        return await self.scheduler.run(
            self.kind, self.label, lambda task: collect(self.backend, messages, params, task, abort_on_cancel=single))

    async def count_tokens(self, text: str) -> int | None:
        """The backend's own count."""
        return await self.backend.count_tokens(text)

    async def abort(self) -> None:
        """Nothing: an abort endpoint stops whatever the server runs, which may be a user's reply."""

    async def aclose(self) -> None:
        """Nothing: the runtime owns the backend."""
