"""The DB side of lore: reading world entries (cached per process) and keeping their vectors current.

The embedded text of an entry is its content (its comment if it has none), normalized, with every
primary key of its world removed: the keys already match names lexically, so the vector should hold what
the entry is about. A look-alike ("dragonfly", "her face went ashen, rose...") then no longer resembles
the entry by sharing a name, and a line naming one place no longer drags in every entry that mentions it.
The stored ``content_hash`` is the sha256 of exactly that text: an entry is re-embedded only when its text
changes, never twice for the same text and model, and vectors of deleted entries are dropped.
``lore_for_turn`` calls ``ensure_indexed`` each turn: a few stale entries are embedded on the spot, many go
to a background thread with its own connection.

Caches (entries, vectors, "already indexed") are keyed by DB file and checked each turn against the tables'
change counters, so edits show up on the next turn. They live in a ``LoreCaches`` owned by the app (cleared
when a restore swaps the DB); callers without an app (CLI, benches) share ``SHARED``. Background indexing
runs as jobs of the app's lore-index ``Worker`` when one is given (paused by a restore), else on a thread.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np

from neuralrp.db.connection import Connection, Database, connect, driver, transaction
from neuralrp.db.maintenance import data_version, db_file
from neuralrp.errors import NeuralRPError
from neuralrp.retrieval import vectors
from neuralrp.retrieval.embedder import Embedder, embed_documents
from neuralrp.retrieval.keys import KeyMasker, normalize
from neuralrp.retrieval.types import LoreEntry
from neuralrp.workers import Worker, in_thread

log = logging.getLogger(__name__)

OWNER_TYPE = "world_entry"
BATCH = 64
INLINE_INDEX = 16  # this many stale entries or fewer are embedded during the turn; more go to a background job


def entry_text(content: str, comment: str = "", masker: KeyMasker | None = None) -> str:
    """The text embedded for an entry: its content (its comment when it has none), normalized, with the
    world's keys removed by `masker` (so the vector holds what the entry is about, not the names the keys match)."""
    for part in (content, comment):
        text = masker.mask(part) if masker is not None else normalize(part)
        if text:
            return text
    return ""


def text_hash(text: str) -> str:
    """sha256 hex of the embedded text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def world_masker(keys: Iterable[str]) -> KeyMasker:
    """A KeyMasker for one world's primary keys (reused while the key set is the same)."""
    wanted = tuple(sorted(set(keys)))
    cached = _MASKERS.get(wanted)
    if cached is None:
        cached = KeyMasker(wanted)
        _MASKERS.put(wanted, cached)
    return cast(KeyMasker, cached)


def entry_texts(entries: Iterable[LoreEntry]) -> dict[int, str]:
    """Entry id -> embedded text (entries without any text left out); keys are masked per world."""
    entries = list(entries)
    by_world: dict[int, list[str]] = {}
    for entry in entries:
        by_world.setdefault(entry.world_id, []).extend(entry.keys)
    maskers = {world: world_masker(keys) for world, keys in by_world.items()}
    texts = {e.id: entry_text(e.content, e.comment, maskers[e.world_id]) for e in entries}
    return {eid: text for eid, text in texts.items() if text}


def _texts(conn: Any, rows: list[dict[str, Any]]) -> dict[int, str]:
    keys = vectors.world_keys(conn, {int(r["world_id"]) for r in rows})
    maskers = {world: world_masker(k) for world, k in keys.items()}
    out = {}
    for row in rows:
        text = entry_text(row["content"] or "", row["comment"] or "", maskers.get(int(row["world_id"])))
        if text:
            out[int(row["id"])] = text
    return out


def remove_orphans(conn: Connection) -> int:
    """Delete vectors (every model) of world entries that no longer exist; returns rows removed."""
    return vectors.delete(conn, OWNER_TYPE, vectors.orphan_entry_ids(conn, OWNER_TYPE))


def _write(conn: Any, embedder: Embedder, batch: list[tuple[int, str]]) -> None:
    """Embed a batch first, then store it in one short write transaction (never hold the lock while embedding)."""
    matrix = embed_documents(embedder, [text for _, text in batch])
    with _in_transaction(conn):
        for (owner_id, text), vector in zip(batch, matrix, strict=True):
            vectors.upsert(conn, OWNER_TYPE, owner_id, embedder.model_id, text_hash(text), vector)


def _in_transaction(conn: Any) -> AbstractContextManager[Any]:
    return _NoTransaction(conn) if conn.in_transaction else transaction(conn)


