"""The DB side of lore: reading world entries (cached per process) and keeping their vectors current.

The embedded text of an entry is its keys (quotes stripped), its comment (title) and its content, so a
paraphrase of what the entry is about finds it, not only a paraphrase of its keys. The stored
``content_hash`` is the sha256 of exactly that text: an entry is re-embedded only when its text changes
(keys, comment or content), never twice for the same text and model, and vectors of deleted entries are
dropped. ``lore_for_turn`` calls ``ensure_indexed`` each turn: a few stale entries are embedded on the
spot, many go to a background thread with its own connection.

Caches (entries, vectors, "already indexed") are keyed by DB file and checked each turn against a cheap
fingerprint query (row count, id sum, newest timestamp), so edits show up on the next turn.
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
from typing import Any

import numpy as np

from neuralrp.db.connection import Database, connect, driver, transaction
from neuralrp.errors import DatabaseError, NeuralRPError
from neuralrp.retrieval import vectors
from neuralrp.retrieval.embedder import Embedder
from neuralrp.retrieval.types import LoreEntry

log = logging.getLogger(__name__)

OWNER_TYPE = "world_entry"
BATCH = 64
INLINE_INDEX = 16  # this many stale entries or fewer are embedded during the turn; more go to a background job
_QUOTE_CHARS = "\"'\u201c\u201d\u201e\u00ab\u00bb\u300c\u300d\u300e\u300f"


def entry_text(keys: Sequence[str], comment: str, content: str) -> str:
    """The text embedded for an entry: keys, then comment, then content (MiniLM reads the first 256 tokens)."""
    clean = [k.strip().strip(_QUOTE_CHARS).strip() for k in keys]
    parts = [", ".join(k for k in clean if k), comment.strip(), content.strip()]
    return "\n".join(p for p in parts if p)


def text_hash(text: str) -> str:
    """sha256 hex of the embedded text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def lore_entry_hash(entry: LoreEntry) -> str:
    """The content hash a LoreEntry's vector is stored under."""
    return text_hash(entry_text(entry.keys, entry.comment, entry.content))


def _entry_rows(conn: Any, entry_ids: Iterable[int] | None, world_ids: Iterable[int] | None) -> list[dict[str, Any]]:
    sql = "SELECT id, keys_json, comment, content FROM world_entries"
    clauses, params = [], []
    if entry_ids is not None:
        clauses.append("id IN (SELECT value FROM json_each(?))")
        params.append(json.dumps(sorted(set(entry_ids))))
    if world_ids is not None:
        clauses.append("world_id IN (SELECT value FROM json_each(?))")
        params.append(json.dumps(sorted(set(world_ids))))
    if clauses:
        sql += " WHERE " + " AND ".join(clauses)
    return conn.execute(sql + " ORDER BY id", params).fetchall()


def _texts(rows: list[dict[str, Any]]) -> dict[int, str]:
    out = {}
    for row in rows:
        text = entry_text(json.loads(row["keys_json"] or "[]"), row["comment"] or "", row["content"] or "")
        if text:
            out[int(row["id"])] = text
    return out


def remove_orphans(conn: Any) -> int:
    """Delete vectors (every model) of world entries that no longer exist; returns rows removed."""
    rows = conn.execute(
        "SELECT DISTINCT owner_id FROM embeddings WHERE owner_type = ?"
        " AND owner_id NOT IN (SELECT id FROM world_entries)", (OWNER_TYPE,),
    ).fetchall()
    return vectors.delete(conn, OWNER_TYPE, [int(r["owner_id"]) for r in rows])


def _write(conn: Any, embedder: Embedder, batch: list[tuple[int, str]]) -> None:
    """Embed a batch first, then store it in one short write transaction (never hold the lock while embedding)."""
    matrix = embedder.embed([text for _, text in batch])
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
    texts = _texts(_entry_rows(conn, entry_ids, world_ids))
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


_ENTRY_COLUMNS = ("id, world_id, keys_json, secondary_keys_json, content, comment, constant, selective, "
                  "selective_logic, disabled, order_value, probability, use_probability, is_canon_law")


