"""Scene summaries: fold old turns into summaries in the background, condense old summaries.

After a reply, a fold is scheduled when the prompt passed `context.summarize_at` of its
budget or when live history no longer fit (so nothing falls out of view unsummarised).
The fold runs as its own task, one per chat; the reply never waits for it. Every live
message older than the `context.keep_recent_turns` newest turns is grouped into scenes
of about SCENE_TOKENS tokens (a turn is never split), each scene is summarised by the
LLM, and in one transaction per scene the summary is stored and its messages archived
(never deleted; the chat's absolute turn counter is not touched). When the live
summaries pass `context.summary_word_limit` words, the older ones are condensed into one
higher-level summary. Any LLM failure leaves the DB as it was; the next reply retries. An answer that fails
the checks in neuralrp/turns/output_checks.py (template junk, repetition, brackets, length) is not stored:
the summaries stay as they were, the next automatic try waits a while, and the prompt inspector shows why.

A fold is forced when messages are leaving the prompt (the history did not fit, or one more exchange like the
last would not; folding a turn early keeps the cached prefix to one break): then, if the LLM's
summary of a scene is rejected or the LLM fails (or its last summary was rejected and its retry time has not
come), that scene and the rest of the fold are stored as excerpts of their own messages (neuralrp/turns/
extract.py, origin "extract") and folded exactly like LLM summaries, rather than leaving the prompt with no
summary at all. The Summaries window marks them; Un-fold and "Summarize now" ask the model again.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from neuralrp.chats import store, summaries
from neuralrp.chats.store import Message
from neuralrp.chats.summaries import Summary
from neuralrp.clock import iso
from neuralrp.config import Settings
from neuralrp.context.sections import Prompt
from neuralrp.db.connection import Connection, Database, transaction
from neuralrp.db.history import record_change
from neuralrp.errors import BackendError, BackendUnavailable, Conflict, InvalidInput, NeuralRPError
from neuralrp.llm.tokens import estimate_tokens
from neuralrp.llm.types import ChatMessage, Completion, LLMBackend, SamplingParams
from neuralrp.turns.extract import scene_excerpt
from neuralrp.turns.output_checks import Rejections, summary_problem
from neuralrp.workers import Worker, in_thread

log = logging.getLogger(__name__)

T = TypeVar("T")

SCENE_TOKENS = 1500
KEEP_SUMMARIES = 2
MIN_SUMMARY_WORDS = 3
SCENE_PARAMS = SamplingParams(temperature=0.3, max_tokens=250)
CONDENSE_PARAMS = SamplingParams(temperature=0.3, max_tokens=400)
FOLDABLE_ROLES = ("user", "assistant")

SCENE_INSTRUCTIONS = (
    "You summarise one scene of an ongoing roleplay so the story can go on without the full transcript. "
    "Write one compact paragraph in the third person and the past tense, at most 150 words. "
    "Say who was present, where the scene took place, what happened, what changed (relationships, injuries, "
    "possessions, places), and any promises, plans or secrets. Keep every name exactly as written. "
    "Use only facts stated in the transcript: do not invent, guess or comment. Do not quote long dialogue. "
    "Answer with the summary only."
)

CONDENSE_INSTRUCTIONS = (
    "You condense the earlier story of an ongoing roleplay. Below are summaries of consecutive scenes, "
    "oldest first. Merge them into one compact summary in the third person and the past tense, at most "
    "250 words. Keep names exactly as written, lasting changes, and promises, plans or secrets still open; "
    "drop details that no longer matter. Use only facts stated in the summaries: do not invent, guess or "
    "comment. Answer with the summary only."
)

_LABEL = re.compile(r"^\s*(?:\*\*)?(?:scene\s+)?summary(?:\*\*)?\s*:\s*", re.IGNORECASE)
_SENTENCE_END = re.compile(r"[.!?…][\"')\]*]*(?=\s|$)")


class _Postponed(Exception):
    """A fold step could not be done now (LLM missing, failing or answering nonsense)."""


class _Rejected(_Postponed):
    """The LLM's summary failed the output checks; `answer` is what it wrote."""

    def __init__(self, reason: str, answer: str) -> None:
        super().__init__(f"the LLM's summary was rejected: {reason}")
        self.reason = reason
        self.answer = answer