class _NoTransaction(AbstractContextManager[Any]):
    """Joins the caller's open transaction instead of starting one."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def __enter__(self) -> Any:
        return self.conn

    def __exit__(self, *exc: object) -> None:
        return None


def index_world_entries(
    conn: Any,
    embedder: Embedder,
    entry_ids: Iterable[int] | None = None,
    *,
    world_ids: Iterable[int] | None = None,
    limit: int | None = None,
) -> int:
    """Embed entries whose text changed (all, or only these ids/worlds), drop vectors of deleted entries."""
    texts = _texts(conn, vectors.entry_text_rows(conn, entry_ids, world_ids))
    current = {owner_id: text_hash(text) for owner_id, text in texts.items()}
    todo = sorted(vectors.stale(conn, OWNER_TYPE, embedder.model_id, current))[:limit]
    started = time.monotonic()
    for start in range(0, len(todo), BATCH):
        _write(conn, embedder, [(owner_id, texts[owner_id]) for owner_id in todo[start : start + BATCH]])
    with _in_transaction(conn):
        removed = remove_orphans(conn)
    if todo or removed:
        log.info("lore index (%s): %d entries embedded, %d stale vectors removed in %.2f s",
                 embedder.model_id, len(todo), removed, time.monotonic() - started)
    return len(todo)


def reindex_all(db: Database, embedder: Embedder, *, force: bool = False) -> int:
    """Bring every world entry's vector up to date for this embedder (force: re-embed all); returns count."""
    with db.session() as conn:
        if force:
            with transaction(conn):
                vectors.delete_model(conn, OWNER_TYPE, embedder.model_id)
        return index_world_entries(conn, embedder)


class SmallCache:
    """A thread-safe LRU mapping holding a few values (per-process caches of entries, indexes, vectors)."""

    def __init__(self, size: int = 8) -> None:
        self._data: OrderedDict[Any, Any] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, key: Any) -> Any:
        """The value for key (marked recently used), or None."""
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key: Any, value: Any) -> None:
        """Store a value, dropping the least recently used beyond the size."""
        with self._lock:
            self._data[key] = value
            while len(self._data) > self._size:
                self._data.popitem(last=False)

    def clear(self) -> None:
        """Forget everything."""
        with self._lock:
            self._data.clear()


_MASKERS = SmallCache(32)  # per-world KeyMaskers, by key set


def _row_entry(row: dict[str, Any]) -> LoreEntry:
    return LoreEntry(
        id=int(row["id"]), world_id=int(row["world_id"]),
        keys=tuple(str(k) for k in json.loads(row["keys_json"] or "[]")),
        secondary_keys=tuple(str(k) for k in json.loads(row["secondary_keys_json"] or "[]")),
        content=row["content"] or "", comment=row["comment"] or "", constant=bool(row["constant"]),
        selective=bool(row["selective"]), selective_logic=int(row["selective_logic"] or 0),
        enabled=not row["disabled"], order=float(row["order_value"]), probability=float(row["probability"]),
        use_probability=bool(row["use_probability"]), canon_law=bool(row["is_canon_law"]),
    )


def load_entries(conn: Connection, world_ids: Iterable[int]) -> list[LoreEntry]:
    """Every entry (disabled and canon law included) of these worlds, by id."""
    ids = sorted(set(world_ids))
    if not ids:
        return []
    return [_row_entry(r) for r in vectors.entry_rows(conn, ids)]


@dataclass
class LoreCaches:
    """The lore caches keyed by DB file and change counter: one set per app, cleared when a restore swaps the DB."""

    entries: SmallCache = field(default_factory=SmallCache)
    vectors: SmallCache = field(default_factory=SmallCache)
    fresh: SmallCache = field(default_factory=SmallCache)  # entry lists whose vectors are known to be current

    def clear(self) -> None:
        """Forget every cached entry, vector and "already indexed" mark."""
        for cache in (self.entries, self.vectors, self.fresh):
            cache.clear()


SHARED = LoreCaches()  # for callers without an app (CLI, benches, tests)


def cached_entries(conn: Any, world_ids: Iterable[int], caches: LoreCaches | None = None) -> list[LoreEntry]:
    """load_entries, reused (same objects, so the LoreIndex is reused too) until the worlds' rows change."""
    ids = tuple(sorted(set(world_ids)))
    if not ids:
        return []
    cache = (caches or SHARED).entries
    key = (db_file(conn), ids)
    fingerprint = data_version(conn, "world_entries")
    cached = cache.get(key)
    if cached is not None and cached[0] == fingerprint and key[0]:
        return cached[1]
    entries = load_entries(conn, ids)
    cache.put(key, (fingerprint, entries))
    return entries


