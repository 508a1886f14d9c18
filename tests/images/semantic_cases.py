"""The labeled set of the semantic Danbooru tag step (tests/fixtures/danbooru_semantic.tsv): split and figures.

Shared by tests/images/test_danbooru_matcher.py and bench/danbooru_semantic.py.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from neuralrp.images.danbooru import expand_plist, head_runs, phrase_scan
from neuralrp.images.danbooru_semantic import semantic_hits
from neuralrp.images.danbooru_vocab import Vocabulary, default_vocabulary, tokens

CASES_FILE = Path(__file__).resolve().parents[1] / "fixtures" / "danbooru_semantic.tsv"
EVERY_SEGMENT = -2.0  # below any cosine: semantic_hits returns each segment's nearest tag with its score
STEP = 0.01


@dataclass(frozen=True)
class Case:
    """A phrase and the tags it may give (none: it must give no semantic tag)."""

    phrase: str
    tags: frozenset[str]

    @property
    def positive(self) -> bool:
        """True when the phrase should give a tag."""
        return bool(self.tags)


@dataclass(frozen=True)
class Scored:
    """A case with the nearest tag of each of its candidate segments: (centered cosine, tag)."""

    case: Case
    hits: tuple[tuple[float, str], ...]


@dataclass(frozen=True)
class Figures:
    """What a threshold gives on a set of scored cases."""

    threshold: float
    precision: float  # right tags / tags given (1.0 when none is given)
    recall: float  # positives given a right tag / positives
    negatives_fired: int  # negatives given any tag
    negatives: int
    emitted: int


def load_cases(path: Path = CASES_FILE) -> list[Case]:
    """The labeled phrases; a bad line is named."""
    cases = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not raw.strip() or raw.startswith("#"):
            continue
        phrase, sep, tags = raw.partition("\t")
        if not sep or not phrase.strip() or not tags.strip():
            raise ValueError(f"{path.name} line {number}: expected 'phrase<TAB>tag|tag' or 'phrase<TAB>-'")
        wanted = frozenset() if tags.strip() == "-" else frozenset(t.strip() for t in tags.split("|"))
        cases.append(Case(phrase.strip(), wanted))
    return cases


def is_tuning(phrase: str) -> bool:
    """True for the tuning half (even sha256 of the phrase), False for the held-out half."""
    return int(hashlib.sha256(phrase.encode("utf-8")).hexdigest(), 16) % 2 == 0


def split(cases: list[Case]) -> tuple[list[Case], list[Case]]:
    """(tuning half, held-out half)."""
    return [c for c in cases if is_tuning(c.phrase)], [c for c in cases if not is_tuning(c.phrase)]


def score_cases(cases: list[Case], embedder: Any, vocab: Vocabulary | None = None) -> list[Scored]:
    """Each case through the alias matcher, then the nearest tag of every segment the aliases left."""
    vocab = vocab or default_vocabulary()
    out = []
    for case in cases:
        toks = tokens(expand_plist(case.phrase))
        consumed = [False] * len(toks)
        head_runs(toks, vocab, consumed)
        phrase_scan(toks, vocab, consumed)
        found = semantic_hits(toks, consumed, vocab, embedder, EVERY_SEGMENT)
        out.append(Scored(case, tuple((m.score, m.entry.tag) for m in found)))
    return out


def figures(scored: list[Scored], threshold: float) -> Figures:
    """Precision, recall and negatives that fired when tags below `threshold` are dropped."""
    emitted = right = found = fired = 0
    for item in scored:
        kept = [tag for score, tag in item.hits if score >= threshold]
        emitted += len(kept)
        right += sum(tag in item.case.tags for tag in kept)
        found += any(tag in item.case.tags for tag in kept)
        fired += bool(kept) and not item.case.positive
    positives = sum(item.case.positive for item in scored)
    return Figures(threshold, right / emitted if emitted else 1.0, found / positives if positives else 0.0,
                   fired, len(scored) - positives, emitted)


def choose_threshold(scored: list[Scored], target: float = 0.95) -> float | None:
    """The lowest STEP multiple from which precision stays >= target all the way up (None if never)."""
    chosen = None
    for step in range(100, -101, -1):  # from 1.00 down to -1.00
        threshold = round(step * STEP, 2)
        if figures(scored, threshold).precision < target:
            break
        chosen = threshold
    return chosen
