"""World lore selection: which entries are relevant to the recent text of a turn.

Rules (SPEC §4, SillyTavern World Info fields):

Normalization. Keys and text are NFKC-normalized and casefolded, accents on Latin and Greek letters are
dropped ("Café" == "cafe"; Cyrillic й and Japanese dakuten are kept), typographic apostrophes and dashes
become ASCII, and runs of whitespace collapse to one space: matching is case-, width- and accent-insensitive.

Keys (``parse_key``).
- Quoted keys (``"Great Crash Landing"``, also “…”, „…“, «…», 「…」, 『…』) are exact phrases: the whole
  phrase, with word boundaries at its ends. "the great crash landing," matches; "greatcrash" does not.
  Inside a phrase, whitespace and hyphens are interchangeable separators ("great-crash landing" matches).
  A paraphrase never matches a quoted key: entries whose primary keys are all quoted (or regex) are never
  selected semantically. Reason ``exact_key``, score 1.0.
- Unquoted keys match as keywords the same way, plus simple English plural tolerance on the last word
  (dragon ~ dragons/dragones, city ~ cities, princess ~ princesses). Reason ``keyword``, score 1.0.
- Keys containing characters of scripts written without spaces (Chinese, Japanese, Korean, Thai, Lao,
  Khmer, Myanmar) match as substrings, since word boundaries do not exist there.
- ST regex keys ``/pattern/flags`` are real regexes (flags i, s, m honoured; g, y, u ignored), tested
  against the NFKC text without casefolding. A pattern Python cannot compile is used as a literal keyword.
  A regex hit counts as ``keyword``. ST ``{{macros}}`` inside keys are not substituted.
- Semantic: an entry with at least one unquoted plain key (and no selective secondary-key logic) is also
  selected when a line of the recent text is close enough in meaning to it. Its vector is its content with
  the world's keys masked out (index.py); each of the last lines is embedded on its own and the best counts.
  The score is how far the cosine rises above the entry's floor against generic roleplay chatter, in the
  model's units (calibration.py); it must reach ``threshold``. Reason ``semantic``. A key match wins over a
  semantic one. Scoring is one numpy matrix product over cached entry vectors, or sqlite-vec KNN for huge worlds.
- Keys written in other scripts than Latin (Cyrillic, Greek, Arabic, ...) match as substrings when unquoted
  (as SillyTavern does); quoted, they match the exact word.

Entry fields.
- disabled (``enabled=False``): never selected.  ``constant``: always selected, reason ``constant``.
- ``selective`` with non-empty secondary keys: a keyword/exact/semantic activation must also pass
  ``selective_logic`` over the secondary keys (0 AND ANY, 1 NOT ALL, 2 NOT ANY, 3 AND ALL; unknown values act
  as AND ANY). Secondary keys are parsed like primary keys but never matched semantically.
- ``use_probability`` with ``probability`` < 100: every activation (constant included) is kept with that
  chance, rolled with an RNG seeded from (entry id, turn), so a turn always selects the same entries.
- ``canon_law`` entries are never returned by ``select_lore``; they are "always known" and come from
  ``canon_law_entries`` / ``split_canon`` for the builder's own schedule.

Order of the result: key hits (exact, keyword, constant) first, then semantic hits by similarity; ties by
``order`` descending (higher = more important), then by id. The builder fills its lore budget in this order.
"""

from __future__ import annotations

import heapq
import logging
import random
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import numpy as np

from neuralrp.retrieval import calibration, vectors
from neuralrp.retrieval.embedder import MODEL_IDS, Embedder, EmbedderUnavailable, query_chunks
from neuralrp.retrieval.index import (
    OWNER_TYPE,
    LoreCaches,
    SmallCache,
    cached_entries,
    cached_vectors,
    ensure_indexed,
    load_entries,
)
from neuralrp.retrieval.keys import Key, ScanText, normalize, parse_key, selective_passes
from neuralrp.retrieval.types import LoreEntry, LoreHit, Reason
from neuralrp.retrieval.vectors import VectorError, best_similarities
from neuralrp.workers import Worker

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_THRESHOLD", "Key", "LoreIndex", "canon_law_entries", "load_entries", "lore_for_turn",
           "lore_index", "normalize", "parse_key", "probability_passes", "select_lore", "selective_passes",
           "split_canon"]

DEFAULT_THRESHOLD = 0.40  # calibrated score (calibration.py); tuned on the dev split of bench/lore_bench.py
KNN_ABOVE = 20000  # more semantic candidates than this: ask sqlite-vec KNN instead of holding every vector
KNN_K = 32

