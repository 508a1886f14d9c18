"""Workers: start / pause / resume / close, jobs that finish their thread part, the write door (Admission)."""

from __future__ import annotations

import asyncio
import logging
import threading

import pytest

from neuralrp.errors import MaintenanceMode
from neuralrp.workers import MAIN, Admission, State, Worker, in_thread

LIMIT_S = 30  # generous deadline for waits that succeed at once when the code is right


class Looping(Worker):
    """A worker with a loop that counts its starts and then waits for ever."""

    def __init__(self) -> None:
        super().__init__("looping")
        self.runs = 0
        self.started = asyncio.Event()

    async def run(self) -> None:
        self.runs += 1
        self.started.set()
        await asyncio.Event().wait()


async def wait_thread_event(event: threading.Event) -> None:
    """Wait for a threading.Event without blocking the loop."""
    assert await asyncio.to_thread(event.wait, LIMIT_S), "the event was never set"


async def test_one_job_per_key_and_keys_free_up_when_done() -> None:
    worker = Worker("jobs")
    gate = asyncio.Event()
    done: list[str] = []

    async def job(name: str) -> None:
        await gate.wait()
        done.append(name)

    assert worker.submit("a", lambda: job("first"))
    assert not worker.submit("a", lambda: job("second")), "a job with that key runs already"
    assert worker.submit("b", lambda: job("other"))
    gate.set()
    async with asyncio.timeout(LIMIT_S):
        await worker.idle()
    assert sorted(done) == ["first", "other"] and not worker.running("a")
    assert worker.submit("a", lambda: job("third"))
    await worker.close()


async def test_pause_cancels_jobs_but_waits_for_their_thread_part() -> None:
    worker = Worker("threads")
    entered, release = threading.Event(), threading.Event()
    order: list[str] = []

    def blocking_write() -> None:
        entered.set()
        release.wait(LIMIT_S)
        order.append("thread finished")

    async def job() -> None:
        await in_thread(blocking_write)
        order.append("job went on after the thread")  # never: the pause cancels it

    assert worker.submit("write", job)
    await wait_thread_event(entered)
    pausing = asyncio.ensure_future(worker.pause())
    done, _ = await asyncio.wait([pausing], timeout=0.2)
    assert not done, "pause() must not return while the job's thread is still writing"
    release.set()
    async with asyncio.timeout(LIMIT_S):
        await pausing
    order.append("pause returned")
    assert order == ["thread finished", "pause returned"]
    assert worker.state is State.PAUSED and not worker.running("write")
    assert not worker.submit("write", job), "a paused worker takes no jobs"
    await worker.resume()
    assert worker.state is State.RUNNING and worker.accepting
    await worker.close()


async def test_a_loop_is_cancelled_by_pause_and_restarted_by_resume() -> None:
    worker = Looping()
    await worker.start()
    async with asyncio.timeout(LIMIT_S):
        await worker.started.wait()
    assert worker.running(MAIN) and worker.runs == 1
    await worker.pause()
    assert not worker.running(MAIN)
    worker.started.clear()
    await worker.resume()
    async with asyncio.timeout(LIMIT_S):
        await worker.started.wait()
    assert worker.runs == 2
    await worker.close()
    assert worker.state is State.CLOSED and not worker.running(MAIN)
    await worker.resume()
    assert worker.state is State.CLOSED, "resume() does not reopen a closed worker"
    assert not worker.submit("late", lambda: asyncio.sleep(0))
    with pytest.raises(RuntimeError, match="closed"):
        await worker.start()


async def test_jobs_can_be_submitted_from_threads_until_paused() -> None:
    worker = Worker("from-threads")
    await worker.start()
    ran = asyncio.Event()

    async def job() -> None:
        ran.set()

    assert await asyncio.to_thread(worker.submit_threadsafe, "k", job)
    async with asyncio.timeout(LIMIT_S):
        await ran.wait()
    await worker.pause()
    assert not await asyncio.to_thread(worker.submit_threadsafe, "k", job)
    await worker.close()


async def test_a_crashing_job_is_logged_and_forgotten(caplog: pytest.LogCaptureFixture) -> None:
    worker = Worker("crashy")

    async def job() -> None:
        raise ValueError("boom")

    with caplog.at_level(logging.ERROR, logger="neuralrp.workers"):
        worker.submit("bad", job)
        async with asyncio.timeout(LIMIT_S):
            await worker.idle()
    assert not worker.running("bad")
    assert any("crashy: job bad crashed" in r.getMessage() for r in caplog.records)


async def test_admission_refuses_when_closed_and_drains() -> None:
    door = Admission()
    door.admit()
    door.admit()
    door.close("NeuralRP is restoring a backup; try again in a moment")
    with pytest.raises(MaintenanceMode, match="restoring a backup") as refused:
        door.admit()
    assert refused.value.status_code == 409
    drained = asyncio.ensure_future(door.drained())
    door.leave()
    done, _ = await asyncio.wait([drained], timeout=0.05)
    assert not done and door.inside == 1, "one admitted write is still inside"
    door.leave()
    async with asyncio.timeout(LIMIT_S):
        await drained
    door.open()
    with door.entered():
        assert door.inside == 1
    assert door.inside == 0 and not door.closed
