"""The one place a prompt is assembled from the DB: load state, find lore, build, remember decisions."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from neuralrp.chats import store
from neuralrp.chats.worldlinks import WorldLink, link_label, world_links
from neuralrp.config import Settings
from neuralrp.context.builder import build_prompt
from neuralrp.context.loader import chat_world_ids, load_chat_state, save_decisions, save_layout, save_notes
from neuralrp.context.sections import Prompt
from neuralrp.context.state import Limits
from neuralrp.db.connection import Connection, Database, transaction
from neuralrp.library.characters import Character
from neuralrp.llm.tokens import LOCAL_COUNTER, estimate_tokens
from neuralrp.retrieval import calibration
from neuralrp.retrieval.embedder import EmbedderUnavailable, query_chunks
from neuralrp.retrieval.index import LoreCaches, cached_entries, index_world_entries
from neuralrp.retrieval.lore import lore_for_turn, lore_index
from neuralrp.workers import Worker, in_thread, settle

log = logging.getLogger(__name__)
SCAN_MESSAGES = 4
MAX_LORE_HITS = 64


def recent_text(contents: list[str]) -> str:
    """The text lore is selected from: the last SCAN_MESSAGES messages, one per line block."""
    return "\n".join(contents[-SCAN_MESSAGES:])


@lru_cache(maxsize=65536)
def count_tokens(text: str) -> int:
    """Local token count, memoized (prompt texts repeat turn after turn)."""
    return estimate_tokens(text)


COUNT_MARGIN = 0.03  # what the calibrated local counts and the chat template's markup may still miss
CALIBRATION_MESSAGES = 6  # messages counted by the server's tokenizer needed before local counts are scaled


def calibrated_count(history: list[Any]) -> Callable[[str], int]:
    """Local counts (cl100k) scaled up to the server's tokenizer: the ratio of the two over the messages the
    server counted (its tokenizer may count a few percent more, e.g. 6 % for SmolLM2; a prompt over the window
    is refused)."""
    pairs = [(m.token_count, count_tokens(m.content)) for m in history
             if m.token_count and m.token_counter not in (None, LOCAL_COUNTER) and m.content]
    server, local = sum(p[0] for p in pairs), sum(p[1] for p in pairs)
    if len(pairs) < CALIBRATION_MESSAGES or local <= 0 or server <= local:
        return count_tokens
    ratio = server / local
    return lambda text: math.ceil(count_tokens(text) * ratio)


def reply_budget(settings: Settings, context_length: int | None) -> int:
    """Tokens the prompt may use: the model's window minus the reply reserve and a margin for the local counts
    (a prompt the server counts past its window is refused, and that reply fails)."""
    window = context_length or settings.context.max_tokens
    return max(256, window - settings.sampling.max_tokens - int(window * COUNT_MARGIN))


def label_worlds(prompt: Prompt, links: list[WorldLink]) -> None:
    """Name, in each lore and canon-law section's source, its world and the link it came in through."""
    by_id = {link.world_id: link for link in links}
    for section in prompt.sections:
        world_id = section.source.get("world_id")
        link = by_id.get(world_id) if isinstance(world_id, int) and section.kind in ("lore", "canon_law") else None
        if link is not None:
            section.source.update(world=link.name, via=link_label(link.via))


def limits_from(settings: Settings) -> Limits:
    """The builder's limits from settings."""
    return Limits(absence_turns=settings.context.absence_turns, canon_law_every=settings.world.canon_law_every,
                  lore_token_budget=settings.world.lore_token_budget)