def probability_passes(entry: LoreEntry, turn: int) -> bool:
    """The entry's probability roll for this turn (deterministic per entry id and turn)."""
    if not entry.use_probability or entry.probability >= 100:
        return True
    if entry.probability <= 0:
        return False
    rng = random.Random((entry.id << 32) ^ (turn & 0xFFFFFFFF))
    return rng.random() * 100 < entry.probability


class _Compiled(NamedTuple):
    entry: LoreEntry
    primary: tuple[Key, ...]
    secondary: tuple[Key, ...]
    semantic: bool  # has an unquoted plain key


def _compile(entry: LoreEntry) -> _Compiled:
    primary = tuple(k for k in map(parse_key, entry.keys) if k.text)
    secondary = tuple(k for k in map(parse_key, entry.secondary_keys) if k.text)
    gated = entry.selective and bool(secondary)  # its author wrote explicit key logic: keys only, no paraphrase
    return _Compiled(entry, primary, secondary, not gated and any(k.kind == "keyword" for k in primary))


class LoreIndex:
    """Entries with their keys compiled and indexed by anchor; build once, select every turn.

    A word key is filed under its rarest word (across all keys) and only tested when that word occurs in
    the text; a substring key under its first two characters; regex keys are always tested.
    """

    def __init__(self, entries: Iterable[LoreEntry]) -> None:
        self.entries = list(entries)
        self.ids = tuple(map(id, self.entries))
        self.items = [_compile(e) for e in self.entries if e.enabled and not e.canon_law]
        self.constants = [i for i, c in enumerate(self.items) if c.entry.constant]
        self.semantic = [i for i, c in enumerate(self.items) if c.semantic and not c.entry.constant]
        self.semantic_ids = frozenset(self.items[i].entry.id for i in self.semantic)
        self.canon_law = split_canon(self.entries)[1]
        self.by_token: dict[str, list[tuple[int, Key]]] = {}
        self.by_gram: dict[str, list[tuple[int, Key]]] = {}
        self.unanchored: list[tuple[int, Key]] = []
        self._matrix: tuple[dict[int, np.ndarray], int, list[int], np.ndarray] | None = None
        self._floors: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # (matrix, background, floors)
        keyed = [(i, k) for i, c in enumerate(self.items) if not c.entry.constant for k in c.primary]
        freq = Counter(t for _, k in keyed for t in k.required)
        for index, key in keyed:
            if key.gram:
                self.by_gram.setdefault(key.gram, []).append((index, key))
            elif key.required:
                rarest = min(key.required, key=lambda t: (freq[t], -len(t), t))
                self.by_token.setdefault(rarest, []).append((index, key))
            else:
                self.unanchored.append((index, key))

    def key_hits(self, text: ScanText) -> dict[int, list[Key]]:
        """Items whose primary keys match: index -> matching keys."""
        out: dict[int, list[Key]] = {}
        candidates = [p for a in self.by_token.keys() & text.tokens for p in self.by_token[a]]
        if self.by_gram:
            candidates += [p for a in self.by_gram.keys() & text.grams for p in self.by_gram[a]]
        tokens = text.tokens
        for index, key in candidates + self.unanchored:
            if key.required <= tokens and key.matches(text):
                out.setdefault(index, []).append(key)
        return out

    def _stack(self, vectors: dict[int, np.ndarray]) -> tuple[list[int], np.ndarray]:
        """Rows (item indexes) and their vectors as one matrix; reused while the same dict comes back."""
        cached = self._matrix
        if cached is not None and cached[0] is vectors and cached[1] == len(vectors):
            return cached[2], cached[3]
        rows = [i for i in self.semantic if self.items[i].entry.id in vectors]
        stacked = [vectors[self.items[i].entry.id] for i in rows]
        matrix = np.stack(stacked).astype(np.float32, copy=False) if rows else np.zeros((0, 0), np.float32)
        self._matrix = (vectors, len(vectors), rows, matrix)
        return rows, matrix

    def _floors_for(self, matrix: np.ndarray, chatter: np.ndarray) -> np.ndarray:
        """Each row's similarity floor against the background (calibration.floors), reused for the same arrays."""
        cached = self._floors
        if cached is not None and cached[0] is matrix and cached[1] is chatter:
            return cached[2]
        found = calibration.floors(matrix, chatter)
        self._floors = (matrix, chatter, found)
        return found

    def semantic_scores(self, query: np.ndarray, vectors: dict[int, np.ndarray], floor: float,
                        top: int | None = None, background: np.ndarray | None = None,
                        unit: float = 1.0) -> dict[int, float]:
        """Best score >= floor per semantic-eligible item (one matrix product; items without a vector skipped).

        The score is the cosine, or with ``background`` (calibration) how far the cosine rises above the
        entry's background floor, divided by ``unit``. With ``top``, only the ``top`` best of them (ties at
        the cut broken by row order).
        """
        rows, matrix = self._stack(vectors)
        if not rows or query.size == 0:
            return {}
        q = np.atleast_2d(np.asarray(query, dtype=np.float32))
        if matrix.shape[1] != q.shape[1]:
            raise VectorError(f"dimension mismatch: entry vectors are {matrix.shape[1]}-dim, query is {q.shape[1]}")
        best = (matrix @ q.T).max(axis=1)
        if background is not None:
            best = (best - self._floors_for(matrix, background)) / unit
        over = np.flatnonzero(best >= floor)
        if top is not None and over.size > top:
            over = np.sort(over[np.argsort(-best[over], kind="stable")[:top]])
        return {rows[j]: float(best[j]) for j in over}


