"""Semantic fallback of the visual-canon matcher: short appearance phrases the aliases missed, matched to
vocabulary phrases by cosine similarity with the project's embedder (vocabulary vectors computed once)."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from neuralrp.errors import NeuralRPError
from neuralrp.images.danbooru_vocab import COLOURS, HEADS, TagEntry, Vocabulary, is_word
from neuralrp.retrieval.embedder import E5_ID

log = logging.getLogger(__name__)

SEMANTIC_THRESHOLD = 0.76  # MiniLM cosine; below this the nearest tag is often a different look
UNTUNED = frozenset({E5_ID})  # models whose cosine scale SEMANTIC_THRESHOLD does not fit (no semantic tags)
MAX_SEMANTIC = 8
MIN_WORDS, MAX_WORDS = 2, 8
SPLITTERS = {"and", "with", "while", "but", "or", "who", "which", "that", "as", "in", "wears", "wearing", "wore",
             "dressed", "clad", "has", "had", "have", "is", "are", "was", "were"}
CUES = {*HEADS, "outfit", "clothes", "clothing", "ears", "tail", "wings", "horns", "figure", "build", "body",
        "attire", "garb", "uniform", "sleeves", "hat", "shoes"}
STOPWORDS = {"a", "an", "the", "her", "his", "their", "its", "my", "your", "our", "she", "he", "they", "it", "i",
             "is", "are", "was", "were", "be", "has", "have", "had", "of", "in", "on", "at", "to", "for", "from",
             "by", "very", "so", "too", "this", "these", "those", "there", "up", "down", "out", "s", "'s"}
_cache: dict[tuple[str, str], tuple[np.ndarray, list[tuple[TagEntry, str]]]] = {}
_cache_lock = threading.Lock()


@dataclass(frozen=True)
class SemanticMatch:
    """A text segment whose nearest vocabulary phrase is close enough."""

    entry: TagEntry
    text: str
    score: float
    pos: int
    colour: str | None


def candidate_segments(toks: list[str], consumed: list[bool], vocab: Vocabulary) -> list[tuple[int, list[str]]]:
    """Short unmatched word runs that talk about looks: (start index, words)."""
    nouns = {key[-1] for key in vocab.phrases}
    out: list[tuple[int, list[str]]] = []
    start = 0
    for i in range(len(toks) + 1):
        if i < len(toks) and is_word(toks[i]) and toks[i] not in SPLITTERS:
            continue
        words = toks[start:i]
        if (MIN_WORDS <= len(words) <= MAX_WORDS and not any(consumed[start:i])
                and any(w in CUES or w in nouns for w in words)
                and any(w not in STOPWORDS and w not in CUES for w in words)):
            out.append((start, words))
        start = i + 1
    return out


def vocabulary_vectors(vocab: Vocabulary, embedder: Any) -> tuple[np.ndarray, list[tuple[TagEntry, str]]]:
    """Vectors of every vocabulary phrase for this embedder (computed once per model and vocabulary)."""
    key = (str(embedder.model_id), vocab.fingerprint)
    with _cache_lock:
        if key not in _cache:
            pairs = vocab.texts()
            # a LazyEmbedder's cache keeps chat lines, which 2,000 one-off phrases would evict
            embed = getattr(embedder, "embed_uncached", embedder.embed)
            matrix = np.asarray(embed([text for _, text in pairs]), dtype=np.float32)
            _cache[key] = (matrix, pairs)
            log.info("embedded %d Danbooru vocabulary phrases with %s", len(pairs), key[0])
        return _cache[key]


def semantic_hits(toks: list[str], consumed: list[bool], vocab: Vocabulary, embedder: Any,
                  threshold: float = SEMANTIC_THRESHOLD) -> list[SemanticMatch]:
    """Best vocabulary tag per candidate segment, when its cosine reaches `threshold`."""
    segments = candidate_segments(toks, consumed, vocab)
    if not segments or str(getattr(embedder, "model_id", "")) in UNTUNED:
        return []  # the threshold is a MiniLM cosine; e5 puts even unrelated texts at ~0.8
    try:
        matrix, pairs = vocabulary_vectors(vocab, embedder)
        vectors = np.asarray(embedder.embed([" ".join(words) for _, words in segments]), dtype=np.float32)
    except NeuralRPError as e:
        log.warning("semantic tag matching skipped: %s", e.message)
        return []
    scores = vectors @ matrix.T
    found = []
    for row, (start, words) in enumerate(segments):
        best = int(np.argmax(scores[row]))
        score = float(scores[row, best])
        if score >= threshold:
            entry = pairs[best][0]
            colour = next((COLOURS[w] for w in words if w in COLOURS), None)
            found.append(SemanticMatch(entry, " ".join(words), score, start, colour))
    found.sort(key=lambda m: -m.score)
    return sorted(found[:MAX_SEMANTIC], key=lambda m: m.pos)