@dataclass
class _Tally:
    """How many summaries one fold wrote so far, whether it still asks the LLM, and why it stopped asking."""

    written: int = 0
    ask: bool = True
    extracts: int = 0
    why: str = ""


# ---- the requests sent to the LLM

def speaker_label(msg: Message) -> str:
    """The name a transcript line starts with."""
    if msg.speaker_name:
        return msg.speaker_name
    return "User" if msg.role == "user" else "Narrator"


def scene_transcript(scene: list[Message]) -> str:
    """The scene as the LLM reads it: a heading, then `Speaker: text` per message in order."""
    lines = [f"{speaker_label(m)}: {m.content.strip()}" for m in scene]
    return f"Scene (turns {scene[0].turn}-{scene[-1].turn}):\n\n" + "\n\n".join(lines)


def scene_request(scene: list[Message]) -> list[ChatMessage]:
    """The exact chat messages sent to summarise one scene."""
    return [ChatMessage("system", SCENE_INSTRUCTIONS), ChatMessage("user", scene_transcript(scene))]


def condense_request(older: list[Summary]) -> list[ChatMessage]:
    """The exact chat messages sent to merge older summaries into one."""
    parts = [f"[Turns {s.start_turn}-{s.end_turn}] {s.text.strip()}" for s in older]
    return [ChatMessage("system", CONDENSE_INSTRUCTIONS), ChatMessage("user", "\n\n".join(parts))]


def clean_summary(completion: Completion) -> str | None:
    """The usable summary text of an answer, or None when it is empty or malformed."""
    text = _LABEL.sub("", completion.text.strip().strip("`").strip())
    if completion.finish_reason == "length":
        ends = list(_SENTENCE_END.finditer(text))
        if ends:
            text = text[: ends[-1].end()]
    text = " ".join(text.split())
    return text if len(text.split()) >= MIN_SUMMARY_WORDS else None


def word_count(text: str) -> int:
    """Words in a text, as the word limit counts them."""
    return len(text.split())


# ---- planning (sync, on a connection)

def eligible_messages(conn: Connection, chat_id: int, keep_recent_turns: int) -> list[Message]:
    """Live, finished user/assistant messages older than the newest `keep_recent_turns` turns, in order."""
    last_turn = store.get_chat(conn, chat_id).turn - keep_recent_turns
    if last_turn < 0:
        return []
    return [m for m in store.list_messages(conn, chat_id)
            if m.role in FOLDABLE_ROLES and m.status != "streaming" and m.turn <= last_turn]


def group_scenes(messages: list[Message], limit: int, boundaries: frozenset[int] = frozenset()) -> list[list[Message]]:
    """Consecutive whole turns packed into scenes of about `limit` tokens; a scene never spans a boundary turn."""
    turns: list[list[Message]] = []
    for msg in messages:
        if turns and turns[-1][0].turn == msg.turn:
            turns[-1].append(msg)
        else:
            turns.append([msg])
    scenes: list[list[Message]] = []
    size = 0
    for turn in turns:
        cost = sum(estimate_tokens(m.content) for m in turn)
        prev = scenes[-1][-1].turn if scenes else None
        crosses = prev is not None and any(prev < b <= turn[0].turn for b in boundaries)
        if not scenes or crosses or size + cost > limit:
            scenes.append([])
            size = 0
        scenes[-1].extend(turn)
        size += cost
    return scenes


def history_cut(conn: Connection, chat_id: int, prompt: Prompt) -> bool:
    """Whether live messages older than the prompt's oldest history message exist (history did not fit)."""
    ids = [i for s in prompt.sections if s.kind == "history" for i in s.source.get("message_ids", [])]
    return store.has_live_before(conn, chat_id, FOLDABLE_ROLES, ids)


def cut_next_turn(prompt: Prompt) -> bool:
    """Whether one more exchange like the last (its two newest history messages) would not fit: folding now
    leaves one break in the cached prefix (the fold) instead of two (a cut, then the fold)."""
    history = [s.tokens for s in prompt.sections if s.kind == "history"]
    return len(history) >= 2 and prompt.total_tokens + sum(history[-2:]) > prompt.budget


