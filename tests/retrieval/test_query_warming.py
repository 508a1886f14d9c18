"""After a reply, the engine embeds the chat's newest lines ahead, so the next turn embeds only the user's line."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np

from neuralrp.chats import store
from neuralrp.config import Settings
from neuralrp.context.engine import PromptEngine
from neuralrp.db.connection import Database, transaction
from neuralrp.retrieval.calibration import background_lines
from neuralrp.retrieval.embedder import E5_DIM, E5_ID, MINILM_DIM, MINILM_ID, HashEmbedder, LazyEmbedder
from neuralrp.retrieval.index import index_world_entries
from tests.retrieval.helpers import add_entry, add_world


class CountingEmbedder(HashEmbedder):
    """HashEmbedder under the MiniLM id that records every text it embeds."""

    def __init__(self) -> None:
        super().__init__(MINILM_DIM, model_id=MINILM_ID)
        self.seen: list[str] = []

    def embed(self, texts: list[str]) -> np.ndarray:
        """Record, then embed."""
        self.seen.extend(texts)
        return super().embed(texts)


def _chat(db: Database, *, with_world: bool) -> int:
    with db.session() as conn, transaction(conn):
        chat_id = store.insert_chat(conn, title="t", mode="narrator", persona={"name": "Ari"})
        if with_world:
            world = add_world(conn)
            add_entry(conn, world, ["dragon"], "Dragons sleep under the mountain.")
            conn.execute("INSERT INTO chat_worlds (chat_id, world_id) VALUES (?, ?)", (chat_id, world))
        store.insert_message(conn, chat_id, role="user", turn=1, content="We reach the gate.")
        store.insert_message(conn, chat_id, role="assistant", turn=1, speaker_name="Narrator",
                             content="The gate is shut.\n\nA guard yawns on the wall.")
    return chat_id


def _engine(db: Database, settings: Settings) -> tuple[PromptEngine, CountingEmbedder]:
    inner = CountingEmbedder()
    lazy = LazyEmbedder(lambda: inner, model_id=E5_ID, dim=E5_DIM)  # the default model's name
    assert lazy.wait(10)
    with db.session() as conn:
        index_world_entries(conn, lazy)  # entry vectors first, as the background indexer would
    inner.seen.clear()
    return PromptEngine(db, lambda: settings, lambda: lazy), inner


def test_warmed_lines_are_not_embedded_again_on_the_next_turn(db: Database, settings: Settings) -> None:
    chat_id = _chat(db, with_world=True)
    engine, inner = _engine(db, settings)
    asyncio.run(_after_reply(engine, chat_id))
    lines = ["We reach the gate.", "The gate is shut.", "A guard yawns on the wall."]
    assert inner.seen == [*background_lines(), *lines]  # the lore background is warmed too, once
    with db.session() as conn, transaction(conn):
        store.insert_message(conn, chat_id, role="user", turn=2, content="I ask the guard about the dragon.")
    inner.seen.clear()
    prompt = engine.build_sync(chat_id, None, budget=4000, persist=False)
    assert inner.seen == ["I ask the guard about the dragon."]
    assert any(s.kind == "lore" for s in prompt.sections)


async def _after_reply(engine: PromptEngine, chat_id: int) -> None:
    await engine.after_reply(chat_id, Any)  # type: ignore[arg-type]
    await engine.aclose()


def test_chats_without_lore_are_not_embedded(db: Database, settings: Settings) -> None:
    chat_id = _chat(db, with_world=False)
    engine, inner = _engine(db, settings)
    assert engine.warm_sync(chat_id) == 0
    assert inner.seen == []


def test_warming_waits_for_the_model_instead_of_loading_it(db: Database, settings: Settings) -> None:
    chat_id = _chat(db, with_world=True)
    lazy = LazyEmbedder(CountingEmbedder, model_id=MINILM_ID, dim=MINILM_DIM)  # never warmed up: not ready
    engine = PromptEngine(db, lambda: settings, lambda: lazy)
    assert engine.warm_sync(chat_id) == 0
    assert not lazy.ready