_INDEX_CACHE = SmallCache()


def lore_index(entries: Sequence[LoreEntry]) -> LoreIndex:
    """A LoreIndex for these entry objects, reused while the same (immutable) objects come back."""
    key, ids = (id(entries), len(entries)), tuple(map(id, entries))
    index = _INDEX_CACHE.get(key)
    if index is None or index.ids != ids:
        index = LoreIndex(entries)  # holds the entries, so their ids stay unique while cached
        _INDEX_CACHE.put(key, index)
    return index


def _key_hit(item: _Compiled, keys: list[Key]) -> LoreHit:
    reason: Reason = "exact_key" if any(k.kind == "exact" for k in keys) else "keyword"
    fired = {id(k) for k in keys}
    return LoreHit(item.entry, reason, 1.0, tuple(dict.fromkeys(k.raw for k in item.primary if id(k) in fired)))


def _passes(item: _Compiled, text: ScanText, turn: int) -> bool:
    entry = item.entry
    if entry.selective and item.secondary and not entry.constant:
        if not selective_passes(entry.selective_logic, item.secondary, text):
            return False
    return probability_passes(entry, turn)


def _sort_key(hit: LoreHit) -> tuple[int, float, float, int]:
    return (1 if hit.reason == "semantic" else 0, -hit.score, -hit.entry.order, hit.entry.id)


def _scores(index: LoreIndex, semantic: dict[str, Any], threshold: float, top: int | None) -> dict[int, float]:
    """Score >= threshold per item index, from vectors (numpy) or from precomputed KNN similarities."""
    query_vector, entry_vectors = semantic.get("query_vector"), semantic.get("entry_vectors")
    if query_vector is not None and entry_vectors:
        return index.semantic_scores(query_vector, entry_vectors, threshold, top, semantic.get("background"),
                                     semantic.get("unit", 1.0))
    sims = semantic.get("similarities") or {}
    over = {eid: s for eid, s in sims.items() if s >= threshold and eid in index.semantic_ids}
    if not over:
        return {}
    by_id = {index.items[i].entry.id: i for i in index.semantic}
    return {by_id[eid]: s for eid, s in over.items()}


def select_lore(
    entries: Sequence[LoreEntry],
    recent_text: str,
    *,
    turn: int,
    query_vector: np.ndarray | None = None,
    entry_vectors: dict[int, np.ndarray] | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    similarities: dict[int, float] | None = None,
    limit: int | None = None,
    background: np.ndarray | None = None,
    unit: float = 1.0,
) -> list[LoreHit]:
    """Entries relevant to ``recent_text`` (canon law excluded), most relevant first.

    Semantic input is either ``query_vector`` ((dim,) or (n, dim)) with ``entry_vectors``, or
    ``similarities`` (entry id -> score, e.g. from ``vectors.best_similarities``). With ``background``
    (see calibration.py) vector scores are margins above each entry's floor, in ``unit``s. With ``limit``
    only the best ``limit`` hits are returned (cheaper than sorting thousands of weak matches).
    """
    index = lore_index(entries)
    text = ScanText(recent_text)
    found = {i: LoreHit(index.items[i].entry, "constant", 1.0) for i in index.constants}
    matched = index.key_hits(text)
    found.update((i, _key_hit(index.items[i], keys)) for i, keys in matched.items())
    semantic = {"query_vector": query_vector, "entry_vectors": entry_vectors, "similarities": similarities,
                "background": background, "unit": unit}
    scores = _scores(index, semantic, threshold, None if limit is None else 2 * limit)
    if limit is not None and len(scores) > 2 * limit:  # only the strongest semantic matches can make the cut
        scores = dict(heapq.nlargest(2 * limit, scores.items(), key=lambda kv: kv[1]))
    for i, score in scores.items():
        if i not in found:
            found[i] = LoreHit(index.items[i].entry, "semantic", round(score, 4))
    kept = [hit for i, hit in found.items() if _passes(index.items[i], text, turn)]
    if limit is not None and len(kept) > limit:
        return heapq.nsmallest(limit, kept, key=_sort_key)
    return sorted(kept, key=_sort_key)


