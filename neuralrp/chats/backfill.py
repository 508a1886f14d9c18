"""What a bulk chat import leaves for later: full-text indexing and token counts, done in small batches.

An import stores all its messages in one transaction and returns at once; its rows wait with search_indexed = 0
(migration 0007) and no token count. `Backfill`, a Worker, catches up in the background in batches short enough
that a user's own write never waits long behind one. It also runs when it starts, for imports made by the CLI or
cut short by a crash. `run_pending` does the same work in the calling thread (the CLI, tests, the bench).
"""

from __future__ import annotations

import asyncio
import logging

from neuralrp.chats import search, store
from neuralrp.db.connection import Connection, Database, driver, transaction
from neuralrp.errors import NeuralRPError
from neuralrp.llm.tokens import LOCAL_COUNTER, estimate_tokens
from neuralrp.workers import Worker, settle

log = logging.getLogger(__name__)
BATCH = 250


def run_batch(conn: Connection, limit: int = BATCH) -> int:
    """Count the tokens of up to `limit` waiting messages and index them; returns how many (0: none waited).

    Tokenizing runs before the write transaction; a message edited meanwhile keeps the count its edit cached,
    and the indexes take its text as it is when the batch commits.
    """
    todo = search.pending_messages(conn, limit)
    if not todo:
        return 0
    counts = [(mid, estimate_tokens(text)) for mid, text in todo]
    with transaction(conn):
        store.set_token_counts(conn, counts, LOCAL_COUNTER)
        search.mark_indexed(conn, [mid for mid, _ in todo])
    return len(todo)


def run_pending(conn: Connection) -> int:
    """Do all the waiting work now; returns how many rows were handled."""
    total = 0
    while done := run_batch(conn):
        total += done
    return total


class Backfill(Worker):
    """Catches up on deferred indexing and token counting; `kick()` (from any thread) after a bulk import."""

    def __init__(self, db: Database) -> None:
        super().__init__("import-backfill")
        self.db = db
        self.handled = 0  # rows handled since the worker was built (tests wait on it)
        self._wake = asyncio.Event()

    async def run(self) -> None:
        """Work until nothing waits, then sleep until kicked; paused or closed between batches."""
        while True:
            self._wake.clear()
            try:
                while done := await settle(self.db.run(run_batch)):
                    self.handled += done
            except (NeuralRPError, driver().Error) as e:  # the next kick (or start) tries again
                log.warning("search indexing / token counting of imported messages stopped: %s", e)
            await self._wake.wait()

    def kick(self) -> None:
        """New rows wait: wake the loop (safe from worker threads, a no-op before start)."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._wake.set)
