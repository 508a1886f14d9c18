"""Labeled lore-selection benchmark: recall, precision and violations per kind, on a world of our own.

The world (bench/lore_cases/world.json, SillyTavern World Info, 52 entries of an invented coast) is imported
through the library like any user file, its entries are embedded with the configured model, and each case's
last messages go through the same selection a reply uses (``lore_for_turn`` with the engine's scan window,
threshold and hit limit). Cases (bench/lore_cases/cases.json) name the entries that must be selected
(``expect``), must never be (``forbid``: disabled, canon law, quoted keys met only by a paraphrase, failed
selective logic, look-alike words) and may be (``allow``: arguably relevant, neither counted nor penalized).

Recall = expected entries selected / expected. Precision = expected selected / selected (allowed ones left
out). A violation is a forbidden entry selected; it also counts against precision.

Split: within each kind, cases are ordered by the sha256 of their id and every third one (0, 3, 6, ...) is
held out. That rule was fixed before any tuning; parameters (the background floor, the margins, dropping the
mean-of-lines query, masking keys out of entry texts) were chosen on the dev split only, and per-case output is
never printed for held-out cases. The last line printed is the held-out split's.

Run: .venv/bin/python bench/lore_bench.py [--model minilm|e5] [--split dev|heldout|both] [--keywords-only]
     [--misses]   (--misses lists the dev cases that went wrong)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from neuralrp.config import load_settings  # noqa: E402
from neuralrp.context.engine import MAX_LORE_HITS, recent_text  # noqa: E402
from neuralrp.db.connection import Database  # noqa: E402
from neuralrp.db.migrations import migrate  # noqa: E402
from neuralrp.library.service import Library  # noqa: E402
from neuralrp.retrieval.embedder import make_embedder  # noqa: E402
from neuralrp.retrieval.index import reindex_all  # noqa: E402
from neuralrp.retrieval.lore import load_entries, lore_for_turn  # noqa: E402

CASES = Path(__file__).resolve().parent / "lore_cases"


def _digest(case_id: str) -> str:
    return hashlib.sha256(case_id.encode()).hexdigest()


def held_out_ids(cases: list[dict[str, Any]]) -> set[str]:
    """The fixed split rule: within each kind, cases ordered by sha256 of their id; every third is held out."""
    by_kind: dict[str, list[str]] = defaultdict(list)
    for case in cases:
        by_kind[case["kind"]].append(case["id"])
    return {cid for ids in by_kind.values() for i, cid in enumerate(sorted(ids, key=_digest)) if i % 3 == 0}


@dataclass
class Tally:
    """Counts for one kind (or all)."""

    expected: int = 0
    found: int = 0
    selected: int = 0
    violations: int = 0
    cases: int = 0
    seconds: list[float] = field(default_factory=list)

    def add(self, other: Tally) -> None:
        """Add another tally's counts."""
        self.expected += other.expected
        self.found += other.found
        self.selected += other.selected
        self.violations += other.violations
        self.cases += other.cases
        self.seconds += other.seconds

    def recall(self) -> float:
        """Expected entries found / expected (1.0 when nothing was expected)."""
        return self.found / self.expected if self.expected else 1.0

    def precision(self) -> float:
        """Expected entries found / counted selections (1.0 when nothing was selected)."""
        return self.found / self.selected if self.selected else 1.0


def score_case(case: dict[str, Any], picked: set[str]) -> tuple[Tally, list[str]]:
    """The tally of one case and what went wrong in it."""
    expect, forbid, allow = set(case["expect"]), set(case["forbid"]), set(case["allow"])
    counted = picked - allow
    tally = Tally(expected=len(expect), found=len(expect & picked), selected=len(counted),
                  violations=len(forbid & picked), cases=1)
    wrong = [f"missed {n}" for n in sorted(expect - picked)]
    wrong += [f"VIOLATION {n}" for n in sorted(forbid & picked)]
    wrong += [f"extra {n}" for n in sorted(counted - expect - forbid)]
    return tally, wrong


