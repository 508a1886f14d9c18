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
- Semantic: an entry with at least one unquoted plain key is also selected when the cosine similarity of
  its vector (keys + comment + content, see index.py) with a recent-text vector is >= threshold.
  Several query vectors may be given (``lore_for_turn`` embeds each of the last lines and adds their mean);
  the best one counts. Reason ``semantic``, score = similarity. A key match wins over a semantic one.
  Scoring is one numpy matrix product over cached entry vectors, or sqlite-vec KNN for huge worlds.

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
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any, Literal, NamedTuple

import numpy as np

from neuralrp.retrieval.embedder import MODEL_IDS, Embedder, EmbedderUnavailable, query_chunks, with_centroid
from neuralrp.retrieval.index import (
    OWNER_TYPE,
    SmallCache,
    cached_entries,
    cached_vectors,
    ensure_indexed,
    load_entries,
)
from neuralrp.retrieval.types import LoreEntry, LoreHit, Reason
from neuralrp.retrieval.vectors import VectorError, best_similarities

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_THRESHOLD", "Key", "LoreIndex", "canon_law_entries", "load_entries", "lore_for_turn",
           "lore_index", "normalize", "parse_key", "probability_passes", "select_lore", "selective_passes",
           "split_canon"]

DEFAULT_THRESHOLD = 0.40  # all-MiniLM-L6-v2: unrelated RP lines score <= ~0.32, paraphrases ~0.44-0.65
KNN_ABOVE = 20000  # more semantic candidates than this: ask sqlite-vec KNN instead of holding every vector
KNN_K = 32

KeyKind = Literal["exact", "keyword", "regex"]
_QUOTES = {'"': '"', "\u201c": "\u201d", "\u201e": "\u201c\u201d", "\u00ab": "\u00bb", "\u300c": "\u300d",
           "\u300e": "\u300f", "\u201d": "\u201d"}
_STRAY_QUOTES = "".join(_QUOTES) + "".join(_QUOTES.values())
_REGEX_KEY = re.compile(r"^/(.+)/([a-zA-Z]*)$", re.DOTALL)
_REGEX_FLAGS = {"i": re.IGNORECASE, "s": re.DOTALL, "m": re.MULTILINE}
_LATIN_MARKS = re.compile("([a-z\u00c0-\u024f\u0370-\u03ff])[\u0300-\u036f]+")  # accents on Latin/Greek
_PUNCT_MAP = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "\u2010": "-", "\u2011": "-",
                            "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2212": "-"})
_NO_SPACE = re.compile("[\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff\u3100-\u312f\u3400-\u4dbf"
                       "\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\U00020000-\U0002fa1f]")
_WORD = re.compile(r"\w+")
_SEP = r"[\s\-]+"


def normalize(text: str) -> str:
    """NFKC + casefold, Latin/Greek accents dropped, ASCII apostrophes/dashes, whitespace collapsed."""
    text = unicodedata.normalize("NFKC", text).casefold().translate(_PUNCT_MAP)
    if not text.isascii():
        text = unicodedata.normalize("NFC", _LATIN_MARKS.sub(r"\1", unicodedata.normalize("NFD", text)))
    return " ".join(text.split())


def _variants(word: str) -> tuple[str, ...]:
    """A text token and its possible singulars (for anchor lookup; the regex decides)."""
    out = [word]
    if word.endswith("s"):
        out.append(word[:-1])
        if word.endswith("es"):
            out.append(word[:-2])
        if word.endswith("ies"):
            out.append(word[:-3] + "y")
    return tuple(out)


class _Text:
    """The recent text in the forms the keys need, computed once per turn."""

    def __init__(self, raw: str) -> None:
        self.nfkc = unicodedata.normalize("NFKC", raw)
        self.norm = normalize(raw)
        self._tokens: set[str] | None = None
        self._grams: set[str] | None = None

    @property
    def tokens(self) -> set[str]:
        """Word tokens of the normalized text, with singular variants."""
        if self._tokens is None:
            self._tokens = {v for w in set(_WORD.findall(self.norm)) for v in _variants(w)}
        return self._tokens

    @property
    def grams(self) -> set[str]:
        """All 1- and 2-character substrings (anchors for no-space scripts)."""
        if self._grams is None:
            t = self.norm
            self._grams = set(t) | {t[i : i + 2] for i in range(len(t) - 1)}
        return self._grams