def split_canon(entries: Iterable[LoreEntry]) -> tuple[list[LoreEntry], list[LoreEntry]]:
    """(ordinary entries, enabled canon-law entries by order descending)."""
    ordinary: list[LoreEntry] = []
    canon: list[LoreEntry] = []
    for entry in entries:
        (canon if entry.canon_law else ordinary).append(entry)
    return ordinary, sorted((e for e in canon if e.enabled), key=lambda e: (-e.order, e.id))


def canon_law_entries(conn: Any, world_ids: Iterable[int], caches: LoreCaches | None = None) -> list[LoreEntry]:
    """Enabled canon-law entries of these worlds, order descending (for the builder's schedule)."""
    return split_canon(cached_entries(conn, world_ids, caches))[1]


def _semantic_inputs(conn: Any, embedder: Embedder, entries: Sequence[LoreEntry], recent_text: str,
                     caches: LoreCaches | None = None) -> dict[str, Any]:
    """Line vectors plus either entry vectors and the background (small worlds) or calibrated KNN scores."""
    ids = lore_index(entries).semantic_ids
    texts = query_chunks(recent_text)
    if not ids or not texts:
        return {}
    queries = embedder.embed(texts)
    chatter = calibration.background(embedder)
    unit = calibration.scale(embedder.model_id)
    model = embedder.model_id
    if len(ids) > KNN_ABOVE:  # one KNN scan per query line: only the last three
        sims = best_similarities(conn, OWNER_TYPE, model, queries[-3:], k=KNN_K, owner_ids=set(ids))
        found = vectors.get_many(conn, OWNER_TYPE, sims, model)
        order = sorted(found)
        floors: Any = calibration.floors(np.stack([found[i] for i in order]), chatter) if order else []
        return {"similarities": {i: (sims[i] - float(f)) / unit for i, f in zip(order, floors, strict=True)}}
    return {"query_vector": queries, "entry_vectors": cached_vectors(conn, ids, model, caches),
            "background": chatter, "unit": unit}


def _usable(embedder: Embedder | None, model: str | None) -> Embedder | None:
    """The embedder if it is loaded and matches ``model`` (a model id or a settings name), else None."""
    if embedder is None:
        return None
    wanted = MODEL_IDS.get(model, model) if model else embedder.model_id
    if wanted != embedder.model_id:
        log.warning("lore: embedder is %s but %s vectors were asked for; exact/keyword matching only",
                    embedder.model_id, wanted)
        return None
    if not getattr(embedder, "ready", True):
        failed = getattr(embedder, "error", None)
        log.info("lore: embedding model %s %s; exact/keyword matching only this turn", wanted,
                 f"failed to load ({failed})" if failed else "not ready yet")
        return None
    return embedder


def lore_for_turn(
    conn: Any,
    embedder: Embedder | None,
    world_ids: Iterable[int],
    recent_text: str,
    *,
    turn: int,
    threshold: float = DEFAULT_THRESHOLD,
    model: str | None = None,
    limit: int | None = None,
    entries: list[LoreEntry] | None = None,
    caches: LoreCaches | None = None,
    jobs: Worker | None = None,
) -> list[LoreHit]:
    """The lore hits for a turn (canon law excluded): load entries (unless given), embed the recent text, select.

    `caches` and `jobs` are the app's (see retrieval.index); without them the shared caches and a thread are used.
    """
    world_ids = sorted(set(world_ids))
    entries = cached_entries(conn, world_ids, caches) if entries is None else entries
    if not entries:
        return []
    usable = _usable(embedder, model)
    semantic: dict[str, Any] = {}
    if usable is not None:
        try:
            ensure_indexed(conn, usable, entries, world_ids, caches=caches, jobs=jobs)
            semantic = _semantic_inputs(conn, usable, entries, recent_text, caches)
        except EmbedderUnavailable as e:
            log.warning("lore: embedding failed (%s); exact/keyword matching only this turn", e)
    return select_lore(entries, recent_text, turn=turn, threshold=threshold, limit=limit, **semantic)
