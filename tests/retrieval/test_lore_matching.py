"""Lore matching rules (pure): keys, ST entry fields, semantic scoring and ordering."""

from __future__ import annotations

import numpy as np
import pytest

from neuralrp.retrieval.lore import normalize, parse_key, probability_passes, select_lore, split_canon
from neuralrp.retrieval.types import LoreEntry
from neuralrp.retrieval.vectors import VectorError


def entry(id: int = 1, keys: tuple[str, ...] = ("dragon",), **fields: object) -> LoreEntry:
    return LoreEntry(id=id, world_id=1, keys=keys, **fields)  # type: ignore[arg-type]


def reason_for(key: str, text: str) -> str | None:
    hits = select_lore([entry(keys=(key,))], text, turn=1)
    return hits[0].reason if hits else None


KEY_CASES = [
    # quoted: exact phrase, case-insensitive, word boundaries, no plural, no paraphrase
    ('"Great Crash Landing"', "we survived the Great Crash Landing.", "exact_key"),
    ('"Great Crash Landing"', "the great crash landing, they said", "exact_key"),
    ('"Great Crash Landing"', "THE GREAT CRASH LANDING!", "exact_key"),
    ('"Great Crash Landing"', "the Great\nCrash   Landing", "exact_key"),
    ('"Great Crash Landing"', "the great-crash landing", "exact_key"),
    ('"Great Crash Landing"', "the greatcrash landing", None),
    ('"Great Crash Landing"', "great crash landings", None),
    ('"Great Crash Landing"', "when the starship fell from the sky", None),
    ('"Great Crash Landing"', "the crash landing was great", None),
    ('"Crash"', "it crashed", None),
    ('"Crash"', "(crash)", "exact_key"),
    ('"Mr. Smith"', "then mr. smith arrives", "exact_key"),
    ('"O\'Brien"', "I met O’Brien today", "exact_key"),
    # smart and other typographic quotes are quotes too
    ("“Great Crash Landing”", "the great crash landing", "exact_key"),
    ("“Great Crash Landing”", "the greatcrash landing", None),
    ("„Große Flut“", "die GROSSE FLUT kam", "exact_key"),
    ("«Tour Eiffel»", "sous la tour eiffel", "exact_key"),
    # unquoted: keyword with word boundaries and simple plurals
    ("dragon", "A Dragon appears", "keyword"),
    ("dragon", "two dragons fly", "keyword"),
    ("dragon", "the dragon's hoard", "keyword"),
    ("dragon", "a dragonfly", None),
    ("dragon", "snapdragon tea", None),
    ("city", "the cities burn", "keyword"),
    ("cities", "the city burns", "keyword"),
    ("princess", "three princesses", "keyword"),
    ("beasts", "a beast howls", "keyword"),
    ("magic", "a magical sword", None),
    ("ancient dragon", "an Ancient  Dragons nest", "keyword"),
    # unicode: NFKC, casefold, accents
    ("Café", "meet me at the cafe", "keyword"),
    ("cafe", "the CAFÉ is closed", "keyword"),
    ("Éldoria", "welcome to eldoria", "keyword"),
    ("straße", "HAUPTSTRASSE? no: die STRASSE", "keyword"),
    ("ＡＩＲ", "fresh air", "keyword"),
    ("Δράκος", "ο δρακος", "keyword"),
    # scripts without spaces: substring
    ("龙王", "东海龙王来了", "keyword"),
    ('"龙王"', "东海龙王来了", "exact_key"),
    ("龙王", "龙来了", None),
    ("ドラゴン", "巨大なドラゴンが", "keyword"),
    ("ガ", "カ", None),
    ("мой", "это мои вещи", None),
    ("мой", "это МОЙ дом", "keyword"),
    ("드래곤", "드래곤이 나타났다", "keyword"),
    # ST regex keys
    ("/drag(o|a)n/i", "DRAGAN", "keyword"),
    ("/Dragon/", "dragon", None),
    ("/[unclosed/", "see /[unclosed/ here", "keyword"),
    # blanks never match
    ("", "anything", None),
    ('""', "anything", None),
    ("   ", "anything", None),
]


@pytest.mark.parametrize(("key", "text", "expected"), KEY_CASES)
def test_key_matching(key: str, text: str, expected: str | None) -> None:
    assert reason_for(key, text) == expected


def test_parse_key_kinds() -> None:
    assert parse_key('"A B"').kind == "exact"
    assert parse_key("“A B”").kind == "exact"
    assert parse_key("a b").kind == "keyword"
    assert parse_key("/a+/i").kind == "regex"
    assert parse_key('"unbalanced').text == "unbalanced"


def test_normalize() -> None:
    assert normalize("  ＡＢ  Café’s — STRAßE ") == "ab cafe's - strasse"
    assert normalize("が") == "が"  # dakuten kept


def test_matched_keys_and_exact_wins() -> None:
    e = entry(keys=("crash", '"Great Crash"', "unrelated"))
    [hit] = select_lore([e], "the great crash!", turn=1)
    assert hit.reason == "exact_key"
    assert hit.matched == ("crash", '"Great Crash"')
    assert hit.score == 1.0


SELECTIVE = [  # text, {logic: selected}
    ("dragon fire ice", {0: True, 1: False, 2: False, 3: True}),
    ("dragon fire", {0: True, 1: True, 2: False, 3: False}),
    ("dragon", {0: False, 1: True, 2: True, 3: False}),
    ("fire ice", {0: False, 1: False, 2: False, 3: False}),
]


