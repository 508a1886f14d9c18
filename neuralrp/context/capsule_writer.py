"""LLM-written capsules, made once per card version in the background and cached on the character.

A capsule is written when a cast member will need one on the next turn (their reset
window is ending) and the cached one does not match their current card (a new
character, or the card was edited). Until then the rule-based capsule is used.
The writer waits while any reply is being generated, so it never delays a reply.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable

from neuralrp.cardgen.prompts import CAPSULE_PARAMS, capsule_request
from neuralrp.config import Settings
from neuralrp.context.capsules import card_digest
from neuralrp.context.sections import Prompt
from neuralrp.context.state import STICKY_TURNS
from neuralrp.db.connection import Database
from neuralrp.errors import BackendError
from neuralrp.library.characters import Character, get_character
from neuralrp.llm.types import LLMBackend

log = logging.getLogger(__name__)

MAX_WORDS = 90


def clean_capsule(text: str, name: str) -> str | None:
    """The model's answer as a one-line capsule, or None when it is unusable."""
    line = " ".join(text.replace("{{char}}", name).split()).strip().strip('"')
    words = len(re.findall(r"\w+", line))
    if words < 5 or words > MAX_WORDS:
        return None
    if not line.startswith("["):
        line = f"[{name} — {line}"
    return line if line.endswith("]") else line + "]"


class CapsuleWriter:
    """Writes missing or stale capsules for a chat's cast after replies."""

    def __init__(self, db: Database, settings: Callable[[], Settings], backend: Callable[[], LLMBackend | None],
                 *, busy: Callable[[], bool]) -> None:
        self.db = db
        self._settings = settings
        self._backend = backend
        self._busy = busy
        self._task: asyncio.Task[None] | None = None

    def stale(self, prompt: Prompt) -> list[Character]:
        """Cast members who will need a capsule next turn and whose cached one does not match their card."""
        soon = [cid for cid, d in prompt.decisions.items() if prompt.turn + 1 - d["reset_turn"] >= STICKY_TURNS]
        with self.db.session() as conn:
            chars = [get_character(conn, cid) for cid in soon]
        return [c for c in chars if c.capsule_hash != card_digest(c)]

    async def after_reply(self, chat_id: int, prompt: Prompt) -> None:
        """Start writing needed capsules in the background (at most one job at a time)."""
        if self._task is not None and not self._task.done():
            return
        todo = await asyncio.to_thread(self.stale, prompt)
        if todo:
            self._task = asyncio.create_task(self._write_all(todo), name=f"capsules-chat-{chat_id}")

    async def _write_all(self, todo: list[Character]) -> None:
        for char in todo:
            while self._busy():
                await asyncio.sleep(0.2)
            await self.write(char)

    async def write(self, char: Character) -> str | None:
        """Ask the LLM for one capsule and cache it; None (and a log line) when that fails."""
        backend = self._backend()
        if backend is None:
            return None
        try:
            answer = await backend.complete(capsule_request(char), CAPSULE_PARAMS)
        except BackendError as e:
            log.warning("capsule for %s not written: %s", char.name, e.message)
            return None
        capsule = clean_capsule(answer.text, char.name)
        if capsule is None:
            log.warning("capsule for %s not written: the model's answer was unusable", char.name)
            return None
        await asyncio.to_thread(self._store, char, capsule)
        return capsule

    def _store(self, char: Character, capsule: str) -> None:
        with self.db.session() as conn:
            conn.execute("UPDATE characters SET capsule = ?, capsule_hash = ? WHERE id = ?",
                         (capsule, card_digest(char), char.id))

    async def aclose(self) -> None:
        """Cancel a running job (each write is a single statement, so the DB stays consistent)."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                log.debug("capsule job cancelled at shutdown")


__all__ = ["CapsuleWriter", "capsule_request", "clean_capsule"]
