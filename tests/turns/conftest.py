"""Fixtures of the background-job tests: settings pointing at the fake LLM, a migrated DB file, the fake, a
client of it, and a Summarizer on them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from neuralrp.config import Settings
from neuralrp.db.connection import Database
from neuralrp.db.migrations import migrate
from neuralrp.llm.client import OpenAICompatBackend
from neuralrp.turns.summarizer import Summarizer
from tests.fakes import FakeLLM


@pytest.fixture
def llm_settings(make_settings: Any) -> Settings:
    return make_settings(llm={"base_url": "http://llm.test/v1"})


@pytest.fixture
def database(llm_settings: Settings) -> Database:
    db = Database(llm_settings.db_path)
    with db.session() as conn:
        migrate(conn)
    return db


@pytest.fixture
def fake() -> FakeLLM:
    return FakeLLM("llamacpp")


@pytest.fixture
async def backend(llm_settings: Settings, fake: FakeLLM) -> AsyncIterator[OpenAICompatBackend]:
    client = OpenAICompatBackend(llm_settings.llm, transport=httpx.ASGITransport(app=fake.app))
    yield client
    await client.aclose()


@pytest.fixture
async def summarizer(database: Database, llm_settings: Settings,
                     backend: OpenAICompatBackend) -> AsyncIterator[Summarizer]:
    worker = Summarizer(database, lambda: llm_settings, lambda: backend)
    yield worker
    await worker.aclose()
