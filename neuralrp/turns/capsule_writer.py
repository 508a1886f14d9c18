"""LLM-written capsules, made once per card version in the background and cached on the character.

A capsule is written when a cast member will need one on the next turn (their reset
window is ending) and the cached one does not match their current card (a new
character, or the card was edited). Until then the rule-based capsule is used. An answer that fails the
checks in neuralrp/turns/output_checks.py is not stored (the capsule in use stays); the character is tried
again after a delay that doubles with each rejection, and the prompt inspector shows why.
The writer waits while any reply is being generated, so it never delays a reply.

Schedule (a background job on a one-slot server may evict the reply's cached prompt, neuralrp/llm/dialects.py):
a capsule is written when a card is new to a chat's prompts or was edited, never after every reply; a rejected
one is tried again only once its delay has passed and RETRY_TURNS turns of that chat went by since its last
try. A capsule written while the prompt uses another one for the same card is taken at the chat's next planned
break (a fold or a cast change, neuralrp/context/layout.py); the one written before a reset window ends is used
from the end of that window.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from neuralrp.cardgen.prompts import CAPSULE_PARAMS, capsule_request
from neuralrp.config import Settings
from neuralrp.context.capsules import card_digest
from neuralrp.context.sections import Prompt
from neuralrp.context.state import STICKY_TURNS
from neuralrp.db.connection import Database
from neuralrp.errors import BackendError
from neuralrp.library.characters import Character, get_character, set_capsule
from neuralrp.llm.types import LLMBackend
from neuralrp.turns.output_checks import Rejections, capsule_problem, repetition
from neuralrp.workers import Worker, in_thread

log = logging.getLogger(__name__)

MIN_WORDS = 5
RETRY_TURNS = 2  # a rejected capsule waits at least this many turns of the chat before it is tried again
MAX_WORDS = 90
JOB = "capsules"


def read_capsule(text: str, name: str) -> tuple[str | None, str | None]:
    """(capsule, None) for a usable answer as one line `[Name — ...]`; (None, why) when it is rejected."""
    lines = [line.strip() for line in text.replace("{{char}}", name).splitlines() if line.strip()]
    problem = repetition("\n".join(lines))
    if problem:
        return None, problem
    line = " ".join(" ".join(lines).split()).strip('"')
    if not line.startswith("["):
        line = f"[{name} — {line}"
    if not line.endswith("]"):
        line += "]"
    problem = capsule_problem(line, name, min_words=MIN_WORDS, max_words=MAX_WORDS)
    return (None, problem) if problem else (line, None)


def clean_capsule(text: str, name: str) -> str | None:
    """The model's answer as a one-line capsule, or None when it is unusable."""
    return read_capsule(text, name)[0]


class CapsuleWriter(Worker):
    """Writes missing or stale capsules for a chat's cast after replies (one job at a time).

    `quiet` returns once no reply is being written; each capsule waits for it first.
    """

    def __init__(self, db: Database, settings: Callable[[], Settings], backend: Callable[[], LLMBackend | None],
                 *, quiet: Callable[[], Awaitable[object]] | None = None) -> None:
        super().__init__("capsules")
        self.db = db
        self._settings = settings
        self._backend = backend
        self._quiet = quiet
        self.rejections = Rejections()  # per character id: the last rejected answer and when to try again
        self.tried: dict[tuple[int, int], tuple[str, int]] = {}  # (chat, character) -> (card digest, turn)

    def stale(self, prompt: Prompt, chat_id: int = 0) -> list[Character]:
        """Cast members who will need a capsule next turn and whose cached one does not match their card (and,
        when rejected before, whose retry is due by time and by turns)."""
        soon = [cid for cid, d in prompt.decisions.items() if prompt.turn + 1 - d["reset_turn"] >= STICKY_TURNS]
        with self.db.session() as conn:
            chars = [get_character(conn, cid) for cid in soon]
        stale = [c for c in chars if c.capsule_hash != card_digest(c)]
        return [c for c in stale if self.rejections.may_try(c.id, card_digest(c))
                and self._turn_due(chat_id, c, prompt.turn)]

    def _turn_due(self, chat_id: int, char: Character, turn: int) -> bool:
        last = self.tried.get((chat_id, char.id))
        return last is None or last[0] != card_digest(char) or turn - last[1] >= RETRY_TURNS

    async def after_reply(self, chat_id: int, prompt: Prompt) -> None:
        """Start writing needed capsules in the background (at most one job at a time)."""
        if self.running(JOB) or not self.accepting:
            return
        todo = await in_thread(self.stale, prompt, chat_id)
        for char in todo:
            self.tried[(chat_id, char.id)] = (card_digest(char), prompt.turn)
        if todo:
            self.submit(JOB, lambda: self._write_all(todo))

    async def _write_all(self, todo: list[Character]) -> None:
        for char in todo:
            if self._quiet is not None:
                await self._quiet()
            await self.write(char)

    async def write(self, char: Character) -> str | None:
        """Ask the LLM for one capsule and cache it; None (and a log line) when that fails."""
        backend = self._backend()
        if backend is None:
            return None
        try:
            answer = await backend.complete(capsule_request(char), CAPSULE_PARAMS)
        except BackendError as e:
            self._reject(char, f"the LLM call failed: {e.message}", "")
            return None
        capsule, problem = read_capsule(answer.text, char.name)
        if capsule is None:
            self._reject(char, problem or "unusable", answer.text)
            return None
        await in_thread(self._store, char, capsule)
        self.rejections.accept(char.id)
        return capsule

    def _reject(self, char: Character, reason: str, answer: str) -> None:
        """Keep the capsule in use (the previous LLM one or the rule-based one) and try again later."""
        rejection = self.rejections.reject(char.id, reason, answer, card_digest(char))
        log.warning("capsule for %s not written (%s); the previous one stays, retried in %d s: %r", char.name,
                    reason, rejection.public()["retry_in_s"], answer[:120])

    def notes(self, character_ids: list[int]) -> list[dict[str, Any]]:
        """The prompt inspector's lines about rejected capsules of these characters."""
        found = ((cid, self.rejections.get(cid)) for cid in character_ids)
        return [{"kind": "capsule", "character_id": cid, **r.public()} for cid, r in found if r is not None]

    def _store(self, char: Character, capsule: str) -> None:
        with self.db.session() as conn:
            set_capsule(conn, char.id, capsule, card_digest(char))

    async def aclose(self) -> None:
        """Cancel a running job and wait for it (each write is a single statement, so the DB stays consistent)."""
        await self.close()


__all__ = ["CapsuleWriter", "capsule_request", "clean_capsule", "read_capsule"]