def plan_scenes(conn: Connection, chat_id: int, keep_recent_turns: int, limit: int) -> list[list[Message]]:
    """The scenes a fold would summarise now, oldest first."""
    boundaries = frozenset(s.start_turn for s in summaries.live_summaries(conn, chat_id))
    return group_scenes(eligible_messages(conn, chat_id, keep_recent_turns), limit, boundaries)


# ---- writing (sync, one transaction each)

def excerpt_of(scene: list[Message]) -> str | None:
    """The scene's summary without the LLM: lines of its own messages (neuralrp/turns/extract.py)."""
    return scene_excerpt([(speaker_label(m), m.content) for m in scene])


def store_scene(conn: Connection, chat_id: int, scene: list[Message], text: str,
                origin: str = "llm") -> int | None:
    """Store a level-0 summary and archive its messages; None (nothing written) if they changed meanwhile."""
    with transaction(conn):
        if not store.messages_unchanged(conn, scene):
            return None
        now = iso()
        sid = summaries.insert_summary(
            conn, chat_id, first_message_id=scene[0].id, last_message_id=scene[-1].id,
            start_turn=min(m.turn for m in scene), end_turn=max(m.turn for m in scene), level=0, text=text, now=now,
            origin=origin)
        store.fold_messages(conn, sid, [m.id for m in scene], now)
    return sid


def store_condensed(conn: Connection, chat_id: int, children: list[Summary], text: str) -> int | None:
    """Store a summary of summaries and archive its children; None if they changed meanwhile."""
    with transaction(conn):
        if not summaries.summaries_unchanged(conn, children):
            return None
        now = iso()
        sid = summaries.insert_summary(
            conn, chat_id, first_message_id=children[0].first_message_id,
            last_message_id=children[-1].last_message_id, start_turn=min(c.start_turn for c in children),
            end_turn=max(c.end_turn for c in children), level=max(c.level for c in children) + 1, text=text, now=now)
        summaries.fold_summaries(conn, sid, [c.id for c in children], now)
    return sid


# ---- the Summaries window (sync, for the API)

def summary_public(conn: Connection, summary: Summary) -> dict[str, Any]:
    """A summary as the API shows it."""
    return {"id": summary.id, "chat_id": summary.chat_id, "text": summary.text, "start_turn": summary.start_turn,
            "end_turn": summary.end_turn, "level": summary.level, "archived": summary.archived,
            "edited": summary.edited, "parent_id": summary.parent_id, "origin": summary.origin,
            "message_count": summaries.message_count(conn, summary.id), "created_at": summary.created_at,
            "updated_at": summary.updated_at}


def list_summaries(conn: Connection, chat_id: int) -> dict[str, Any]:
    """The chat's summaries, live ones first (each group oldest first), and the live word count."""
    store.get_chat(conn, chat_id)
    rows = summaries.chat_summaries(conn, chat_id)
    words = sum(word_count(s.text) for s in rows if not s.archived)
    return {"summaries": [summary_public(conn, s) for s in rows], "word_count": words}


def edit_summary(conn: Connection, summary_id: int, text: str) -> dict[str, Any]:
    """Replace a summary's text (marked edited; the old text stays in change history)."""
    new = text.strip()
    if not new:
        raise InvalidInput("a summary cannot be empty; delete it to bring its messages back instead")
    with transaction(conn):
        before = summaries.get_summary(conn, summary_id)
        summaries.set_text(conn, summary_id, new)
        record_change(conn, "summary", summary_id, "update", {"text": before.text}, {"text": new}, "edited")
    return summary_public(conn, summaries.get_summary(conn, summary_id))


def unfold_summary(conn: Connection, summary_id: int) -> dict[str, Any]:
    """Archive a live summary and bring back what it folded: its messages, or its child summaries."""
    with transaction(conn):
        summary = summaries.get_summary(conn, summary_id)
        if summary.archived:
            raise Conflict(f"summary {summary_id} is already archived")
        now = iso()
        summaries.archive_summary(conn, summary_id, now)
        messages = store.unfold_messages(conn, summary_id, now)
        children = summaries.release_children(conn, summary_id, now)
        old = {"text": summary.text, "level": summary.level, "start_turn": summary.start_turn,
               "end_turn": summary.end_turn}
        note = f"unfolded: {messages} message(s), {children} summary(ies) restored"
        record_change(conn, "summary", summary_id, "delete", old, None, note)
    out = summary_public(conn, summaries.get_summary(conn, summary_id))
    out.update(restored_messages=messages, restored_summaries=children)
    return out