@dataclass(frozen=True)
class Key:
    """A parsed world-info key: how it matches and which token/gram must be present for it to match."""

    raw: str
    text: str
    kind: KeyKind
    source: str | None = None  # regex source, compiled on first use (most keys are never tested)
    flags: int = 0
    needle: str | None = None
    required: frozenset[str] = frozenset()  # word tokens that must all occur in the text
    gram: str | None = None  # for substring keys: their first 1-2 characters

    @cached_property
    def pattern(self) -> re.Pattern[str]:
        """The compiled regex of a word, phrase or regex key."""
        return re.compile(self.source or "", self.flags)

    def matches(self, text: _Text | str) -> bool:
        """Whether this key occurs in the text."""
        if not self.text:
            return False
        t = text if isinstance(text, _Text) else _Text(text)
        if self.needle is not None:
            return self.needle in t.norm
        return self.pattern.search(t.nfkc if self.kind == "regex" else t.norm) is not None


def _unquote(raw: str) -> str | None:
    balanced = len(raw) >= 2 and raw[0] in _QUOTES and raw[-1] in _QUOTES[raw[0]]
    return raw[1:-1] if balanced else None


def _plural(word: str) -> tuple[str, str, str]:
    """(literal stem, suffix regex, anchor) for the last word of an unquoted key: simple English plurals."""
    if not re.fullmatch(r"[a-z]{3,}", word):
        return word, "", word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3], "(?:y|ies)", word[:-3] + "y"
    if word.endswith("y") and word[-2] not in "aeiou":
        return word[:-1], "(?:y|ies)", word
    if word.endswith(("ss", "x", "z", "ch", "sh")):
        return word, "(?:es)?", word
    if word.endswith("s") and not word.endswith(("us", "is", "as")) and len(word) >= 4:
        return word[:-1], "(?:s|es)?", word[:-1]
    return word, "(?:s|es)?", word


def _phrase_key(raw: str, needle: str, kind: KeyKind) -> Key:
    if _NO_SPACE.search(needle):
        return Key(raw, needle, kind, needle=needle, gram=needle[:2])
    parts = [p for p in re.split(_SEP, needle) if p]
    if not parts:
        return Key(raw, needle, kind, source=re.escape(needle))
    literals, suffix = list(parts), ""
    required = [w for p in parts[:-1] for w in _WORD.findall(p)]
    if kind == "keyword" and re.fullmatch(r"\w+", parts[-1]):
        literals[-1], suffix, last_anchor = _plural(parts[-1])
        required.append(last_anchor)
    else:
        required.extend(_WORD.findall(parts[-1]))
    body = [re.escape(p) for p in literals]
    if re.match(r"\w", needle):  # left word boundary, written after the first literal so re can scan for it fast
        body[0] += rf"(?<!\w{body[0]})"
    right = r"(?!\w)" if re.search(r"\w$", needle) else ""
    return Key(raw, needle, kind, source=_SEP.join(body) + suffix + right, required=frozenset(required))


def _regex_key(raw: str) -> Key | None:
    match = _REGEX_KEY.match(raw)
    if not match or set(match.group(2)) - set("gimsuy"):
        return None
    flags = sum(flag for char, flag in _REGEX_FLAGS.items() if char in match.group(2))
    try:
        re.compile(match.group(1), flags)
        return Key(raw, match.group(1), "regex", source=match.group(1), flags=flags)
    except re.error as e:
        log.debug("world-info regex key %r does not compile in Python (%s); using it as a literal", raw, e)
        return None


@lru_cache(maxsize=65536)
def parse_key(raw: str) -> Key:
    """Parse one key: "quoted" = exact phrase, /regex/flags = regex, anything else = keyword (+ semantic)."""
    stripped = raw.strip()
    inner = _unquote(stripped)
    if inner is not None:
        return _phrase_key(raw, normalize(inner), "exact")
    regex = _regex_key(stripped) if stripped.startswith("/") else None
    return regex or _phrase_key(raw, normalize(stripped.strip(_STRAY_QUOTES)), "keyword")


def selective_passes(logic: int, secondary: Sequence[Key], text: _Text | str) -> bool:
    """ST selectiveLogic over secondary keys: 0 AND ANY, 1 NOT ALL, 2 NOT ANY, 3 AND ALL."""
    t = text if isinstance(text, _Text) else _Text(text)
    hits = [k.matches(t) for k in secondary]
    return {1: not all(hits), 2: not any(hits), 3: all(hits)}.get(logic, any(hits))


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
    return _Compiled(entry, primary, secondary, any(k.kind == "keyword" for k in primary))


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

    def key_hits(self, text: _Text) -> dict[int, list[Key]]:
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

    def semantic_scores(self, query: np.ndarray, vectors: dict[int, np.ndarray], floor: float,
                        top: int | None = None) -> dict[int, float]:
        """Best cosine >= floor per semantic-eligible item (one matrix product; items without a vector skipped).

        With ``top``, only the ``top`` best of them (ties at the cut broken by row order).
        """
        rows, matrix = self._stack(vectors)
        if not rows or query.size == 0:
            return {}
        q = np.atleast_2d(np.asarray(query, dtype=np.float32))
        if matrix.shape[1] != q.shape[1]:
            raise VectorError(f"dimension mismatch: entry vectors are {matrix.shape[1]}-dim, query is {q.shape[1]}")
        best = (matrix @ q.T).max(axis=1)
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


