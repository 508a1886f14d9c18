"""Semantic fallback of the visual-canon matcher: short appearance phrases the aliases missed, matched to
vocabulary phrases by cosine similarity with the project's embedder (vocabulary vectors computed once).

Cosines are taken after centering: the mean of the vocabulary's vectors is subtracted from every vector. Raw
cosines crowd together differently per model (multilingual-e5 puts even unrelated short phrases at ~0.85); the
centered ones spread out, and each tuned model gets its own threshold on them (THRESHOLDS, chosen on the tuning
half of tests/fixtures/danbooru_semantic.tsv by bench/danbooru_semantic.py). A model without one gets no
semantic tags.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from neuralrp.errors import NeuralRPError
from neuralrp.images.danbooru_vocab import COLOURS, HEADS, TagEntry, Vocabulary, is_word
from neuralrp.retrieval.embedder import E5_ID, MINILM_ID

log = logging.getLogger(__name__)

# centered cosine per model id: the lowest 0.01 step whose tuning-half precision is >= 0.95 from there up
THRESHOLDS = {MINILM_ID: 0.76, E5_ID: 0.65}  # mpnet has none: it could not be measured here (needs torch)
MAX_SEMANTIC = 8
MIN_WORDS, MAX_WORDS = 2, 8
SPLITTERS = {"and", "with", "while", "but", "or", "who", "which", "that", "as", "in", "wears", "wearing", "wore",
             "dressed", "clad", "has", "had", "have", "is", "are", "was", "were"}
CUES = {*HEADS, "outfit", "clothes", "clothing", "ears", "tail", "wings", "horns", "figure", "build", "body",
        "attire", "garb", "uniform", "sleeves", "hat", "shoes"}
STOPWORDS = {"a", "an", "the", "her", "his", "their", "its", "my", "your", "our", "she", "he", "they", "it", "i",
             "is", "are", "was", "were", "be", "has", "have", "had", "of", "in", "on", "at", "to", "for", "from",
             "by", "very", "so", "too", "this", "these", "those", "there", "up", "down", "out", "s", "'s"}
_cache: dict[tuple[str, str], tuple[np.ndarray, np.ndarray, list[tuple[TagEntry, str]]]] = {}
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


def threshold_for(model_id: str) -> float | None:
    """The tuned semantic threshold of an embedding model, or None (no semantic tags) when it has none."""
    return THRESHOLDS.get(model_id)


def centered(vectors: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """Rows minus the vocabulary mean, scaled back to unit length (all-zero rows stay zero)."""
    shifted = np.asarray(vectors, dtype=np.float32) - mean
    norms = np.linalg.norm(shifted, axis=-1, keepdims=True)
    return (shifted / np.where(norms == 0, 1.0, norms)).astype(np.float32, copy=False)


def vocabulary_vectors(vocab: Vocabulary, embedder: Any
                       ) -> tuple[np.ndarray, np.ndarray, list[tuple[TagEntry, str]]]:
    """Centered vectors of every vocabulary phrase, their mean, the phrases (once per model and vocabulary)."""
    key = (str(embedder.model_id), vocab.fingerprint)
    with _cache_lock:
        if key not in _cache:
            pairs = vocab.texts()
            # a LazyEmbedder's cache keeps chat lines, which 2,000 one-off phrases would evict
            embed = getattr(embedder, "embed_uncached", embedder.embed)
            matrix = np.asarray(embed([text for _, text in pairs]), dtype=np.float32)
            mean = matrix.mean(axis=0)
            _cache[key] = (centered(matrix, mean), mean, pairs)
            log.info("embedded %d Danbooru vocabulary phrases with %s", len(pairs), key[0])
        return _cache[key]


def semantic_hits(toks: list[str], consumed: list[bool], vocab: Vocabulary, embedder: Any,
                  threshold: float | None = None) -> list[SemanticMatch]:
    """Best vocabulary tag per candidate segment, when its centered cosine reaches `threshold`.

    Without `threshold` the model's tuned one applies; a model without one gives no semantic tags.
    """
    if threshold is None:
        threshold = threshold_for(str(getattr(embedder, "model_id", "")))
    segments = candidate_segments(toks, consumed, vocab)
    if not segments or threshold is None:
        return []
    try:
        matrix, mean, pairs = vocabulary_vectors(vocab, embedder)
        vectors = centered(embedder.embed([" ".join(words) for _, words in segments]), mean)
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