@pytest.mark.parametrize(("text", "by_logic"), SELECTIVE)
@pytest.mark.parametrize("logic", [0, 1, 2, 3])
def test_selective_logic(text: str, by_logic: dict[int, bool], logic: int) -> None:
    e = entry(selective=True, secondary_keys=("fire", "ice"), selective_logic=logic)
    assert bool(select_lore([e], text, turn=1)) is by_logic[logic]


def test_selective_off_or_without_secondary_keys_ignores_them() -> None:
    assert select_lore([entry(selective=False, secondary_keys=("fire",), selective_logic=3)], "dragon", turn=1)
    assert select_lore([entry(selective=True, secondary_keys=(), selective_logic=3)], "dragon", turn=1)


def test_disabled_never_and_constant_always() -> None:
    entries = [
        entry(1, enabled=False),
        entry(2, keys=(), constant=True),
        entry(3, constant=True, enabled=False),
        entry(4, keys=("elsewhere",)),
    ]
    hits = select_lore(entries, "a dragon", turn=1)
    assert [(h.entry.id, h.reason) for h in hits] == [(2, "constant")]


@pytest.mark.parametrize(
    ("probability", "use_probability", "selected"),
    [(0, True, False), (100, True, True), (0, False, True), (100, False, True)],
)
def test_probability_extremes(probability: int, use_probability: bool, selected: bool) -> None:
    e = entry(probability=probability, use_probability=use_probability)
    for turn in range(20):
        assert bool(select_lore([e], "dragon", turn=turn)) is selected
    c = entry(keys=(), constant=True, probability=probability, use_probability=use_probability)
    assert bool(select_lore([c], "", turn=3)) is selected


def test_probability_is_deterministic_per_entry_and_turn() -> None:
    e = entry(probability=50)
    rolls = [probability_passes(e, turn) for turn in range(400)]
    assert rolls == [probability_passes(e, turn) for turn in range(400)]
    assert 120 < sum(rolls) < 280
    assert [bool(select_lore([e], "dragon", turn=t)) for t in range(400)] == rolls


def test_order_breaks_ties_and_key_hits_come_first() -> None:
    entries = [entry(1, order=10), entry(2, order=300), entry(3, keys=("wyrm",), order=999), entry(4, order=100)]
    vectors = {3: np.array([1.0, 0.0], dtype=np.float32)}
    query = np.array([1.0, 0.0], dtype=np.float32)
    hits = select_lore(entries, "dragon", turn=1, query_vector=query, entry_vectors=vectors, threshold=0.5)
    assert [(h.entry.id, h.reason) for h in hits] == [(2, "keyword"), (4, "keyword"), (1, "keyword"), (3, "semantic")]


def test_semantic_selects_unquoted_entries_only() -> None:
    v = np.array([0.6, 0.8], dtype=np.float32)
    entries = [
        entry(1, keys=("ancient dragon",), order=1),
        entry(2, keys=('"Great Crash Landing"',)),
        entry(3, keys=("/regex/",)),
        entry(4, keys=("far",), order=5),
        entry(5, keys=("close",), order=9),
    ]
    vectors = {1: v, 2: v, 3: v, 4: np.array([0.0, 1.0], dtype=np.float32), 5: np.array([0.8, 0.6], np.float32)}
    query = np.array([[0.6, 0.8], [1.0, 0.0]], dtype=np.float32)  # best row counts
    hits = select_lore(entries, "nothing literal", turn=1, query_vector=query, entry_vectors=vectors, threshold=0.85)
    assert [(h.entry.id, h.reason, round(h.score, 3)) for h in hits] == [(1, "semantic", 1.0), (5, "semantic", 0.96)]


def test_semantic_respects_selective_logic_and_probability() -> None:
    v = np.array([1.0, 0.0], dtype=np.float32)
    blocked = entry(1, selective=True, secondary_keys=("baby",), selective_logic=2)
    never = entry(2, probability=0)
    kept = entry(3)
    hits = select_lore([blocked, never, kept], "a baby wyrm", turn=1, query_vector=v,
                       entry_vectors={1: v, 2: v, 3: v}, threshold=0.5)
    assert [h.entry.id for h in hits] == [3]


def test_similarities_variant_matches_vector_variant() -> None:
    entries = [entry(1), entry(2, keys=('"Quoted"',)), entry(3)]
    hits = select_lore(entries, "none", turn=1, similarities={1: 0.7, 2: 0.99, 3: 0.2, 99: 1.0}, threshold=0.5)
    assert [(h.entry.id, h.reason, h.score) for h in hits] == [(1, "semantic", 0.7)]


def test_dimension_mismatch_raises() -> None:
    with pytest.raises(VectorError, match="dimension mismatch"):
        select_lore([entry()], "x", turn=1, query_vector=np.ones(3, np.float32),
                    entry_vectors={1: np.ones(2, np.float32)})


def test_canon_law_is_returned_separately() -> None:
    law = entry(1, keys=("dragon",), canon_law=True, order=5)
    law2 = entry(2, keys=(), canon_law=True, order=50)
    off = entry(3, canon_law=True, enabled=False)
    plain = entry(4)
    assert [h.entry.id for h in select_lore([law, law2, off, plain], "dragon", turn=1)] == [4]
    ordinary, canon = split_canon([law, law2, off, plain])
    assert [e.id for e in ordinary] == [4]
    assert [e.id for e in canon] == [2, 1]


def test_index_is_reused_for_the_same_entry_objects() -> None:
    entries = [entry(i, keys=(f"key{i}",)) for i in range(50)]
    first = select_lore(entries, "key7 and key42", turn=1)
    again = select_lore(entries, "key8", turn=1)
    assert [h.entry.id for h in first] == [7, 42]
    assert [h.entry.id for h in again] == [8]
