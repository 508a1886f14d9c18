"""Background work with one lifecycle: start / pause / resume / close, waiting on events, never polling.

A ``Worker`` runs jobs as asyncio tasks on the app's event loop:

- ``submit(key, job)`` starts a job unless the worker is paused or closed or a job with that key runs;
  ``submit_threadsafe`` does the same from a worker thread (a prompt being built, for example).
- ``pause()`` stops taking jobs, cancels the running ones and returns once every one has ended, including the
  part of a job running in a thread (jobs await threads through ``settle``, which lets a started thread call
  finish before the cancellation goes on). ``resume()`` takes jobs again; ``close()`` ends the worker for good.
- A worker with a long-running loop (the folder watcher, the scheduler) overrides ``run()``; ``start()`` and
  ``resume()`` launch it and ``pause()`` cancels it.

``Admission`` is the door in front of writes: it lets work in unless it is closed, counts what is inside, and
``drained()`` returns once everything that got in has left (a restore waits on it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine, Hashable, Iterator
from enum import StrEnum
from typing import Any, ParamSpec, TypeVar

from neuralrp.errors import MaintenanceMode

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")
Job = Callable[[], Coroutine[Any, Any, Any]]
MAIN = "main"


class State(StrEnum):
    """Where a worker is in its life."""

    READY = "ready"  # built; takes jobs (start() launches a loop, if it has one)
    RUNNING = "running"
    PAUSED = "paused"
    CLOSED = "closed"


async def settle(awaitable: Awaitable[T]) -> T:
    """Await something that must not be abandoned half-way (a DB call in a thread): when the caller is cancelled,
    wait for it to finish first, then let the cancellation go on."""
    future = asyncio.ensure_future(awaitable)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        await asyncio.wait([future])
        raise


async def in_thread(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run fn in a thread; a cancelled caller still waits for the call to end (see settle)."""
    return await settle(asyncio.to_thread(fn, *args, **kwargs))


class Worker:
    """Background work of one kind, run as asyncio tasks; see the module docstring."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.state = State.READY
        self._tasks: dict[Hashable, asyncio.Task[Any]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._settled = asyncio.Event()
        self._settled.set()

    @property
    def accepting(self) -> bool:
        """Whether submit() starts jobs now."""
        return self.state in (State.READY, State.RUNNING)

    def running(self, key: Hashable) -> bool:
        """Whether a job with this key runs."""
        return key in self._tasks

    async def run(self) -> None:
        """The worker's long-running loop; none by default (job-only workers)."""

    def _has_loop(self) -> bool:
        return type(self).run is not Worker.run

    async def start(self) -> None:
        """Start the worker (and its loop, if it has one)."""
        if self.state is State.CLOSED:
            raise RuntimeError(f"worker {self.name} is closed")
        self._loop = asyncio.get_running_loop()
        self.state = State.RUNNING
        if self._has_loop():
            self.submit(MAIN, self.run)

    def submit(self, key: Hashable, job: Job) -> bool:
        """Run job() as a task unless paused, closed or a job with this key runs; True when it started."""
        if not self.accepting or key in self._tasks:
            return False
        self._loop = asyncio.get_running_loop()
        task = asyncio.get_running_loop().create_task(job(), name=f"{self.name}-{key}")
        self._tasks[key] = task
        self._settled.clear()
        task.add_done_callback(lambda t: self._forget(key, t))
        return True

    def submit_threadsafe(self, key: Hashable, job: Job) -> bool:
        """submit() from any thread (the job runs on the worker's loop); False when it cannot take jobs now."""
        loop = self._loop
        if loop is None or loop.is_closed() or not self.accepting:
            return False
        loop.call_soon_threadsafe(self.submit, key, job)
        return True

    def _forget(self, key: Hashable, task: asyncio.Task[Any]) -> None:
        if self._tasks.get(key) is task:
            del self._tasks[key]
        if not self._tasks:
            self._settled.set()
        if not task.cancelled() and task.exception() is not None:
            log.error("%s: job %s crashed", self.name, key, exc_info=task.exception())

    async def idle(self) -> None:
        """Return once no job runs (jobs started meanwhile are waited for too)."""
        await self._settled.wait()

    async def _cancel_all(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def pause(self) -> None:
        """Stop taking jobs, cancel the running ones and wait until all have ended."""
        if self.state is State.CLOSED:
            return
        self.state = State.PAUSED
        await self._cancel_all()
        log.debug("%s paused", self.name)

    async def resume(self) -> None:
        """Take jobs again after pause() (and restart the loop)."""
        if self.state is not State.PAUSED:
            return
        self.state = State.RUNNING
        if self._has_loop():
            self.submit(MAIN, self.run)
        log.debug("%s resumed", self.name)

    async def close(self) -> None:
        """End the worker: cancel what runs, wait for it, take no jobs again."""
        self.state = State.CLOSED
        await self._cancel_all()


class Admission:
    """A door in front of writes: lets work in unless closed, counts what is inside, waits until it has left."""

    def __init__(self) -> None:
        self._inside = 0
        self._empty = asyncio.Event()
        self._empty.set()
        self.refusal: str | None = None

    @property
    def closed(self) -> bool:
        """Whether new work is refused."""
        return self.refusal is not None

    @property
    def inside(self) -> int:
        """How much admitted work has not left yet."""
        return self._inside

    def admit(self) -> None:
        """Let one piece of work in; MaintenanceMode (409) with the refusal sentence when closed."""
        if self.refusal is not None:
            raise MaintenanceMode(self.refusal)
        self._inside += 1
        self._empty.clear()

    def leave(self) -> None:
        """One admitted piece of work has finished."""
        self._inside -= 1
        if self._inside <= 0:
            self._inside = 0
            self._empty.set()

    @contextlib.contextmanager
    def entered(self) -> Iterator[None]:
        """admit() ... leave() around a block."""
        self.admit()
        try:
            yield
        finally:
            self.leave()

    def close(self, refusal: str) -> None:
        """Refuse new work with this sentence (work already inside carries on)."""
        self.refusal = refusal

    async def drained(self) -> None:
        """Return once all admitted work has left."""
        await self._empty.wait()

    def open(self) -> None:
        """Let work in again."""
        self.refusal = None
