"""The real ONNX MiniLM model (loaded once per module): the quoted/unquoted must-show and basic sanity."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from neuralrp.retrieval.embedder import MINILM_DIM, MINILM_ID, LazyEmbedder, OnnxMiniLM
from neuralrp.retrieval.index import index_world_entries
from neuralrp.retrieval.lore import DEFAULT_THRESHOLD, lore_for_turn
from tests.retrieval.helpers import add_entry


@pytest.fixture(scope="module")
def minilm() -> Iterator[LazyEmbedder]:
    """The production embedder path: a LazyEmbedder around OnnxMiniLM, loaded in the background."""
    lazy = LazyEmbedder(OnnxMiniLM, model_id=MINILM_ID, dim=MINILM_DIM)
    lazy.warm_up()
    assert lazy.wait(120), lazy.error
    yield lazy


DRAGON = ("A great wyrm sleeps beneath the Ashen Mountain. Its breath melts stone and it has guarded the "
          "dwarven gold for a thousand years.")
CRASH = ("The colony ship Aurora fell from the sky three hundred years ago; the survivors founded New Haven in "
         "the wreckage.")
TAVERN = "The Rusty Flagon is a noisy tavern in the harbor district, run by a one-eyed innkeeper named Mara."


def test_paraphrase_pulls_unquoted_key_but_not_quoted_key(conn: Any, world: int, minilm: LazyEmbedder) -> None:
    dragon = add_entry(conn, world, ["ancient dragon"], DRAGON, comment="The Ancient Dragon")
    crash = add_entry(conn, world, ['"Great Crash Landing"'], CRASH, comment="The Great Crash Landing")
    add_entry(conn, world, ["tavern", "inn"], TAVERN, comment="The Rusty Flagon")
    index_world_entries(conn, minilm)

    def turn(text: str) -> list[tuple[int, str]]:
        hits = lore_for_turn(conn, minilm, [world], text, turn=1, threshold=DEFAULT_THRESHOLD, model="minilm")
        return [(h.entry.id, h.reason) for h in hits]

    assert turn("the old wyrm stirs beneath the mountain") == [(dragon, "semantic")]
    assert turn("when the starship fell from the sky") == []
    assert turn("we survived the Great Crash Landing.") == [(crash, "exact_key")]
    assert turn("hello there, how are you?") == []


def test_the_quote_is_what_blocks_the_paraphrase(conn: Any, world: int, minilm: LazyEmbedder) -> None:
    crash = add_entry(conn, world, ["Great Crash Landing"], CRASH, comment="The Great Crash Landing")
    index_world_entries(conn, minilm)
    hits = lore_for_turn(conn, minilm, [world], "when the starship fell from the sky", turn=1)
    assert [(h.entry.id, h.reason) for h in hits] == [(crash, "semantic")]
    assert DEFAULT_THRESHOLD <= hits[0].score < 1.0


def test_embeddings_are_normalized_deterministic_and_meaningful(minilm: LazyEmbedder) -> None:
    texts = ["a cat sits on the mat", "a feline rests on the rug", "stock prices fell sharply today"]
    batch = minilm.embed(texts)
    assert batch.shape == (3, MINILM_DIM) and batch.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(batch, axis=1), 1.0, rtol=1e-5)
    single = np.concatenate([minilm.embed([t]) for t in texts])
    np.testing.assert_allclose(batch, single, atol=1e-4)  # padding in a batch changes nothing
    assert batch[0] @ batch[1] > 0.5 > batch[0] @ batch[2]
