"""Scene summaries: fold old turns into summaries in the background, condense old summaries.

After a reply, a fold is scheduled when the prompt passed `context.summarize_at` of its
budget or when live history no longer fit (so nothing falls out of view unsummarised).
The fold runs as its own task, one per chat; the reply never waits for it. Every live
message older than the `context.keep_recent_turns` newest turns is grouped into scenes
of about SCENE_TOKENS tokens (a turn is never split), each scene is summarised by the
LLM, and in one transaction per scene the summary is stored and its messages archived
(never deleted; the chat's absolute turn counter is not touched). When the live
summaries pass `context.summary_word_limit` words, the older ones are condensed into one
higher-level summary. Any LLM failure leaves the DB as it was; the next reply retries.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from neuralrp.chats import store
from neuralrp.chats.store import Message
from neuralrp.clock import iso
from neuralrp.config import Settings
from neuralrp.context.sections import Prompt
from neuralrp.db.connection import Database, transaction
from neuralrp.errors import BackendError, BackendUnavailable, Conflict, InvalidInput, NeuralRPError, NotFound
from neuralrp.library.service import record_change
from neuralrp.llm.tokens import estimate_tokens
from neuralrp.llm.types import ChatMessage, Completion, LLMBackend, SamplingParams

log = logging.getLogger(__name__)

T = TypeVar("T")

SCENE_TOKENS = 1500
KEEP_SUMMARIES = 2
MIN_SUMMARY_WORDS = 3
BUSY_POLL_S = 0.1
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


@dataclass
class _Tally:
    """How many summaries one fold wrote so far."""

    written: int = 0


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


def condense_request(summaries: list[dict[str, Any]]) -> list[ChatMessage]:
    """The exact chat messages sent to merge older summaries into one."""
    parts = [f"[Turns {s['start_turn']}-{s['end_turn']}] {s['text'].strip()}" for s in summaries]
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

def eligible_messages(conn: Any, chat_id: int, keep_recent_turns: int) -> list[Message]:
    """Live, finished user/assistant messages older than the newest `keep_recent_turns` turns, in order."""
    last_turn = store.get_chat_row(conn, chat_id)["turn"] - keep_recent_turns
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


def history_cut(conn: Any, chat_id: int, prompt: Prompt) -> bool:
    """Whether live messages older than the prompt's oldest history message exist (history did not fit)."""
    ids = [i for s in prompt.sections if s.kind == "history" for i in s.source.get("message_ids", [])]
    roles = ",".join("?" * len(FOLDABLE_ROLES))
    base = (f"SELECT 1 FROM messages WHERE chat_id = ? AND archived = 0 AND status != 'streaming'"
            f" AND role IN ({roles})")
    if not ids:
        return conn.execute(base + " LIMIT 1", (chat_id, *FOLDABLE_ROLES)).fetchone() is not None
    marks = ",".join("?" * len(ids))
    row = conn.execute(base + f" AND seq < (SELECT min(seq) FROM messages WHERE id IN ({marks})) LIMIT 1",
                       (chat_id, *FOLDABLE_ROLES, *ids)).fetchone()
    return row is not None


def live_summary_rows(conn: Any, chat_id: int) -> list[dict[str, Any]]:
    """The chat's live summaries, oldest first."""
    return [dict(r) for r in conn.execute(
        "SELECT * FROM summaries WHERE chat_id = ? AND archived = 0 ORDER BY start_turn, id", (chat_id,))]


def plan_scenes(conn: Any, chat_id: int, keep_recent_turns: int, limit: int) -> list[list[Message]]:
    """The scenes a fold would summarise now, oldest first."""
    boundaries = frozenset(r["start_turn"] for r in live_summary_rows(conn, chat_id))
    return group_scenes(eligible_messages(conn, chat_id, keep_recent_turns), limit, boundaries)


# ---- writing (sync, one transaction each)

def _unchanged(conn: Any, scene: list[Message]) -> bool:
    marks = ",".join("?" * len(scene))
    rows = {r["id"]: r for r in conn.execute(
        f"SELECT id, content, archived FROM messages WHERE id IN ({marks})", [m.id for m in scene])}
    return all(m.id in rows and not rows[m.id]["archived"] and rows[m.id]["content"] == m.content for m in scene)


def store_scene(conn: Any, chat_id: int, scene: list[Message], text: str) -> int | None:
    """Store a level-0 summary and archive its messages; None (nothing written) if they changed meanwhile."""
    with transaction(conn):
        if not _unchanged(conn, scene):
            return None
        now = iso()
        sid = int(conn.execute(
            "INSERT INTO summaries (chat_id, first_message_id, last_message_id, start_turn, end_turn, level, text,"
            " created_at, updated_at) VALUES (?, ?, ?, ?, ?, 0, ?, ?, ?)",
            (chat_id, scene[0].id, scene[-1].id, min(m.turn for m in scene), max(m.turn for m in scene), text,
             now, now)).lastrowid)
        conn.executemany(
            "UPDATE messages SET archived = 1, archived_reason = 'summarized', summary_id = ?, updated_at = ?"
            " WHERE id = ?", [(sid, now, m.id) for m in scene])
    return sid