def setup(root: Path, model: str) -> tuple[Database, Any, int, dict[int, str], Any]:
    """A fresh data dir with the bench world imported and embedded by `model`."""
    settings = load_settings(overrides={"paths": {"data_dir": str(root)}, "embeddings": {"model": model}},
                             environ={})
    db = Database(root / "neuralrp.db")
    with db.session() as conn:
        migrate(conn)
    library = Library(db, root)
    world_id = library.import_world((CASES / "world.json").read_bytes(), "world.json").id
    assert world_id is not None
    with db.session() as conn:
        names = {e.id: e.comment for e in load_entries(conn, [world_id])}
    embedder = make_embedder(settings)
    started = time.perf_counter()
    embedder.wait()
    reindex_all(db, embedder)
    print(f"model {embedder.model_id}: loaded and {len(names)} entries embedded in "
          f"{time.perf_counter() - started:.1f} s", file=sys.stderr)
    return db, embedder, world_id, names, settings


def run(args: argparse.Namespace) -> dict[str, dict[str, Tally]]:
    """Select lore for every case; tallies per split and kind."""
    cases = json.loads((CASES / "cases.json").read_text(encoding="utf-8"))["cases"]
    out: dict[str, dict[str, Tally]] = {"dev": defaultdict(Tally), "heldout": defaultdict(Tally)}
    held = held_out_ids(cases)
    with tempfile.TemporaryDirectory() as tmp:
        db, embedder, world_id, names, settings = setup(Path(tmp), args.model)
        threshold = 2.0 if args.keywords_only else settings.world.semantic_threshold
        with db.session() as conn:
            for case in cases:
                split = "heldout" if case["id"] in held else "dev"
                if args.split not in ("both", split):
                    continue
                text = recent_text(case["messages"])
                started = time.perf_counter()
                hits = lore_for_turn(conn, embedder, [world_id], text, turn=1, threshold=threshold,
                                     model=settings.embeddings.model, limit=MAX_LORE_HITS)
                elapsed = time.perf_counter() - started
                picked = {names[h.entry.id] for h in hits}
                tally, wrong = score_case(case, picked)
                tally.seconds.append(elapsed)
                out[split][case["kind"]].add(tally)
                if args.misses and split == "dev" and wrong:
                    detail = ", ".join(f"{names[h.entry.id]}:{h.reason}:{h.score:.2f}" for h in hits)
                    print(f"  {case['id']}: {'; '.join(wrong)}  [{detail}]", file=sys.stderr)
    return out


def report(split: str, kinds: dict[str, Tally]) -> None:
    """Per-kind table and the summary line of one split."""
    total = Tally()
    print(f"{split} split:")
    print(f"  {'kind':<18} {'cases':>5} {'recall':>7} {'precision':>9} {'violations':>10}")
    for kind in sorted(kinds):
        t = kinds[kind]
        total.add(t)
        print(f"  {kind:<18} {t.cases:>5} {t.recall():>7.3f} {t.precision():>9.3f} {t.violations:>10}")
    times = sorted(total.seconds)
    p50 = times[len(times) // 2] * 1000 if times else 0.0
    print(f"  {'all':<18} {total.cases:>5} {total.recall():>7.3f} {total.precision():>9.3f} {total.violations:>10}"
          f"   (selection p50 {p50:.1f} ms)")
    print(f"lore recall={total.recall():.3f} precision={total.precision():.3f} violations={total.violations}"
          f" split={split}")


def main() -> None:
    """Parse arguments, run, print (held-out split last)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="minilm", help="embeddings.model setting to use")
    parser.add_argument("--split", choices=("dev", "heldout", "both"), default="both")
    parser.add_argument("--keywords-only", action="store_true", help="no semantic matching (SillyTavern-like)")
    parser.add_argument("--misses", action="store_true", help="list what went wrong in dev cases")
    args = parser.parse_args()
    results = run(args)
    for split in ("dev", "heldout"):
        if args.split in ("both", split):
            report(split, results[split])


if __name__ == "__main__":
    main()