def _passes(item: _Compiled, text: _Text, turn: int) -> bool:
    entry = item.entry
    if entry.selective and item.secondary and not entry.constant:
        if not selective_passes(entry.selective_logic, item.secondary, text):
            return False
    return probability_passes(entry, turn)


def _sort_key(hit: LoreHit) -> tuple[int, float, float, int]:
    return (1 if hit.reason == "semantic" else 0, -hit.score, -hit.entry.order, hit.entry.id)


def _scores(
    index: LoreIndex,
    query_vector: np.ndarray | None,
    entry_vectors: dict[int, np.ndarray] | None,
    similarities: dict[int, float] | None,
    threshold: float,
    top: int | None = None,
) -> dict[int, float]:
    """Similarity >= threshold per item index, from vectors (numpy) or from precomputed KNN similarities."""
    if query_vector is not None and entry_vectors:
        return index.semantic_scores(query_vector, entry_vectors, threshold, top)
    over = {eid: s for eid, s in (similarities or {}).items() if s >= threshold and eid in index.semantic_ids}
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
) -> list[LoreHit]:
    """Entries relevant to ``recent_text`` (canon law excluded), most relevant first.

    Semantic input is either ``query_vector`` ((dim,) or (n, dim)) with ``entry_vectors``, or
    ``similarities`` (entry id -> cosine, e.g. from ``vectors.best_similarities``). With ``limit``
    only the best ``limit`` hits are returned (cheaper than sorting thousands of weak matches).
    """
    index = lore_index(entries)
    text = _Text(recent_text)
    found = {i: LoreHit(index.items[i].entry, "constant", 1.0) for i in index.constants}
    matched = index.key_hits(text)
    found.update((i, _key_hit(index.items[i], keys)) for i, keys in matched.items())
    scores = _scores(index, query_vector, entry_vectors, similarities, threshold, None if limit is None else 2 * limit)
    if limit is not None and len(scores) > 2 * limit:  # only the strongest semantic matches can make the cut
        scores = dict(heapq.nlargest(2 * limit, scores.items(), key=lambda kv: kv[1]))
    for i, score in scores.items():
        if i not in found:
            found[i] = LoreHit(index.items[i].entry, "semantic", score)
    kept = [hit for i, hit in found.items() if _passes(index.items[i], text, turn)]
    if limit is not None and len(kept) > limit:
        return heapq.nsmallest(limit, kept, key=_sort_key)
    return sorted(kept, key=_sort_key)


def split_canon(entries: Iterable[LoreEntry]) -> tuple[list[LoreEntry], list[LoreEntry]]:
    """(ordinary entries, enabled canon-law entries by order descending)."""
    ordinary, canon = [], []
    for entry in entries:
        (canon if entry.canon_law else ordinary).append(entry)
    return ordinary, sorted((e for e in canon if e.enabled), key=lambda e: (-e.order, e.id))


def canon_law_entries(conn: Any, world_ids: Iterable[int]) -> list[LoreEntry]:
    """Enabled canon-law entries of these worlds, order descending (for the builder's schedule)."""
    return split_canon(cached_entries(conn, world_ids))[1]


def _semantic_inputs(conn: Any, embedder: Embedder, entries: Sequence[LoreEntry], recent_text: str) -> dict[str, Any]:
    """Query vectors plus either entry vectors (small worlds) or KNN similarities (large ones)."""
    ids = lore_index(entries).semantic_ids
    texts = query_chunks(recent_text)
    if not ids or not texts:
        return {}
    queries = with_centroid(embedder.embed(texts))
    model = embedder.model_id
    if len(ids) > KNN_ABOVE:  # one KNN scan per query: only the last two lines and the mean
        sims = best_similarities(conn, OWNER_TYPE, model, queries[-3:], k=KNN_K, owner_ids=set(ids))
        return {"similarities": sims}
    return {"query_vector": queries, "entry_vectors": cached_vectors(conn, ids, model)}


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
) -> list[LoreHit]:
    """The lore hits for a turn (canon law excluded): load entries (unless given), embed the recent text, select."""
    world_ids = sorted(set(world_ids))
    entries = cached_entries(conn, world_ids) if entries is None else entries
    if not entries:
        return []
    usable = _usable(embedder, model)
    semantic: dict[str, Any] = {}
    if usable is not None:
        try:
            ensure_indexed(conn, usable, entries, world_ids)
            semantic = _semantic_inputs(conn, usable, entries, recent_text)
        except EmbedderUnavailable as e:
            log.warning("lore: embedding failed (%s); exact/keyword matching only this turn", e)
    return select_lore(entries, recent_text, turn=turn, threshold=threshold, limit=limit, **semantic)
