"""lore_for_turn against a real DB: loading, inline/background indexing, fallbacks, the KNN path."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from neuralrp.retrieval import index as index_mod
from neuralrp.retrieval import lore
from neuralrp.retrieval.embedder import MINILM_ID, HashEmbedder, LazyEmbedder, query_chunks
from neuralrp.retrieval.index import index_world_entries, wait_for_jobs
from neuralrp.retrieval.lore import canon_law_entries, load_entries, lore_for_turn
from neuralrp.retrieval.types import LoreEntry
from tests.retrieval.helpers import add_entry, add_world, update_entry

WYRM = "the old wyrm stirs beneath the mountain"


@pytest.fixture
def entries(conn: Any, world: int) -> dict[str, int]:
    """A small world: a semantic-eligible dragon, a quoted-only crash, a keyword tavern, canon law."""
    return {
        "dragon": add_entry(conn, world, ["ancient dragon"], "A great wyrm sleeps beneath the mountain."),
        "crash": add_entry(conn, world, ['"Great Crash Landing"'], "The old wyrm ship fell beneath the mountain."),
        "tavern": add_entry(conn, world, ["tavern"], "The Rusty Flagon.", order_value=50),
        "law": add_entry(conn, world, ["magic"], "Magic always has a price.", is_canon_law=1),
    }


def ids(hits: list[Any]) -> list[tuple[int, str]]:
    return [(h.entry.id, h.reason) for h in hits]


def test_load_entries_maps_columns(conn: Any, world: int) -> None:
    other = add_world(conn, "Other")
    e = add_entry(conn, world, ["a", '"b c"'], "text", comment="memo", constant=1, selective=1, selective_logic=3,
                  secondary_keys=["x"], disabled=1, order_value=7, probability=40, use_probability=0, is_canon_law=1)
    add_entry(conn, other, ["z"], "elsewhere")
    assert load_entries(conn, [world]) == [LoreEntry(
        id=e, world_id=world, keys=("a", '"b c"'), secondary_keys=("x",), content="text", comment="memo",
        constant=True, selective=True, selective_logic=3, enabled=False, order=7.0, probability=40.0,
        use_probability=False, canon_law=True)]
    assert len(load_entries(conn, [world, other])) == 2
    assert load_entries(conn, []) == []


def test_semantic_and_quoted_rules_end_to_end(conn: Any, world: int, entries: dict[str, int]) -> None:
    emb = HashEmbedder(384)
    hits = lore_for_turn(conn, emb, [world], WYRM, turn=1, threshold=0.2)
    assert ids(hits) == [(entries["dragon"], "semantic")]  # the crash entry shares words but is quoted-only
    hits = lore_for_turn(conn, emb, [world], "We survived the Great Crash Landing at the tavern.", turn=2,
                         threshold=0.2)
    assert ids(hits) == [(entries["crash"], "exact_key"), (entries["tavern"], "keyword")]
    assert canon_law_entries(conn, [world])[0].id == entries["law"]
    assert lore_for_turn(conn, emb, [], WYRM, turn=1) == []


def test_edits_are_seen_on_the_next_turn(conn: Any, world: int, entries: dict[str, int]) -> None:
    emb = HashEmbedder(384)
    assert lore_for_turn(conn, emb, [world], "a quiet inn", turn=1) == []
    update_entry(conn, entries["tavern"], keys=["tavern", "inn"])
    assert ids(lore_for_turn(conn, emb, [world], "a quiet inn", turn=2)) == [(entries["tavern"], "keyword")]
    conn.execute("DELETE FROM world_entries WHERE id = ?", (entries["tavern"],))
    assert lore_for_turn(conn, emb, [world], "a quiet inn", turn=3) == []


def test_many_stale_entries_are_indexed_in_background(
    conn: Any, world: int, entries: dict[str, int], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(index_mod, "INLINE_INDEX", 1)
    emb = HashEmbedder(384)
    with caplog.at_level(logging.INFO, logger="neuralrp.retrieval.index"):
        first = lore_for_turn(conn, emb, [world], WYRM, turn=1, threshold=0.2)
    assert "indexing them in the background" in caplog.text
    wait_for_jobs(10)
    assert first == [] or ids(first) == [(entries["dragon"], "semantic")]  # the job may already be done
    assert ids(lore_for_turn(conn, emb, [world], WYRM, turn=2, threshold=0.2)) == [(entries["dragon"], "semantic")]


def test_embedder_not_ready_falls_back_to_keywords(
    conn: Any, world: int, entries: dict[str, int], caplog: pytest.LogCaptureFixture
) -> None:
    import threading

    gate = threading.Event()

    def slow_factory() -> HashEmbedder:
        gate.wait(10)
        return HashEmbedder(384)

    lazy = LazyEmbedder(slow_factory, model_id="hash-384", dim=384)
    lazy.warm_up()
    text = WYRM + " near the tavern"
    with caplog.at_level(logging.INFO, logger="neuralrp.retrieval.lore"):
        hits = lore_for_turn(conn, lazy, [world], text, turn=1, threshold=0.2)
    assert ids(hits) == [(entries["tavern"], "keyword")]
    assert "not ready" in caplog.text
    gate.set()
    assert lazy.wait(5)
    hits = lore_for_turn(conn, lazy, [world], text, turn=2, threshold=0.2)
    assert ids(hits) == [(entries["tavern"], "keyword"), (entries["dragon"], "semantic")]


def test_model_mismatch_never_mixes_vectors(
    conn: Any, world: int, entries: dict[str, int], caplog: pytest.LogCaptureFixture
) -> None:
    emb = HashEmbedder(384)
    with caplog.at_level(logging.WARNING, logger="neuralrp.retrieval.lore"):
        assert lore_for_turn(conn, emb, [world], WYRM, turn=1, threshold=0.2, model="mpnet") == []
    assert "exact/keyword matching only" in caplog.text
    named = HashEmbedder(384, model_id=MINILM_ID)
    hits = lore_for_turn(conn, named, [world], WYRM, turn=1, threshold=0.2, model="minilm")
    assert ids(hits) == [(entries["dragon"], "semantic")]


def test_knn_path_gives_the_same_hits(
    conn: Any, world: int, entries: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    emb = HashEmbedder(384)
    for i in range(40):
        add_entry(conn, world, [f"filler{i}"], f"w{i}a w{i}b w{i}c")
    index_world_entries(conn, emb)
    text = WYRM + "\nw7a w7b w3a"
    dense = lore_for_turn(conn, emb, [world], text, turn=1, threshold=0.2)
    monkeypatch.setattr(lore, "KNN_ABOVE", 0)
    sparse = lore_for_turn(conn, emb, [world], text, turn=1, threshold=0.2)
    assert len(dense) > 1 and ids(sparse) == ids(dense)
    assert (entries["dragon"], "semantic") in ids(dense)
    assert [h.score for h in sparse] == pytest.approx([h.score for h in dense], abs=1e-5)


def test_query_chunks() -> None:
    assert query_chunks("") == []
    assert query_chunks("one line") == ["one line"]
    text = "\n".join(f"line {i}" for i in range(12))
    assert query_chunks(text, chunks=3) == ["line 9", "line 10", "line 11"]
    assert query_chunks("  a  \n\n b\n") == ["a", "b"]