def load_entries(conn: Any, world_ids: Iterable[int]) -> list[LoreEntry]:
    """Every entry (disabled and canon law included) of these worlds, by id."""
    ids = sorted(set(world_ids))
    if not ids:
        return []
    rows = conn.execute(
        f"SELECT {_ENTRY_COLUMNS} FROM world_entries WHERE world_id IN (SELECT value FROM json_each(?)) ORDER BY id",
        (json.dumps(ids),),
    ).fetchall()
    return [_row_entry(r) for r in rows]


_ENTRIES = SmallCache()
_VECTORS = SmallCache()
_FRESH = SmallCache()


def db_file(conn: Any) -> str:
    """Path of the connection's main database ('' for an in-memory one)."""
    return str(conn.execute("PRAGMA database_list").fetchone()["file"] or "")


def data_version(conn: Any, name: str) -> tuple[int, int]:
    """(version, token) of a table's change counter; any write to the table changes it (migration 0005)."""
    row = conn.execute("SELECT version, token FROM data_versions WHERE name = ?", (name,)).fetchone()
    if row is None:
        raise DatabaseError(f"the database has no change counter for {name}; run `neuralrp migrate`")
    return int(row["version"]), int(row["token"])


def cached_entries(conn: Any, world_ids: Iterable[int]) -> list[LoreEntry]:
    """load_entries, reused (same objects, so the LoreIndex is reused too) until the worlds' rows change."""
    ids = tuple(sorted(set(world_ids)))
    if not ids:
        return []
    key = (db_file(conn), ids)
    fingerprint = data_version(conn, "world_entries")
    cached = _ENTRIES.get(key)
    if cached is not None and cached[0] == fingerprint and key[0]:
        return cached[1]  # type: ignore[no-any-return]
    entries = load_entries(conn, ids)
    _ENTRIES.put(key, (fingerprint, entries))
    return entries


def cached_vectors(conn: Any, entry_ids: frozenset[int], model: str) -> dict[int, np.ndarray]:
    """vectors.get_many for world entries, reused (same dict) until this model's stored vectors change."""
    key = (db_file(conn), model, hash(entry_ids))
    fingerprint = data_version(conn, "embeddings")
    cached = _VECTORS.get(key)
    if cached is not None and cached[0] == fingerprint and cached[1] == entry_ids and key[0]:
        return cached[2]  # type: ignore[no-any-return]
    found = vectors.get_many(conn, OWNER_TYPE, entry_ids, model)
    _VECTORS.put(key, (fingerprint, entry_ids, found))
    return found


def stale_entries(conn: Any, entries: Sequence[LoreEntry], model: str) -> set[int]:
    """Ids of these entries whose vector for ``model`` is missing or out of date."""
    current = {}
    for entry in entries:
        text = entry_text(entry.keys, entry.comment, entry.content)
        if text:
            current[entry.id] = text_hash(text)
    return vectors.stale(conn, OWNER_TYPE, model, current)


_jobs: dict[tuple[str, str], threading.Thread] = {}
_jobs_lock = threading.Lock()


def ensure_indexed(conn: Any, embedder: Embedder, entries: list[LoreEntry], world_ids: Iterable[int]) -> bool:
    """Embed stale entries now (few) or start a background job (many); True if all vectors are current."""
    key = (id(entries), embedder.model_id)
    if _FRESH.get(key) is not None:
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
        index_in_background(path, embedder, world_ids)
        log.info("lore: %d entries have no current vector yet; indexing them in the background", len(stale))
        return False
    _FRESH.put(key, entries)  # holds the list, so its id stays unique while remembered
    return True


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


def _index_job(db_path: str, embedder: Embedder, world_ids: list[int]) -> None:
    try:
        conn = connect(db_path)
    except NeuralRPError as e:
        log.warning("lore index: cannot open %s: %s", db_path, e)
        return
    try:
        index_world_entries(conn, embedder, world_ids=world_ids)
    except (NeuralRPError, driver().Error) as e:
        log.warning("lore index for worlds %s failed: %s", world_ids, e)
    finally:
        conn.close()
