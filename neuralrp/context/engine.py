"""The one place a prompt is assembled from the DB: load state, find lore, build, remember decisions."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from neuralrp.chats import store
from neuralrp.config import Settings
from neuralrp.context.builder import build_prompt
from neuralrp.context.loader import chat_world_ids, load_chat_state, save_decisions, save_notes
from neuralrp.context.sections import Prompt
from neuralrp.context.state import Limits
from neuralrp.db.connection import Database, transaction
from neuralrp.library.characters import Character
from neuralrp.llm.tokens import estimate_tokens
from neuralrp.retrieval.embedder import EmbedderUnavailable, query_chunks
from neuralrp.retrieval.index import cached_entries
from neuralrp.retrieval.lore import lore_for_turn, lore_index

log = logging.getLogger(__name__)
SCAN_MESSAGES = 4
MAX_LORE_HITS = 64


@lru_cache(maxsize=65536)
def count_tokens(text: str) -> int:
    """Local token count, memoized (prompt texts repeat turn after turn)."""
    return estimate_tokens(text)


def reply_budget(settings: Settings, context_length: int | None) -> int:
    """Tokens the prompt may use: the model's window minus the reply reserve."""
    window = context_length or settings.context.max_tokens
    return max(256, window - settings.sampling.max_tokens)


def limits_from(settings: Settings) -> Limits:
    """The builder's limits from settings."""
    return Limits(absence_turns=settings.context.absence_turns, canon_law_every=settings.world.canon_law_every,
                  lore_token_budget=settings.world.lore_token_budget)


class PromptEngine:
    """Builds prompts for replies and for the inspector."""

    def __init__(self, db: Database, settings: Callable[[], Settings], embedder: Callable[[], Any]) -> None:
        self.db = db
        self._settings = settings
        self._embedder = embedder
        self._warming: set[asyncio.Task[int]] = set()

    @staticmethod
    def _recent_text(history: list[Any]) -> str:
        return "\n".join(m.content for m in history[-SCAN_MESSAGES:])

    def _add_lore(self, conn: Any, state: Any, settings: Settings) -> None:
        worlds = chat_world_ids(conn, state.chat_id)
        if not worlds:
            return
        entries = cached_entries(conn, worlds)  # one read for canon law and lore
        state.canon_law = list(lore_index(entries).canon_law)
        hits = lore_for_turn(conn, self._embedder(), worlds, self._recent_text(state.history), turn=state.turn,
                             threshold=settings.world.semantic_threshold, model=settings.embeddings.model,
                             limit=MAX_LORE_HITS, entries=entries)
        state.lore = hits  # best first; the lore budget admits far fewer than this

    def build_sync(self, chat_id: int, speaker: Character | None, *, budget: int, persist: bool,
                   exclude_message_id: int | None = None, continue_message_id: int | None = None) -> Prompt:
        """Load, retrieve lore, build; with persist=True remember first appearances and resets."""
        settings = self._settings()
        with self.db.session() as conn:
            state = load_chat_state(conn, chat_id, speaker, budget=budget, limits=limits_from(settings),
                                    exclude_message_id=exclude_message_id, continue_message_id=continue_message_id)
            self._add_lore(conn, state, settings)
            prompt = build_prompt(state, budget=budget, count=count_tokens)
            if persist:
                with transaction(conn):
                    save_decisions(conn, chat_id, prompt.decisions)
                    save_notes(conn, prompt.notes)
        return prompt

    def warm_sync(self, chat_id: int) -> int:
        """Embed the newest lines of a chat with lore now, so the next turn only embeds the user's new line."""
        embedder = self._embedder()
        if embedder is None or not getattr(embedder, "ready", True):
            return 0
        with self.db.session() as conn:
            if not chat_world_ids(conn, chat_id):
                return 0
            recent = self._recent_text(store.list_messages(conn, chat_id, limit=SCAN_MESSAGES))
        lines = query_chunks(recent)
        try:
            embedder.embed(lines)
        except EmbedderUnavailable as e:
            log.warning("lore: could not embed chat %d's newest lines ahead: %s", chat_id, e)
            return 0
        return len(lines)

    async def after_reply(self, chat_id: int, prompt: Prompt) -> None:
        """Reply hook: warm the query cache for the next turn in the background."""
        task = asyncio.create_task(asyncio.to_thread(self.warm_sync, chat_id))
        self._warming.add(task)
        task.add_done_callback(self._warming.discard)

    async def aclose(self) -> None:
        """Wait for cache warming still running (shutdown, tests)."""
        if self._warming:
            await asyncio.gather(*self._warming, return_exceptions=True)

    async def build(self, chat_id: int, speaker: Character | None, **kwargs: Any) -> Prompt:
        """build_sync in a worker thread."""
        return await asyncio.to_thread(self.build_sync, chat_id, speaker, **kwargs)

    def inspect_sync(self, chat_id: int, context_length: int | None) -> dict[str, Any]:
        """The next reply's prompt as the inspector shows it; changes nothing."""
        from neuralrp.chats.service import pick_speaker

        settings = self._settings()
        with self.db.session() as conn:
            speaker = pick_speaker(conn, chat_id)
        prompt = self.build_sync(chat_id, speaker, budget=reply_budget(settings, context_length), persist=False)
        out = prompt.public()
        out.update(chat_id=chat_id, speaker={"character_id": speaker.id, "name": speaker.name} if speaker else None,
                   reply_reserve=settings.sampling.max_tokens)
        return out
