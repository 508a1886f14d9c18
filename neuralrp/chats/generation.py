"""Streamed reply generation, decoupled from the HTTP request that asked for it.

Each reply runs as a task owned by the GenerationManager. Every chunk is written to
the DB *before* it is published to listeners, so a crash never loses text a browser
has already shown. A closed tab does not stop the reply; Stop does, and closing the
backend stream aborts generation at the server.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from neuralrp.chats import service, store
from neuralrp.chats.presence import mark_present
from neuralrp.config import Settings
from neuralrp.context.engine import PromptEngine, reply_budget
from neuralrp.context.sections import Prompt
from neuralrp.db.connection import Database, transaction
from neuralrp.errors import BackendError, BackendUnavailable, Conflict
from neuralrp.library.characters import Character
from neuralrp.llm.tokens import LOCAL_COUNTER, estimate_tokens
from neuralrp.llm.types import LLMBackend, SamplingParams

log = logging.getLogger(__name__)

Kind = Literal["reply", "regenerate", "continue"]
NARRATOR = "Narrator"


@dataclass
class Target:
    """The message a generation writes into and what it started from."""

    message_id: int
    base_text: str
    swipe_idx: int | None
    previous_text: str


class Generation:
    """One running reply: an event log that any number of listeners can follow."""

    def __init__(self, chat_id: int, kind: Kind) -> None:
        self.chat_id = chat_id
        self.kind = kind
        self.events: list[dict[str, Any]] = []
        self.finished = asyncio.Event()
        self._changed = asyncio.Condition()
        self.task: asyncio.Task[None] | None = None
        self.on_end: Callable[[], None] = lambda: None

    async def publish(self, event: dict[str, Any]) -> None:
        """Append an event and wake listeners; a final event first frees the chat for the next reply."""
        async with self._changed:
            if event["type"] in ("done", "error"):
                self.on_end()
                self.finished.set()
            self.events.append(event)
            self._changed.notify_all()

    async def follow(self) -> AsyncIterator[dict[str, Any]]:
        """All events from the first, then new ones until the reply ends."""
        index = 0
        while True:
            async with self._changed:
                await self._changed.wait_for(lambda i=index: len(self.events) > i)  # type: ignore[misc]
                batch = self.events[index:]
            index += len(batch)
            for event in batch:
                yield event
                if event["type"] in ("done", "error"):
                    return

    async def first_outcome(self) -> dict[str, Any]:
        """The first token, done or error event (whichever comes first)."""
        async for event in self.follow():
            if event["type"] in ("token", "done", "error"):
                return event
        raise RuntimeError("event stream ended without an outcome")


def sampling_params(settings: Settings) -> SamplingParams:
    """Sampler settings for a reply."""
    s = settings.sampling
    return SamplingParams(temperature=s.temperature, top_p=s.top_p, top_k=s.top_k, min_p=s.min_p,
                          repetition_penalty=s.repetition_penalty, max_tokens=s.max_tokens, stop=tuple(s.stop))


class GenerationManager:
    """Starts, tracks and stops replies; at most one per chat."""

    def __init__(self, db: Database, settings: Callable[[], Settings],
                 backend: Callable[[], LLMBackend | None], engine: PromptEngine) -> None:
        self.db = db
        self._settings = settings
        self._backend = backend
        self.engine = engine
        self.active: dict[int, Generation] = {}
        self.after_reply: list[Callable[[int, Prompt], Awaitable[None]]] = []

    @property
    def settings(self) -> Settings:
        """The settings in effect now (UI edits apply to the next reply)."""
        return self._settings()

    def ensure_idle(self, chat_id: int) -> None:
        """Conflict when a reply is already being written in this chat."""
        if chat_id in self.active:
            raise Conflict("a reply is already being written in this chat; stop it first")

    async def start(self, chat_id: int, kind: Kind) -> Generation:
        """Create the reply row and launch the task."""
        self.ensure_idle(chat_id)
        gen = Generation(chat_id, kind)
        self.active[chat_id] = gen
        gen.on_end = lambda: self.active.pop(chat_id, None) if self.active.get(chat_id) is gen else None
        try:
            target, speaker = await asyncio.to_thread(self._prepare, chat_id, kind)
        except BaseException:
            self.active.pop(chat_id, None)
            raise
        with self.db.session() as conn:
            await gen.publish({"type": "start", "message": store.get_message(conn, target.message_id).public()})
        gen.task = asyncio.create_task(self._run(gen, target, speaker), name=f"reply-chat-{chat_id}")
        return gen

    def _prepare(self, chat_id: int, kind: Kind) -> tuple[Target, Character | None]:
        with self.db.session() as conn, transaction(conn):
            turn = store.get_chat_row(conn, chat_id)["turn"]
            if kind == "reply":
                speaker = service.pick_speaker(conn, chat_id)
                if speaker is not None:
                    mark_present(conn, chat_id, turn, "", absence_turns=self.settings.context.absence_turns,
                                 speaker_id=speaker.id)
                mid = store.insert_message(conn, chat_id, role="assistant", content="", turn=turn,
                                           character_id=speaker.id if speaker else None,
                                           speaker_name=speaker.name if speaker else NARRATOR, status="streaming")
                return Target(mid, "", None, ""), speaker
            msg = service.last_reply(conn, chat_id)
            speaker = None if msg.character_id is None else service.get_character(conn, msg.character_id)
            if kind == "continue":
                store.set_message_text(conn, msg.id, msg.content, status="streaming")
                return Target(msg.id, msg.content, None, msg.content), speaker
            existing = store.swipes(conn, msg.id)
            if not existing:
                store.save_swipe(conn, msg.id, 0, msg.content, msg.status)
                existing = [{"idx": 0}]
            store.set_message_text(conn, msg.id, "", status="streaming")
            return Target(msg.id, "", len(existing), msg.content), speaker

    async def stop(self, chat_id: int) -> bool:
        """Stop the chat's running reply; False when none runs."""
        gen = self.active.get(chat_id)
        if gen is None or gen.task is None:
            return False
        gen.task.cancel()
        backend = self._backend()
        if backend is not None:
            await backend.abort()
        await gen.finished.wait()
        return True

    async def aclose(self) -> None:
        """Stop every running reply (server shutdown)."""
        for chat_id in list(self.active):
            await self.stop(chat_id)

    async def _run(self, gen: Generation, target: Target, speaker: Character | None) -> None:
        conn = self.db.connect()
        text = target.base_text
        try:
            backend = self._backend()
            if backend is None:
                raise BackendUnavailable(
                    "No LLM server is configured: set llm.base_url in config.yaml (or the Settings page), "
                    "or start NeuralRP with --model PATH.gguf")
            prompt, params = await self._prompt(backend, gen, target, speaker)
            messages = prompt.messages()
            async for chunk in backend.stream(messages, params, continue_last=gen.kind == "continue"):
                if chunk.text:
                    text += chunk.text
                    await asyncio.to_thread(store.set_message_text, conn, target.message_id, text)
                    await gen.publish({"type": "token", "text": chunk.text})
            await self._finish(conn, gen, target, text, backend, stopped=False)
            for hook in self.after_reply:
                await hook(gen.chat_id, prompt)  # hooks only schedule background work
        except asyncio.CancelledError:
            if text == target.base_text:
                message = await asyncio.to_thread(self._restore, conn, gen, target)
                await gen.publish({"type": "done", "message": message, "stopped": True})
            else:
                await self._finish(conn, gen, target, text, self._backend(), stopped=True)
        except BackendError as e:
            await self._fail(conn, gen, target, text, e)
        finally:
            conn.close()
            gen.on_end()  # (no-op when a final event already freed the chat)

    async def _prompt(self, backend: LLMBackend, gen: Generation, target: Target,
                      speaker: Character | None) -> tuple[Prompt, SamplingParams]:
        info = await backend.info()
        params = sampling_params(self.settings)
        budget = reply_budget(self.settings, info.context_length)
        if info.can_tokenize:
            await self._count_user_message(backend, gen.chat_id, f"{info.kind}:{info.model}")
        exclude = target.message_id if gen.kind != "continue" else None
        keep = target.message_id if gen.kind == "continue" else None
        prompt = await self.engine.build(gen.chat_id, speaker, budget=budget, persist=True,
                                         exclude_message_id=exclude, continue_message_id=keep)
        if self.settings.logging.log_prompts:
            log.info("prompt for chat %d: %s", gen.chat_id, prompt.public())
        return prompt, params

    async def _count_user_message(self, backend: LLMBackend, chat_id: int, counter: str) -> None:
        """Count the newest user message with the server's tokenizer (cached on the row)."""
        def newest() -> Any:
            with self.db.session() as conn:
                return next((m for m in reversed(store.list_messages(conn, chat_id, limit=4)) if m.role == "user"),
                            None)

        msg = await asyncio.to_thread(newest)
        if msg is None or msg.token_counter == counter:
            return
        count = await _count(backend, msg.content)
        if count is not None:
            with self.db.session() as conn:
                store.set_token_count(conn, msg.id, count, counter)

    async def _finish(self, conn: Any, gen: Generation, target: Target, text: str,
                      backend: LLMBackend | None, *, stopped: bool) -> None:
        count = await _count(backend, text)
        counter = await _counter_name(backend) if count is not None else LOCAL_COUNTER

        def write() -> dict[str, Any]:
            with transaction(conn):
                store.set_message_text(conn, target.message_id, text, status="complete")
                store.set_token_count(conn, target.message_id, count or estimate_tokens(text), counter)
                msg = store.get_message(conn, target.message_id)
                mark_present(conn, gen.chat_id, msg.turn, text, absence_turns=self.settings.context.absence_turns,
                             speaker_id=msg.character_id)
                if target.swipe_idx is not None:
                    store.save_swipe(conn, target.message_id, target.swipe_idx, text)
                    store.set_swipe_index(conn, target.message_id, target.swipe_idx)
            return store.get_message(conn, target.message_id).public()

        message = await asyncio.to_thread(write)
        await gen.publish({"type": "done", "message": message, "stopped": stopped})

    async def _fail(self, conn: Any, gen: Generation, target: Target, text: str, error: BackendError) -> None:
        log.warning("reply in chat %d failed: %s", gen.chat_id, error.message)
        message = await asyncio.to_thread(self._keep_or_drop, conn, gen, target, text)
        await gen.publish({"type": "error", "detail": error.message, "status": error.status_code,
                           "error": type(error).__name__, "message": message})

    def _restore(self, conn: Any, gen: Generation, target: Target) -> dict[str, Any] | None:
        """Nothing new was written: drop an empty new reply, or put the previous text back."""
        with transaction(conn):
            if gen.kind == "reply":
                conn.execute("DELETE FROM messages WHERE id = ?", (target.message_id,))
                return None
            store.set_message_text(conn, target.message_id, target.previous_text, status="complete")
        return store.get_message(conn, target.message_id).public()

    def _keep_or_drop(self, conn: Any, gen: Generation, target: Target, text: str) -> dict[str, Any] | None:
        if text == target.base_text:
            return self._restore(conn, gen, target)
        with transaction(conn):
            if self.settings.llm.keep_incomplete:
                store.set_message_text(conn, target.message_id, text, status="incomplete")
                if target.swipe_idx is not None:
                    store.save_swipe(conn, target.message_id, target.swipe_idx, text, "incomplete")
                    store.set_swipe_index(conn, target.message_id, target.swipe_idx)
            else:
                store.set_message_text(conn, target.message_id, target.previous_text, status="complete")
                if gen.kind == "reply":
                    store.archive_message(conn, target.message_id, "incomplete")
        return store.get_message(conn, target.message_id).public()


async def _counter_name(backend: LLMBackend | None) -> str:
    """Which tokenizer made a count: the backend's kind and model."""
    if backend is None:
        return LOCAL_COUNTER
    info = await backend.info()
    return f"{info.kind}:{info.model}"


async def _count(backend: LLMBackend | None, text: str) -> int | None:
    if backend is None or not text:
        return None
    try:
        return await backend.count_tokens(text)
    except BackendError:
        return None
