"""Precision and recall of the semantic Danbooru tag step per embedding model, on tests/fixtures/danbooru_semantic.tsv.

For each model: figures on the tuning half at a few thresholds, the threshold the selection rule picks there
(the lowest 0.01 step from which tuning precision stays >= 0.95), the one the product ships
(danbooru_semantic.THRESHOLDS), and the held-out half at the shipped threshold. Last, one line per model:
`danbooru_semantic model=ID precision=P recall=R` (held-out half, shipped threshold).

Run: HF_HUB_OFFLINE=1 .venv/bin/python bench/danbooru_semantic.py
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Any

from neuralrp.images.danbooru_semantic import threshold_for
from neuralrp.retrieval.embedder import E5Embedder, OnnxMiniLM

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root, for the test helpers
from tests.images.semantic_cases import Figures, choose_threshold, figures, load_cases, score_cases, split  # noqa: E402

SHOWN = (0.50, 0.55, 0.60, 0.65, 0.70, 0.75, 0.80, 0.85)


def line(name: str, f: Figures) -> str:
    """One row of figures."""
    return (f"  {name:<9} t={f.threshold:.2f}  precision={f.precision:.3f}  recall={f.recall:.3f}  "
            f"negatives fired={f.negatives_fired}/{f.negatives}  tags={f.emitted}")


def run_model(embedder: Any) -> Figures | None:
    """Print one model's tuning and held-out figures; the held-out figures at the shipped threshold."""
    tuning, held_out = split(load_cases())
    started = time.perf_counter()
    scored_tuning = score_cases(tuning, embedder)
    print(f"{embedder.model_id}: {len(tuning)} tuning / {len(held_out)} held-out phrases "
          f"(vocabulary and tuning half embedded in {time.perf_counter() - started:.1f} s)")
    for threshold in SHOWN:
        print(line("tuning", figures(scored_tuning, threshold)))
    chosen = choose_threshold(scored_tuning)
    shipped = threshold_for(embedder.model_id)
    print(f"  rule picks {chosen} on the tuning half; the product ships {shipped}")
    if shipped is None:
        return None
    result = figures(score_cases(held_out, embedder), shipped)
    print(line("tuning", figures(scored_tuning, shipped)))
    print(line("held-out", result))
    return result


def main() -> None:
    """Both bundled models, then the summary lines."""
    logging.basicConfig(level=logging.WARNING)
    results = [(e.model_id, run_model(e)) for e in (OnnxMiniLM(), E5Embedder())]
    for model_id, result in results:
        if result is None:
            print(f"danbooru_semantic model={model_id} untuned (no semantic tags)")
        else:
            print(f"danbooru_semantic model={model_id} precision={result.precision:.3f} recall={result.recall:.3f}")


if __name__ == "__main__":
    main()