class PromptEngine:
    """Builds prompts for replies and for the inspector.

    It owns the app's lore caches (cleared by a restore) and a worker that embeds a chat's newest lines after
    each reply; `lore_jobs` is the app's lore-index worker (stale world entries are embedded there).
    """

    def __init__(self, db: Database, settings: Callable[[], Settings], embedder: Callable[[], Any], *,
                 lore_jobs: Worker | None = None) -> None:
        self.db = db
        self._settings = settings
        self._embedder = embedder
        self.caches = LoreCaches()
        self.lore_jobs = lore_jobs
        self.warming = Worker("lore-warming")

    @staticmethod
    def _recent_text(history: list[Any]) -> str:
        return recent_text([m.content for m in history])

    def _add_lore(self, conn: Any, state: Any, settings: Settings) -> list[WorldLink]:
        links = world_links(conn, state.chat_id, settings.world.active_worlds)
        worlds = [link.world_id for link in links]
        if not worlds:
            return links
        entries = cached_entries(conn, worlds, self.caches)  # one read for canon law and lore
        state.canon_law = list(lore_index(entries).canon_law)
        hits = lore_for_turn(conn, self._embedder(), worlds, self._recent_text(state.history), turn=state.turn,
                             threshold=settings.world.semantic_threshold, model=settings.embeddings.model,
                             limit=MAX_LORE_HITS, entries=entries, caches=self.caches, jobs=self.lore_jobs)
        state.lore = hits  # best first; the lore budget admits far fewer than this
        return links

    def build_on(self, conn: Connection, chat_id: int, speaker: Character | None, *, budget: int, persist: bool,
                 exclude_message_id: int | None = None, continue_message_id: int | None = None) -> Prompt:
        """Load, retrieve lore, build on this connection; with persist=True remember first appearances and resets."""
        settings = self._settings()
        state = load_chat_state(conn, chat_id, speaker, budget=budget, limits=limits_from(settings),
                                exclude_message_id=exclude_message_id, continue_message_id=continue_message_id)
        state.system_prompt = settings.chats.system_prompt
        links = self._add_lore(conn, state, settings)
        prompt = build_prompt(state, budget=budget, count=calibrated_count(state.history))
        label_worlds(prompt, links)
        if persist:
            with transaction(conn):
                save_decisions(conn, chat_id, prompt.decisions)
                save_notes(conn, prompt.notes)
                save_layout(conn, chat_id, prompt)
        return prompt

    def build_sync(self, chat_id: int, speaker: Character | None, **kwargs: Any) -> Prompt:
        """build_on with a connection of its own (CLI, inspector, scripts)."""
        with self.db.session() as conn:
            return self.build_on(conn, chat_id, speaker, **kwargs)

    def warm_sync(self, chat_id: int) -> int:
        """Embed the newest lines of a chat with lore now, so the next turn only embeds the user's new line."""
        embedder = self._embedder()
        if embedder is None or not getattr(embedder, "ready", True):
            return 0
        with self.db.session() as conn:
            if not chat_world_ids(conn, chat_id, self._settings().world.active_worlds):
                return 0
            recent = self._recent_text(store.list_messages(conn, chat_id, limit=SCAN_MESSAGES))
        lines = query_chunks(recent)
        try:
            calibration.background(embedder)  # once per embedder: the first lore turn need not wait for it
            embedder.embed(lines)
        except EmbedderUnavailable as e:
            log.warning("lore: could not embed chat %d's newest lines ahead: %s", chat_id, e)
            return 0
        return len(lines)

    def prepare_sync(self, chat_id: int, progress: Callable[[str], None] = log.info) -> bool:
        """Bring lore to its steady state for a chat, as a running server has it: wait for the embedding model,
        embed the chat's worlds' stale entries and the background. False when the model could not be loaded."""
        embedder = self._embedder()
        with self.db.session() as conn:
            worlds = chat_world_ids(conn, chat_id, self._settings().world.active_worlds)
        if embedder is None or not worlds:
            return True
        progress(f"waiting for the embedding model {embedder.model_id} ...")
        if not embedder.wait():
            progress(f"the embedding model could not be loaded ({embedder.error}); keyword lore only")
            return False
        with self.db.session() as conn:
            count = index_world_entries(conn, embedder, world_ids=worlds)
        calibration.background(embedder)
        progress(f"embedding model ready ({count} world entries embedded)")
        return True

    async def after_reply(self, chat_id: int, prompt: Prompt) -> None:
        """Reply hook: warm the query cache for the next turn in the background (a job of self.warming)."""
        self.warming.submit(chat_id, lambda: in_thread(self.warm_sync, chat_id))

    async def aclose(self) -> None:
        """Wait for cache warming still running, then take no more (shutdown, tests)."""
        await self.warming.idle()
        await self.warming.close()

    async def build(self, chat_id: int, speaker: Character | None, **kwargs: Any) -> Prompt:
        """build_on on a DB worker thread, whose connection stays open between replies (a new connection
        parses the schema again: about 5 ms a prompt); a Stop waits for its writes."""
        return await settle(self.db.run(self.build_on, chat_id, speaker, **kwargs))

    def inspect_sync(self, chat_id: int, context_length: int | None) -> dict[str, Any]:
        """The next reply's prompt as the inspector shows it; changes nothing."""
        from neuralrp.chats.service import pick_speaker

        settings = self._settings()
        with self.db.session() as conn:
            speaker = pick_speaker(conn, chat_id)
            links = world_links(conn, chat_id, settings.world.active_worlds)
        prompt = self.build_sync(chat_id, speaker, budget=reply_budget(settings, context_length), persist=False)
        out = prompt.public()
        out.update(chat_id=chat_id, speaker={"character_id": speaker.id, "name": speaker.name} if speaker else None,
                   reply_reserve=settings.sampling.max_tokens, worlds=[link.public() for link in links])
        return out
