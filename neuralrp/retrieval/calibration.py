"""Semantic scores measured against ordinary chatter, so one threshold means the same for every entry and model.

A raw cosine says little on its own: some entries (a funeral custom, a ferry) sit close to everyday roleplay
lines, and models differ in range (multilingual-e5 puts unrelated texts at ~0.8, MiniLM at ~0.1). So each
entry gets a floor: the 95th percentile of its similarity to a fixed set of generic roleplay lines in several
languages (assets/lore_background.txt, embedded once per model). A chat line's score for an entry is how far
its cosine rises above that floor, divided by the model's scale; ``world.semantic_threshold`` (0.40 by
default) applies to that score. The scales put the threshold tuned on the dev split of bench/lore_bench.py at
0.40 for each model (margins 0.05 for e5, 0.27 for MiniLM; mpnet borrows MiniLM's, untuned).
"""

from __future__ import annotations

import logging
import threading
import weakref
from functools import lru_cache
from importlib import resources

import numpy as np

from neuralrp.retrieval.embedder import E5_ID, MINILM_ID, MPNET_ID, Embedder

log = logging.getLogger(__name__)

BACKGROUND_FILE = "lore_background.txt"
FLOOR_PERCENTILE = 95
TUNED_THRESHOLD = 0.40
SCALES = {E5_ID: 0.05 / TUNED_THRESHOLD, MINILM_ID: 0.27 / TUNED_THRESHOLD, MPNET_ID: 0.27 / TUNED_THRESHOLD}
_vectors: weakref.WeakKeyDictionary[Embedder, np.ndarray] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


@lru_cache(maxsize=1)
def background_lines() -> tuple[str, ...]:
    """The generic roleplay lines (comments and blank lines skipped)."""
    text = (resources.files("neuralrp") / "assets" / BACKGROUND_FILE).read_text(encoding="utf-8")
    return tuple(line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#"))


def scale(model_id: str) -> float:
    """The model's score unit (1.0 for models without a tuned one, e.g. the test double)."""
    return SCALES.get(model_id, 1.0)


def background(embedder: Embedder) -> np.ndarray:
    """The background lines embedded by this embedder (as chat lines), once per embedder object."""
    with _lock:
        cached = _vectors.get(embedder)
    if cached is not None:
        return cached
    embed = getattr(embedder, "embed_uncached", embedder.embed)  # keep the embedder's cache for chat lines
    vectors = np.asarray(embed(list(background_lines())), dtype=np.float32)
    with _lock:
        _vectors[embedder] = vectors
    log.info("lore: %d background lines embedded with %s", len(vectors), embedder.model_id)
    return vectors


def floors(matrix: np.ndarray, chatter: np.ndarray) -> np.ndarray:
    """Per row of an entry matrix: the FLOOR_PERCENTILE of its similarity to the background vectors."""
    if matrix.size == 0 or chatter.size == 0:
        return np.zeros(len(matrix), dtype=np.float32)
    return np.percentile(matrix @ chatter.T, FLOOR_PERCENTILE, axis=1).astype(np.float32)
