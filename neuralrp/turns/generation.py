"""Streamed reply generation, decoupled from the HTTP request that asked for it.

Each reply runs as a task owned by the GenerationManager, from saving the user's message to the final row
state. Every chunk is written to the DB *before* it is published to listeners, so a crash never loses text
a browser has already shown. A closed tab does not stop the reply; Stop does, and closing the backend
stream aborts generation at the server. Async code here reaches SQLite only through `Database.run`.

Every way a reply ends gives exactly one final event (neuralrp/turns/events.py) and a final row state:
- the stream finished: `done`; the row is `complete`.
- Stop or shutdown: `done` with stopped=True; the row is `complete` with the text so far (a new reply
  that got no text is deleted; a regenerate or continue gets its previous text back).
- any exception (a backend error, a malformed chunk, a database error, a bug): `error`, logged with the
  chat id. The text so far is kept: the row is `incomplete` (llm.keep_incomplete), or else a new reply is
  archived with its text and a regenerate/continue gets its previous text back, the partial one kept in
  change history.
The chat is free for the next reply as soon as the final event is published.
A reply holds an LLM slot (neuralrp/llm/scheduler.py) from its prompt to its final row write, so background
calls wait, or are paused when they hold the server. A stream that ends without a finish reason raises
StreamCutShort, so such a reply ends as `error` with its text kept as `incomplete`, never as `complete`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from neuralrp.chats import service, store
from neuralrp.chats.presence import mark_present
from neuralrp.config import Settings
from neuralrp.context.engine import PromptEngine, reply_budget
from neuralrp.context.sections import Prompt
from neuralrp.db.connection import Connection, Database, driver, transaction
from neuralrp.db.history import record_change
from neuralrp.errors import (
    BackendBadResponse,
    BackendError,
    BackendUnavailable,
    Conflict,
    MaintenanceMode,
    NeuralRPError,
    ServiceUnavailable,
)
from neuralrp.library.characters import Character
from neuralrp.llm.scheduler import LLMScheduler
from neuralrp.llm.tokens import LOCAL_COUNTER, estimate_tokens
from neuralrp.llm.types import LLMBackend, SamplingParams
from neuralrp.turns.events import Done, Failed, MessageData, Start, Token, UserSaved
from neuralrp.turns.hygiene import NARRATOR, ReplyFilter, Voice, voice_for
from neuralrp.turns.running import Draft, Generation, Kind, Target

log = logging.getLogger(__name__)

ABORT_WAIT_S = 2.0  # how long shutdown waits for abort requests to the LLM server


def sampling_params(settings: Settings) -> SamplingParams:
    """Sampler settings for a reply."""
    s = settings.sampling
    return SamplingParams(temperature=s.temperature, top_p=s.top_p, top_k=s.top_k, min_p=s.min_p,
                          repetition_penalty=s.repetition_penalty, max_tokens=s.max_tokens, stop=tuple(s.stop))


def failure(exc: Exception, message: MessageData | None) -> Failed:
    """The `error` event for an exception: our own errors keep their sentence and status."""
    if isinstance(exc, NeuralRPError):
        return Failed(exc.message, exc.status_code, type(exc).__name__, message)
    if isinstance(exc, driver().Error):
        return Failed(f"The database failed while the reply was being written: {exc}", 500, "DatabaseError", message)
    return Failed(f"The reply failed because of an internal error ({type(exc).__name__}); the server log has "
                  "the details", 500, "InternalError", message)


def log_failure(chat_id: int, exc: Exception) -> None:
    """Log a failed reply once: backend errors as warnings, our own errors as errors, the rest with a traceback."""
    if isinstance(exc, BackendError):
        log.warning("reply in chat %d failed: %s", chat_id, exc.message)
    elif isinstance(exc, NeuralRPError):
        log.error("reply in chat %d failed: %s (%s)", chat_id, exc.message, type(exc).__name__)
    else:
        log.exception("reply in chat %d failed unexpectedly", chat_id, exc_info=exc)


class GenerationManager:
    """Starts, tracks and stops replies; at most one per chat."""

    def __init__(self, db: Database, settings: Callable[[], Settings],
                 backend: Callable[[], LLMBackend | None], engine: PromptEngine,
                 scheduler: LLMScheduler | None = None) -> None:
        self.db = db
        self._settings = settings
        self._backend = backend
        self.engine = engine
        self.scheduler = scheduler or LLMScheduler(lambda: self.settings.llm.parallel_slots)
        self.active: dict[int, Generation] = {}
        self.after_reply: list[Callable[[int, Prompt], Awaitable[None]]] = []
        self.quiet = asyncio.Event()  # set while no reply runs: background writers wait on it
        self.quiet.set()
        self._paused: str | None = None  # a restore runs: new replies are refused with this sentence
        self._aborts: set[asyncio.Task[None]] = set()  # abort requests to the LLM server still in flight

    @property
    def settings(self) -> Settings:
        """The settings in effect now (UI edits apply to the next reply)."""
        return self._settings()

    def ensure_idle(self, chat_id: int) -> None:
        """Conflict when a reply is already being written in this chat."""
        if chat_id in self.active:
            raise Conflict("a reply is already being written in this chat; stop it first")

    async def start(self, chat_id: int, kind: Kind, *, user_text: str | None = None,
                    speaker_id: int | None = None) -> Generation:
        """Reserve the chat and launch the reply task (saving `user_text` first as the user's message); `speaker_id`
        names the cast member who answers (else the chat's mode picks; Auto may let more addressed ones follow).

        Returns once the reply row exists or the reply has ended; raises when nothing could be saved
        (an empty message, an unknown chat, nothing to regenerate). If the caller goes away meanwhile, the
        reply goes on.
        """
        if self._paused is not None:
            raise MaintenanceMode(self._paused)
        self.ensure_idle(chat_id)
        gen = Generation(chat_id, kind)
        gen.speaker_id = speaker_id
        self.active[chat_id] = gen
        self.quiet.clear()
        gen.on_end = lambda: self._release(gen)
        gen.task = asyncio.create_task(self._run(gen, user_text), name=f"reply-chat-{chat_id}")
        await asyncio.shield(gen.opened)
        return gen

    def _release(self, gen: Generation) -> None:
        if self.active.get(gen.chat_id) is gen:
            del self.active[gen.chat_id]
        if not self.active:
            self.quiet.set()

    async def stop(self, chat_id: int) -> bool:
        """Stop the chat's running reply and wait for its final event; False when none runs."""
        gen = self.active.get(chat_id)
        if gen is None:
            return False
        if gen.phase == "writing":
            self._abort_backend()
        gen.request_stop()
        await gen.finished.wait()
        return True

    def _abort_backend(self) -> None:
        """Ask the LLM server to stop generating, without making Stop wait for its answer."""
        backend = self._backend()
        if backend is None:
            return
        task = asyncio.create_task(backend.abort(), name="llm-abort")
        self._aborts.add(task)
        task.add_done_callback(self._abort_done)

    def _abort_done(self, task: asyncio.Task[None]) -> None:
        self._aborts.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("asking the LLM server to stop generating failed: %s", task.exception())

    async def aclose(self) -> None:
        """Stop every running reply and wait for their tasks (server shutdown, restore)."""
        tasks = [gen.task for gen in self.active.values() if gen.task is not None]
        await asyncio.gather(*(self.stop(chat_id) for chat_id in list(self.active)))
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._aborts:  # give abort requests a moment before the LLM client closes; never wait on a dead server
            _, late = await asyncio.wait(set(self._aborts), timeout=ABORT_WAIT_S)
            for task in late:
                task.cancel()

    async def pause(self, reason: str) -> None:
        """Before a restore: refuse new replies with `reason` and stop the running ones (their text is kept as
        incomplete, with an `error` event saying why); returns once every reply task has ended."""
        self._paused = reason
        await self.aclose()

    def resume(self) -> None:
        """After a restore: take replies again."""
        self._paused = None

    # ---- the reply task

    async def _run(self, gen: Generation, user_text: str | None) -> None:
        draft: Draft | None = None
        try:
            draft, speaker = await self._open(gen, user_text)
            while draft is not None:
                if gen.stop_requested:
                    await self._end_stopped(gen, draft)
                    return
                gen.phase = "writing"
                # The LLM slot is held from the prompt to the final row write: background calls wait or are paused.
                async with self.scheduler.reply(f"the reply in chat {gen.chat_id}"):
                    prompt = await self._write(gen, draft, speaker)
                    gen.phase = "ending"
                    await self._end_done(gen, draft)
                await self._after(gen, prompt)
                draft = None  # finished: a failure from here on is not this reply's
                draft, speaker = await self._next(gen)
        except asyncio.CancelledError:
            gen.phase = "ending"
            if draft is not None:
                await self._end_stopped(gen, draft)
        except Exception as e:  # every failure ends the reply with an error event (and is logged there)
            gen.phase = "ending"
            await self._end_failed(gen, draft, e)
        finally:
            self._ensure_ended(gen)

    async def _open(self, gen: Generation, user_text: str | None) -> tuple[Draft | None, Character | None]:
        """Save the user's message and create (or reopen) the reply row; publish `user` and `start`."""
        try:
            if user_text is not None:
                absence = self.settings.context.absence_turns
                user = await self.db.run(service.post_user_message, gen.chat_id, user_text, absence_turns=absence)
                gen.publish(UserSaved(user.public()))
            target, speaker, started = await self.db.run(self._prepare, gen.chat_id, gen.kind, gen.speaker_id)
        except Exception as e:
            if not gen.events:  # nothing was saved: the caller gets the exception
                gen.opened.set_exception(e)
                return None, None
            log_failure(gen.chat_id, e)
            gen.publish(failure(e, None))
            gen.opened.set_result(None)
            return None, None
        gen.publish(Start(started))
        gen.opened.set_result(None)
        return Draft(target, target.base_text), speaker

    async def _next(self, gen: Generation) -> tuple[Draft | None, Character | None]:
        """Auto mode: the reply row of the next addressed character (its `start` published), or None."""
        if gen.next_speaker is None or gen.stop_requested:
            return None, None
        gen.phase = "opening"
        target, speaker, started = await self.db.run(self._prepare, gen.chat_id, "reply", gen.next_speaker)
        gen.next_speaker = None
        gen.publish(Start(started))
        return Draft(target, target.base_text), speaker

    def _prepare(self, conn: Connection, chat_id: int, kind: Kind,
                 speaker_id: int | None = None) -> tuple[Target, Character | None, MessageData]:
        target, speaker = self._reply_row(conn, chat_id, kind, speaker_id)
        target.voice = voice_for(conn, chat_id, speaker)
        return target, speaker, store.get_message(conn, target.message_id).public()

    def _reply_row(self, conn: Connection, chat_id: int, kind: Kind,
                   speaker_id: int | None = None) -> tuple[Target, Character | None]:
        with transaction(conn):
            turn = store.get_chat(conn, chat_id).turn
            if kind == "reply":
                speaker = service.pick_speaker(conn, chat_id, speaker_id)
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
            kept = len(store.swipes(conn, msg.id))
            if not kept:
                store.save_swipe(conn, msg.id, 0, msg.content, msg.status)
                kept = 1
            store.set_message_text(conn, msg.id, "", status="streaming")
            return Target(msg.id, "", kept, msg.content), speaker

    async def _write(self, gen: Generation, draft: Draft, speaker: Character | None) -> Prompt:
        """Build the prompt and stream the reply into its row, chunk by chunk."""
        backend = self._backend()
        if backend is None:
            raise BackendUnavailable(
                "No LLM server is configured: set llm.base_url in config.yaml (or the Settings page), "
                "or start NeuralRP with --model PATH.gguf")
        prompt, params = await self._prompt(backend, gen, draft.target, speaker)
        voice = draft.target.voice or Voice.of(speaker.name if speaker else NARRATOR, [])
        clean = ReplyFilter(voice, continuing=gen.kind == "continue")
        params = replace(params, stop=tuple(dict.fromkeys((*params.stop, *voice.stops()))))
        chunks = backend.stream(prompt.messages(), params, continue_last=gen.kind == "continue")
        async with contextlib.aclosing(chunks):  # leaving early closes the connection: the server stops
            async for chunk in chunks:
                await self._take(gen, draft, clean.feed(chunk.text) if chunk.text else "")
                if clean.cut:  # another speaker's line began: the reply ends here
                    break
        await self._take(gen, draft, clean.finish())
        draft.text = draft.target.base_text + clean.text
        if clean.raw.strip() and not clean.text.strip() and gen.kind != "continue":
            raise BackendBadResponse(f"The model wrote only other speakers' lines, nothing of {voice.speaker}'s "
                                     "reply; regenerate to try again")
        return prompt

    async def _take(self, gen: Generation, draft: Draft, text: str) -> None:
        """Store a piece of clean reply text, then publish it."""
        if not text:
            return
        draft.text += text
        draft.pending = asyncio.ensure_future(self.db.run(store.set_message_text, draft.target.message_id, draft.text))
        await asyncio.shield(draft.pending)  # Stop waits for it in _settle, never cuts it
        gen.publish(Token(text))

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
        recent = await self.db.run(store.list_messages, chat_id, limit=4)
        msg = next((m for m in reversed(recent) if m.role == "user"), None)
        if msg is None or msg.token_counter == counter:
            return
        count = await _count(backend, msg.content)
        if count is not None:
            await self.db.run(store.set_token_count, msg.id, count, counter)

    async def _after(self, gen: Generation, prompt: Prompt) -> None:
        """Run the reply hooks (they only schedule background work); a failing hook is logged, not fatal."""
        for hook in self.after_reply:
            try:
                await hook(gen.chat_id, prompt)
            except Exception:
                log.exception("a hook after the reply in chat %d failed", gen.chat_id)

    # ---- how a reply ends

    async def _settle(self, draft: Draft, write: Callable[..., MessageData | None], *args: Any) -> MessageData | None:
        """Wait for the chunk write in flight, then run the final row write on a DB worker."""
        if draft.pending is not None:
            await asyncio.wait([draft.pending])
        return await self.db.run(write, *args)

    async def _end_done(self, gen: Generation, draft: Draft, *, stopped: bool = False) -> None:
        backend = self._backend()
        count = await _count(backend, draft.text)
        counter = await _counter_name(backend) if count is not None else LOCAL_COUNTER
        tokens = count or estimate_tokens(draft.text)
        message = await self._settle(draft, self._complete, gen.chat_id, draft.target, draft.text, tokens, counter)
        if gen.kind == "reply" and gen.speaker_id is None and not stopped and not gen.stop_requested:
            following = await self.db.run(service.next_addressed, gen.chat_id, self.settings.chats.auto_replies)
            gen.next_speaker = following.id if following is not None else None
        gen.publish(Done(message, stopped=stopped, more=gen.next_speaker is not None))

    async def _end_stopped(self, gen: Generation, draft: Draft) -> None:
        if self._paused is not None and draft.grew:  # stopped by a restore: incomplete, and the stream says why
            await self._end_failed(gen, draft, MaintenanceMode(self._paused))
            return
        try:
            if draft.grew:
                await self._end_done(gen, draft, stopped=True)
            else:
                message = await self._settle(draft, self._restore, gen.kind, draft.target)
                gen.publish(Done(message, stopped=True))
        except Exception as e:
            await self._end_failed(gen, draft, e)

    async def _end_failed(self, gen: Generation, draft: Draft | None, error: Exception) -> None:
        log_failure(gen.chat_id, error)
        message = None
        if draft is not None:
            try:
                message = await self._settle(draft, self._keep_or_drop, gen.kind, draft.target, draft.text)
            except Exception:
                log.exception("chat %d: the failed reply's row could not be updated (a restart marks it incomplete)",
                              gen.chat_id)
        gen.publish(failure(error, message))

    def _ensure_ended(self, gen: Generation) -> None:
        """Last resort: whatever happened, the reply has a final event and the chat is free."""
        if not gen.opened.done():
            stopping = ServiceUnavailable("The reply was interrupted before it started (the server is stopping)")
            gen.opened.set_exception(stopping)
        if not gen.finished.is_set():
            log.error("reply in chat %d was interrupted without a final state", gen.chat_id)
            gen.publish(Failed("The reply was interrupted (the server is stopping); its text so far is kept",
                               503, "ServiceUnavailable", None))
        self._release(gen)

    def _complete(self, conn: Connection, chat_id: int, target: Target, text: str, tokens: int,
                  counter: str) -> MessageData:
        with transaction(conn):
            store.set_message_text(conn, target.message_id, text, status="complete")
            store.set_token_count(conn, target.message_id, tokens, counter)
            msg = store.get_message(conn, target.message_id)
            mark_present(conn, chat_id, msg.turn, text, absence_turns=self.settings.context.absence_turns,
                         speaker_id=msg.character_id)
            if target.swipe_idx is not None:
                store.save_swipe(conn, target.message_id, target.swipe_idx, text)
                store.set_swipe_index(conn, target.message_id, target.swipe_idx)
        return store.get_message(conn, target.message_id).public()

    def _restore(self, conn: Connection, kind: Kind, target: Target) -> MessageData | None:
        """Nothing new was written: drop an empty new reply, or put the previous text back."""
        with transaction(conn):
            if kind == "reply":
                store.delete_message(conn, target.message_id)
                return None
            store.set_message_text(conn, target.message_id, target.previous_text, status="complete")
        return store.get_message(conn, target.message_id).public()

    def _keep_or_drop(self, conn: Connection, kind: Kind, target: Target, text: str) -> MessageData | None:
        """After a failure: keep the partial text as `incomplete`, or drop it from the live chat (never lose it)."""
        if text == target.base_text:
            return self._restore(conn, kind, target)
        with transaction(conn):
            if self.settings.llm.keep_incomplete:
                store.set_message_text(conn, target.message_id, text, status="incomplete")
                if target.swipe_idx is not None:
                    store.save_swipe(conn, target.message_id, target.swipe_idx, text, "incomplete")
                    store.set_swipe_index(conn, target.message_id, target.swipe_idx)
            elif kind == "reply":
                store.set_message_text(conn, target.message_id, text, status="incomplete")
                store.archive_message(conn, target.message_id, "incomplete")
            else:
                record_change(conn, "message", target.message_id, "update", {"content": text},
                              {"content": target.previous_text}, "incomplete reply dropped")
                store.set_message_text(conn, target.message_id, target.previous_text, status="complete")
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
