"""The LLM scheduler: replies first, background calls only in free slots, paused and rerun, time-limited."""

from __future__ import annotations

import asyncio

import pytest

from neuralrp.errors import BackendTimeout, GenerationAborted
from neuralrp.llm.scheduler import LLMScheduler, LLMTask
from tests.waiting import async_wait_until

LIMIT_S = 10


class Gate:
    """A background call that streams tokens until released; counts how often it started."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.starts = 0
        self.cancelled = 0

    async def call(self, task: LLMTask) -> str:
        self.starts += 1
        try:
            task.received("a")
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        return f"done after {self.starts} start(s)"


async def test_a_reply_pauses_a_running_background_call_which_reruns_afterwards() -> None:
    scheduler = LLMScheduler()
    gate = Gate()
    job = asyncio.create_task(scheduler.run("capsule", "Capsule", gate.call))
    await async_wait_until(lambda: gate.starts == 1, what="the background call to start")
    order: list[str] = []
    async with asyncio.timeout(LIMIT_S), scheduler.reply("reply"):
        order.append("reply got the slot")
        assert gate.cancelled == 1, "the background call was stopped before the reply started"
        assert scheduler.list_tasks()[0]["state"] == "paused"
        gate.release.set()
        await asyncio.sleep(0)
        assert gate.starts == 1, "no rerun while the reply holds the only slot"
    async with asyncio.timeout(LIMIT_S):
        result = await job
    assert order == ["reply got the slot"]
    assert result == "done after 2 start(s)" and scheduler.tasks == {}


async def test_background_calls_wait_for_waiting_and_running_replies_then_go_oldest_first() -> None:
    scheduler = LLMScheduler()
    started: list[str] = []

    async def call(name: str) -> str:
        started.append(name)
        return name

    async with scheduler.reply("reply"):
        first = asyncio.create_task(scheduler.run("summary", "first", lambda task: call("first")))
        second = asyncio.create_task(scheduler.run("summary", "second", lambda task: call("second")))
        await async_wait_until(lambda: len(scheduler.tasks) == 2, what="both calls queued")
        assert started == [] and [t["state"] for t in scheduler.list_tasks()] == ["waiting", "waiting"]
    async with asyncio.timeout(LIMIT_S):
        assert await asyncio.gather(first, second) == ["first", "second"]
    assert started == ["first", "second"]


async def test_parallel_slots_let_background_work_run_beside_a_reply() -> None:
    scheduler = LLMScheduler(slots=lambda: 2)
    gate = Gate()
    async with scheduler.reply("reply"):
        job = asyncio.create_task(scheduler.run("cardgen", "Card", gate.call))
        await async_wait_until(lambda: gate.starts == 1, what="the background call beside the reply")
        assert scheduler.in_use() == 2
    gate.release.set()
    async with asyncio.timeout(LIMIT_S):
        assert await job == "done after 1 start(s)"
    assert gate.cancelled == 0


async def test_a_background_call_past_its_time_limit_is_stopped() -> None:
    scheduler = LLMScheduler(timeout_s=lambda: 0.05)
    gate = Gate()
    with pytest.raises(BackendTimeout, match="longer than 0.05 s"):
        async with asyncio.timeout(LIMIT_S):
            await scheduler.run("summary", "Scene summary", gate.call)
    assert gate.cancelled == 1 and scheduler.in_use() == 0


async def test_cancel_ends_a_running_or_waiting_call() -> None:
    scheduler = LLMScheduler()
    gate = Gate()
    running = asyncio.create_task(scheduler.run("cardgen", "Card generation", gate.call))
    waiting = asyncio.create_task(scheduler.run("snapshot", "Snapshot keywords", gate.call))
    await async_wait_until(lambda: gate.starts == 1 and len(scheduler.tasks) == 2, what="one running, one queued")
    ids = [t["id"] for t in scheduler.list_tasks()]
    assert scheduler.list_tasks()[0]["tokens"] == 1, "tokens so far are counted"
    assert scheduler.cancel(ids[1]) and scheduler.cancel(ids[0])
    for job, label in ((running, "Card generation"), (waiting, "Snapshot keywords")):
        with pytest.raises(GenerationAborted, match=f"{label} was cancelled"):
            async with asyncio.timeout(LIMIT_S):
                await job
    assert gate.starts == 1 and not scheduler.cancel(ids[0]) and not scheduler.busy