def cached_vectors(conn: Any, entry_ids: frozenset[int], model: str,
                   caches: LoreCaches | None = None) -> dict[int, np.ndarray]:
    """vectors.get_many for world entries, reused (same dict) until this model's stored vectors change."""
    cache = (caches or SHARED).vectors
    key = (db_file(conn), model, hash(entry_ids))
    fingerprint = data_version(conn, "embeddings")
    cached = cache.get(key)
    if cached is not None and cached[0] == fingerprint and cached[1] == entry_ids and key[0]:
        return cached[2]
    found = vectors.get_many(conn, OWNER_TYPE, entry_ids, model)
    cache.put(key, (fingerprint, entry_ids, found))
    return found


def stale_entries(conn: Any, entries: Sequence[LoreEntry], model: str) -> set[int]:
    """Ids of these entries whose vector for ``model`` is missing or out of date."""
    current = {eid: text_hash(text) for eid, text in entry_texts(entries).items()}
    return vectors.stale(conn, OWNER_TYPE, model, current)


_jobs: dict[tuple[str, str], threading.Thread] = {}
_jobs_lock = threading.Lock()


def ensure_indexed(conn: Any, embedder: Embedder, entries: list[LoreEntry], world_ids: Iterable[int], *,
                   caches: LoreCaches | None = None, jobs: Worker | None = None) -> bool:
    """Embed stale entries now (few) or start a background job (many, on `jobs` when given); True if all are
    current."""
    fresh = (caches or SHARED).fresh
    key = (id(entries), embedder.model_id)
    if fresh.get(key) is not None:
        return True
    stale = stale_entries(conn, entries, embedder.model_id)
    path = db_file(conn)
    if stale and (len(stale) <= INLINE_INDEX or not path):
        try:
            index_world_entries(conn, embedder, stale)
        except driver().Error as e:
            log.warning("lore: could not store vectors for %d entries: %s", len(stale), e)
            return False
    elif stale:
        if jobs is not None:
            ids = sorted(set(world_ids))
            jobs.submit_threadsafe((path, embedder.model_id), lambda: index_worlds(path, embedder, ids))
        else:
            index_in_background(path, embedder, world_ids)
        log.info("lore: %d entries have no current vector yet; indexing them in the background", len(stale))
        return False
    fresh.put(key, entries)  # holds the list, so its id stays unique while remembered
    return True


async def index_worlds(db_path: str, embedder: Embedder, world_ids: list[int]) -> None:
    """A lore-index worker job: embed these worlds' stale entries a batch at a time (a pause stops it between
    batches, never inside one)."""
    while await in_thread(_index_job, db_path, embedder, world_ids, BATCH):
        pass


def index_in_background(db_path: str, embedder: Embedder, world_ids: Iterable[int]) -> bool:
    """Start indexing these worlds on a thread with its own connection; False if one is already running."""
    key = (db_path, embedder.model_id)
    ids = sorted(set(world_ids))
    with _jobs_lock:
        running = _jobs.get(key)
        if running is not None and running.is_alive():
            return False
        thread = threading.Thread(target=_index_job, args=(db_path, embedder, ids), daemon=True,
                                  name=f"lore-index-{embedder.model_id}")
        _jobs[key] = thread
        thread.start()
    return True


def wait_for_jobs(timeout: float | None = None) -> None:
    """Block until background indexing jobs finish (tests, shutdown)."""
    with _jobs_lock:
        threads = list(_jobs.values())
    for thread in threads:
        thread.join(timeout)


def _index_job(db_path: str, embedder: Embedder, world_ids: list[int], limit: int | None = None) -> int:
    """Embed (up to `limit`) stale entries of these worlds on a connection of its own; returns how many."""
    try:
        conn = connect(db_path)
    except NeuralRPError as e:
        log.warning("lore index: cannot open %s: %s", db_path, e)
        return 0
    try:
        return index_world_entries(conn, embedder, world_ids=world_ids, limit=limit)
    except (NeuralRPError, driver().Error) as e:
        log.warning("lore index for worlds %s failed: %s", world_ids, e)
        return 0
    finally:
        conn.close()