# ---- the background worker

class Summarizer(Worker):
    """Schedules and runs folds, at most one per chat (a job keyed by chat id), never in a reply's way.

    `quiet` returns once no reply is being written; every LLM call waits for it first.
    """

    def __init__(self, db: Database, settings: Callable[[], Settings], backend: Callable[[], LLMBackend | None],
                 *, quiet: Callable[[], Awaitable[object]] | None = None) -> None:
        super().__init__("summaries")
        self.db = db
        self._settings = settings
        self._backend = backend
        self._quiet = quiet
        self.rejections = Rejections()  # per chat id: the last rejected summary and when to try again

    @property
    def settings(self) -> Settings:
        """The settings in effect now."""
        return self._settings()

    async def after_reply(self, chat_id: int, prompt: Prompt) -> None:
        """GenerationManager hook: schedule a check-and-fold for the chat; returns at once."""
        self.submit(chat_id, lambda: self._job(chat_id, prompt))

    async def rerun(self, chat_id: int) -> None:
        """Start a fold now (the Summaries window's re-run); Conflict when one is running."""
        await self._db(store.get_chat, chat_id)
        if self._backend() is None:
            raise BackendUnavailable("No LLM server is configured, so nothing can be summarised")
        if not self.accepting:
            raise Conflict("summaries are paused (the server is stopping or restoring a backup); try again in a moment")
        if self.running(chat_id):
            raise Conflict("summarization is already running for this chat")
        self.submit(chat_id, lambda: self._job(chat_id, None))

    async def _job(self, chat_id: int, prompt: Prompt | None) -> None:
        need = "asked" if prompt is None else await self._db(self._fold_need, chat_id, prompt)
        if need == "cut":
            await self.fold(chat_id, forced=True)  # messages are leaving the prompt: a summary now, or an excerpt
        elif need == "asked" or (need == "threshold" and self.rejections.may_try(chat_id)):
            await self.fold(chat_id)  # after a rejected answer the next try waits (the Summaries window can rerun)

    def _fold_need(self, conn: Connection, chat_id: int, prompt: Prompt) -> str | None:
        """"cut" when live messages no longer fit the prompt or will not on the next turn, "threshold" past
        `summarize_at`, else None."""
        if history_cut(conn, chat_id, prompt) or cut_next_turn(prompt):
            return "cut"
        if prompt.total_tokens > self.settings.context.summarize_at * prompt.budget:
            return "threshold"
        return None

    async def fold(self, chat_id: int, *, forced: bool = False) -> int:
        """Summarise what is eligible, then condense old summaries if needed; returns summaries written.

        forced (messages are leaving the prompt): a scene the LLM cannot summarise now is stored as an excerpt."""
        backend = self._backend()
        tally = _Tally()
        last = self.rejections.get(chat_id)
        if forced and last is not None and not self.rejections.may_try(chat_id):
            tally.ask, tally.why = False, f"its last one was rejected, {last.reason}; not asked again yet"
        try:
            if backend is None:
                raise _Postponed("no LLM server is configured")
            await self._fold_scenes(backend, chat_id, tally, forced)
            if tally.ask:
                await self._condense(backend, chat_id, tally)
                self.rejections.accept(chat_id)
        except _Rejected as e:
            failed = self.rejections.reject(chat_id, e.reason, e.answer)
            log.warning("summarization of chat %d postponed after %d new summary(ies): %s; the summaries stay as "
                        "they were, retried in %d s: %r", chat_id, tally.written, e, failed.public()["retry_in_s"],
                        e.answer[:120])
            return tally.written
        except _Postponed as e:
            log.warning("summarization of chat %d postponed after %d new summary(ies): %s", chat_id,
                        tally.written, e)
        except NeuralRPError as e:
            log.warning("summarization of chat %d stopped: %s", chat_id, e.message)
        finally:
            if tally.extracts:
                log.warning("chat %d: %d scene(s) were leaving the prompt and are kept as excerpts of their own "
                            "messages (no LLM summary: %s)", chat_id, tally.extracts, tally.why)
        return tally.written

    async def _fold_scenes(self, backend: LLMBackend, chat_id: int, tally: _Tally, forced: bool) -> None:
        limit = await self._scene_limit(backend)
        keep = self.settings.context.keep_recent_turns
        for scene in await self._db(plan_scenes, chat_id, keep, limit):
            text, origin = await self._scene_summary(backend, chat_id, scene, tally, forced)
            if await self._db(store_scene, chat_id, scene, text, origin) is None:
                raise _Postponed("the chat changed while it was being summarised")
            tally.written += 1

    async def _scene_summary(self, backend: LLMBackend, chat_id: int, scene: list[Message], tally: _Tally,
                             forced: bool) -> tuple[str, str]:
        """(text, origin) of one scene: the LLM's summary, or when forced and the LLM cannot, its excerpt."""
        if tally.ask:
            try:
                return await self._ask(backend, scene_request(scene), SCENE_PARAMS), "llm"
            except _Postponed as e:
                if not forced:
                    raise
                if isinstance(e, _Rejected):
                    self.rejections.reject(chat_id, e.reason, e.answer)
                tally.ask, tally.why = False, str(e)  # the rest of this fold does without the LLM
        text = excerpt_of(scene)
        if text is None:
            raise _Postponed("the scene has no line that an excerpt could keep")
        tally.extracts += 1
        return text, "extract"

    async def _condense(self, backend: LLMBackend, chat_id: int, tally: _Tally) -> None:
        live = await self._db(summaries.live_summaries, chat_id)
        if sum(word_count(s.text) for s in live) <= self.settings.context.summary_word_limit:
            return
        keep = KEEP_SUMMARIES if len(live) > KEEP_SUMMARIES + 1 else 1
        older = live[:-keep]
        if len(older) < 2:
            return
        text = await self._ask(backend, condense_request(older), CONDENSE_PARAMS)
        if await self._db(store_condensed, chat_id, older, text) is None:
            raise _Postponed("summaries changed while they were being condensed")
        tally.written += 1

    async def _scene_limit(self, backend: LLMBackend) -> int:
        """SCENE_TOKENS, less where the model's window is too small for it."""
        try:
            window = (await backend.info()).context_length
        except BackendError as e:
            raise _Postponed(e.message) from e
        window = window or self.settings.context.max_tokens
        room = window - SCENE_PARAMS.max_tokens - estimate_tokens(SCENE_INSTRUCTIONS) - 64
        return max(128, min(SCENE_TOKENS, room))

    async def _ask(self, backend: LLMBackend, messages: list[ChatMessage], params: SamplingParams) -> str:
        """One summary from the LLM, after any running reply has finished; _Postponed on failure."""
        if self._quiet is not None:
            await self._quiet()
        try:
            completion = await backend.complete(messages, params)
        except BackendError as e:
            raise _Postponed(e.message) from e
        text = clean_summary(completion)
        if text is None:
            raise _Rejected("it was empty or too short", completion.text)
        problem = summary_problem(text, min_words=MIN_SUMMARY_WORDS, max_words=params.max_tokens)
        if problem:
            raise _Rejected(problem, completion.text)
        return text

    def notes(self, chat_id: int) -> list[dict[str, Any]]:
        """The prompt inspector's line about the chat's last rejected summary, if any."""
        rejection = self.rejections.get(chat_id)
        return [] if rejection is None else [{"kind": "summary", "chat_id": chat_id, **rejection.public()}]

    def _with_conn(self, fn: Callable[..., T], *args: Any) -> T:
        with self.db.session() as conn:
            return fn(conn, *args)

    async def _db(self, fn: Callable[..., T], *args: Any) -> T:
        """Run fn(conn, *args) in a thread; when cancelled, let a started transaction finish first."""
        return await in_thread(self._with_conn, fn, *args)

    async def aclose(self) -> None:
        """Cancel running folds and wait for them (each scene is all-or-nothing, so the DB stays consistent)."""
        await self.close()