def store_condensed(conn: Any, chat_id: int, children: list[dict[str, Any]], text: str) -> int | None:
    """Store a summary of summaries and archive its children; None if they changed meanwhile."""
    with transaction(conn):
        marks = ",".join("?" * len(children))
        now_rows = {r["id"]: r for r in conn.execute(
            f"SELECT id, text, archived FROM summaries WHERE id IN ({marks})", [c["id"] for c in children])}
        if any(c["id"] not in now_rows or now_rows[c["id"]]["archived"] or now_rows[c["id"]]["text"] != c["text"]
               for c in children):
            return None
        now = iso()
        sid = int(conn.execute(
            "INSERT INTO summaries (chat_id, first_message_id, last_message_id, start_turn, end_turn, level, text,"
            " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (chat_id, children[0]["first_message_id"], children[-1]["last_message_id"],
             min(c["start_turn"] for c in children), max(c["end_turn"] for c in children),
             max(c["level"] for c in children) + 1, text, now, now)).lastrowid)
        conn.executemany("UPDATE summaries SET archived = 1, parent_id = ?, updated_at = ? WHERE id = ?",
                         [(sid, now, c["id"]) for c in children])
    return sid


# ---- the Summaries window (sync, for the API)

def _summary_row(conn: Any, summary_id: int) -> dict[str, Any]:
    row = conn.execute("SELECT * FROM summaries WHERE id = ?", (summary_id,)).fetchone()
    if row is None:
        raise NotFound(f"summary {summary_id} does not exist")
    return dict(row)


def _message_count(conn: Any, summary_id: int) -> int:
    row = conn.execute(
        "WITH RECURSIVE tree(id) AS (SELECT ? UNION ALL SELECT s.id FROM summaries s JOIN tree t ON s.parent_id = t.id)"
        " SELECT count(*) AS n FROM messages WHERE summary_id IN (SELECT id FROM tree)", (summary_id,)).fetchone()
    return int(row["n"])


def summary_public(conn: Any, row: dict[str, Any]) -> dict[str, Any]:
    """A summary as the API shows it."""
    return {"id": row["id"], "chat_id": row["chat_id"], "text": row["text"], "start_turn": row["start_turn"],
            "end_turn": row["end_turn"], "level": row["level"], "archived": bool(row["archived"]),
            "edited": bool(row["edited"]), "parent_id": row["parent_id"],
            "message_count": _message_count(conn, row["id"]), "created_at": row["created_at"],
            "updated_at": row["updated_at"]}


def list_summaries(conn: Any, chat_id: int) -> dict[str, Any]:
    """The chat's summaries, live ones first (each group oldest first), and the live word count."""
    store.get_chat_row(conn, chat_id)
    rows = [dict(r) for r in conn.execute(
        "SELECT * FROM summaries WHERE chat_id = ? ORDER BY archived, start_turn, id", (chat_id,))]
    words = sum(word_count(r["text"]) for r in rows if not r["archived"])
    return {"summaries": [summary_public(conn, r) for r in rows], "word_count": words}


def edit_summary(conn: Any, summary_id: int, text: str) -> dict[str, Any]:
    """Replace a summary's text (marked edited; the old text stays in change history)."""
    new = text.strip()
    if not new:
        raise InvalidInput("a summary cannot be empty; delete it to bring its messages back instead")
    with transaction(conn):
        row = _summary_row(conn, summary_id)
        conn.execute("UPDATE summaries SET text = ?, edited = 1, updated_at = ? WHERE id = ?",
                     (new, iso(), summary_id))
        record_change(conn, "summary", summary_id, "update", {"text": row["text"]}, {"text": new}, "edited")
    return summary_public(conn, _summary_row(conn, summary_id))


def unfold_summary(conn: Any, summary_id: int) -> dict[str, Any]:
    """Archive a live summary and bring back what it folded: its messages, or its child summaries."""
    with transaction(conn):
        row = _summary_row(conn, summary_id)
        if row["archived"]:
            raise Conflict(f"summary {summary_id} is already archived")
        now = iso()
        conn.execute("UPDATE summaries SET archived = 1, updated_at = ? WHERE id = ?", (now, summary_id))
        messages = conn.execute(
            "UPDATE messages SET archived = 0, archived_reason = NULL, updated_at = ?"
            " WHERE summary_id = ? AND archived = 1 AND archived_reason = 'summarized'", (now, summary_id)).rowcount
        children = conn.execute("UPDATE summaries SET archived = 0, parent_id = NULL, updated_at = ?"
                                " WHERE parent_id = ?", (now, summary_id)).rowcount
        old = {k: row[k] for k in ("text", "level", "start_turn", "end_turn")}
        note = f"unfolded: {messages} message(s), {children} summary(ies) restored"
        record_change(conn, "summary", summary_id, "delete", old, None, note)
    out = summary_public(conn, _summary_row(conn, summary_id))
    out.update(restored_messages=int(messages), restored_summaries=int(children))
    return out


