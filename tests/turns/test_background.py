"""Background writers as workers: they wait on the replies' quiet event and pause / resume cleanly."""

from __future__ import annotations

import asyncio

import pytest

from neuralrp.config import Settings
from neuralrp.context.sections import Prompt
from neuralrp.db.connection import Database
from neuralrp.errors import Conflict
from neuralrp.llm.client import OpenAICompatBackend
from neuralrp.turns.summarizer import Summarizer
from neuralrp.workers import State
from tests.fakes import FakeLLM
from tests.turns.test_summarizer import seed_chat, snapshot, summary_requests
from tests.waiting import async_wait_until

LIMIT_S = 30


async def test_fold_waits_for_the_quiet_event_before_asking_the_llm(database: Database, llm_settings: Settings,
                                                                     backend: OpenAICompatBackend,
                                                                     fake: FakeLLM) -> None:
    quiet = asyncio.Event()  # cleared: a reply is streaming
    waiting = asyncio.Event()

    async def wait_quiet() -> None:
        waiting.set()
        await quiet.wait()

    worker = Summarizer(database, lambda: llm_settings, lambda: backend, quiet=wait_quiet)
    with database.session() as conn:
        chat_id = seed_chat(conn)
    await worker.rerun(chat_id)
    async with asyncio.timeout(LIMIT_S):
        await waiting.wait()  # the fold has planned its scenes and now waits before its first LLM call
    await asyncio.sleep(0.1)  # were it polling instead of waiting, it would be asking the LLM by now
    assert worker.running(chat_id) and summary_requests(fake) == [], "no summary request while a reply streams"
    quiet.set()
    async with asyncio.timeout(LIMIT_S):
        await worker.idle()
    assert summary_requests(fake), "the fold went on once the reply ended"
    await worker.close()


async def test_pause_cancels_a_fold_midway_and_resume_takes_work_again(database: Database, llm_settings: Settings,
                                                                       backend: OpenAICompatBackend,
                                                                       fake: FakeLLM) -> None:
    worker = Summarizer(database, lambda: llm_settings, lambda: backend)
    await worker.start()
    with database.session() as conn:
        chat_id = seed_chat(conn)
        before = snapshot(conn, chat_id)
    fake.fault("slow", first=20)
    await worker.rerun(chat_id)
    await async_wait_until(lambda: fake.in_flight, what="the fold to wait for the LLM's answer")
    await worker.pause()
    assert worker.state is State.PAUSED and not worker.running(chat_id)
    with database.session() as conn:
        assert snapshot(conn, chat_id) == before, "a cancelled fold leaves nothing half-written"
    with pytest.raises(Conflict, match="paused"):
        await worker.rerun(chat_id)
    await worker.after_reply(chat_id, Prompt(budget=1000, sections=[]))
    assert not worker.running(chat_id), "a paused worker schedules nothing after replies"
    fake.clear_faults()
    await worker.resume()
    await worker.rerun(chat_id)
    async with asyncio.timeout(LIMIT_S):
        await worker.idle()
    with database.session() as conn:
        assert snapshot(conn, chat_id) != before, "after resume the fold ran"
    await worker.close()