# ---- the background worker

class Summarizer:
    """Schedules and runs folds, at most one per chat, never in a reply's way."""

    def __init__(self, db: Database, settings: Callable[[], Settings], backend: Callable[[], LLMBackend | None],
                 *, busy: Callable[[], bool] | None = None) -> None:
        self.db = db
        self._settings = settings
        self._backend = backend
        self._busy = busy
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._closed = False

    @property
    def settings(self) -> Settings:
        """The settings in effect now."""
        return self._settings()

    def running(self, chat_id: int) -> bool:
        """Whether a fold task exists for the chat."""
        return chat_id in self._tasks

    async def after_reply(self, chat_id: int, prompt: Prompt) -> None:
        """GenerationManager hook: schedule a check-and-fold for the chat; returns at once."""
        if self._closed or self.running(chat_id):
            return
        self._spawn(chat_id, prompt)

    async def rerun(self, chat_id: int) -> None:
        """Start a fold now (the Summaries window's re-run); Conflict when one is running."""
        await self._db(store.get_chat_row, chat_id)
        if self._backend() is None:
            raise BackendUnavailable("No LLM server is configured, so nothing can be summarised")
        if self._closed:
            raise Conflict("the server is shutting down")
        if self.running(chat_id):
            raise Conflict("summarization is already running for this chat")
        self._spawn(chat_id, None)

    def _spawn(self, chat_id: int, prompt: Prompt | None) -> None:
        task = asyncio.create_task(self._job(chat_id, prompt), name=f"summarize-chat-{chat_id}")
        self._tasks[chat_id] = task
        task.add_done_callback(lambda t: self._forget(chat_id, t))

    def _forget(self, chat_id: int, task: asyncio.Task[None]) -> None:
        if self._tasks.get(chat_id) is task:
            del self._tasks[chat_id]
        if not task.cancelled() and task.exception() is not None:
            log.error("summarization task for chat %d crashed", chat_id, exc_info=task.exception())

    async def _job(self, chat_id: int, prompt: Prompt | None) -> None:
        if prompt is not None and not await self._db(self._needs_fold, chat_id, prompt):
            return
        await self.fold(chat_id)

    def _needs_fold(self, conn: Any, chat_id: int, prompt: Prompt) -> bool:
        if prompt.total_tokens > self.settings.context.summarize_at * prompt.budget:
            return True
        return history_cut(conn, chat_id, prompt)

    async def fold(self, chat_id: int) -> int:
        """Summarise what is eligible, then condense old summaries if needed; returns summaries written."""
        backend = self._backend()
        tally = _Tally()
        try:
            if backend is None:
                raise _Postponed("no LLM server is configured")
            await self._fold_scenes(backend, chat_id, tally)
            await self._condense(backend, chat_id, tally)
        except _Postponed as e:
            log.warning("summarization of chat %d postponed after %d new summary(ies): %s", chat_id,
                        tally.written, e)
        except NeuralRPError as e:
            log.warning("summarization of chat %d stopped: %s", chat_id, e.message)
        return tally.written

    async def _fold_scenes(self, backend: LLMBackend, chat_id: int, tally: _Tally) -> None:
        limit = await self._scene_limit(backend)
        keep = self.settings.context.keep_recent_turns
        for scene in await self._db(plan_scenes, chat_id, keep, limit):
            text = await self._ask(backend, scene_request(scene), SCENE_PARAMS)
            if await self._db(store_scene, chat_id, scene, text) is None:
                raise _Postponed("the chat changed while it was being summarised")
            tally.written += 1

    async def _condense(self, backend: LLMBackend, chat_id: int, tally: _Tally) -> None:
        live = await self._db(live_summary_rows, chat_id)
        if sum(word_count(r["text"]) for r in live) <= self.settings.context.summary_word_limit:
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
        while self._busy is not None and self._busy():
            await asyncio.sleep(BUSY_POLL_S)
        try:
            completion = await backend.complete(messages, params)
        except BackendError as e:
            raise _Postponed(e.message) from e
        text = clean_summary(completion)
        if text is None:
            raise _Postponed(f"the LLM's summary was empty or unusable: {completion.text[:80]!r}")
        return text

    def _with_conn(self, fn: Callable[..., T], *args: Any) -> T:
        with self.db.session() as conn:
            return fn(conn, *args)

    async def _db(self, fn: Callable[..., T], *args: Any) -> T:
        """Run fn(conn, *args) in a thread; when cancelled, let a started transaction finish first."""
        future = asyncio.ensure_future(asyncio.to_thread(self._with_conn, fn, *args))
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            await asyncio.wait([future])
            raise

    async def aclose(self) -> None:
        """Cancel running folds and wait for them (each scene is all-or-nothing, so the DB stays consistent)."""
        self._closed = True
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
