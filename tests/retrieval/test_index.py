"""Keeping entry vectors current: only changed entries are embedded, deleted ones lose their vectors."""

from __future__ import annotations

from typing import Any

import numpy as np

from neuralrp.db.connection import Database
from neuralrp.retrieval import vectors
from neuralrp.retrieval.embedder import HashEmbedder
from neuralrp.retrieval.index import (
    OWNER_TYPE,
    cached_entries,
    data_version,
    entry_text,
    index_world_entries,
    reindex_all,
    text_hash,
)
from neuralrp.retrieval.keys import KeyMasker
from tests.retrieval.helpers import add_entry, add_world, update_entry


class CountingEmbedder(HashEmbedder):
    """HashEmbedder that records every text it embeds."""

    def __init__(self, dim: int = 384) -> None:
        super().__init__(dim)
        self.seen: list[str] = []

    def embed(self, texts: list[str]) -> np.ndarray:
        self.seen.extend(texts)
        return super().embed(texts)


def test_entry_text_is_the_content_without_the_worlds_keys() -> None:
    masker = KeyMasker(['"Great Crash Landing"', "wyrm", "/re+gex/"])
    assert entry_text(" The GREAT-crash landing woke the Wyrms. ", "Title", masker) == "the woke the ."
    assert entry_text("", "The Wyrm Title", masker) == "the title"  # no content: the comment
    assert entry_text(" Plain   text ", "") == "plain text"
    assert entry_text("", "") == "" and entry_text("wyrm", "", masker) == ""


def test_only_changed_entries_are_reembedded(conn: Any, world: int) -> None:
    emb = CountingEmbedder()
    a = add_entry(conn, world, ["dragon"], "A great wyrm.", comment="Dragon")
    b = add_entry(conn, world, ['"Great Crash Landing"'], "The ship fell.")
    add_entry(conn, world, [], "")  # nothing to embed
    assert index_world_entries(conn, emb) == 2
    assert emb.seen == ["a great wyrm.", "the ship fell."]
    assert index_world_entries(conn, emb) == 0
    update_entry(conn, b, content="The colony ship fell from the sky.")
    update_entry(conn, a, keys=["dragon", "wyrm"])  # a new key of the world is masked out of every text
    update_entry(conn, a, order_value=5)  # not part of the text: no re-embed
    emb.seen.clear()
    assert index_world_entries(conn, emb) == 2
    assert sorted(emb.seen) == ["a great .", "the colony ship fell from the sky."]
    stored = vectors.hashes(conn, OWNER_TYPE, emb.model_id)
    assert stored[b] == text_hash("the colony ship fell from the sky.")
    assert conn.execute("SELECT count(*) AS n FROM embeddings").fetchone()["n"] == 2


def test_restricting_to_ids_and_worlds(conn: Any, world: int) -> None:
    emb = CountingEmbedder()
    other = add_world(conn, "Other")
    a = add_entry(conn, world, ["a"], "alpha")
    add_entry(conn, world, ["b"], "beta")
    c = add_entry(conn, other, ["c"], "gamma")
    assert index_world_entries(conn, emb, [a]) == 1
    assert index_world_entries(conn, emb, world_ids=[other]) == 1
    assert set(vectors.hashes(conn, OWNER_TYPE, emb.model_id)) == {a, c}
    assert index_world_entries(conn, emb, limit=0) == 0
    assert index_world_entries(conn, emb) == 1


def test_deleted_entries_lose_their_vectors(conn: Any, world: int) -> None:
    emb = CountingEmbedder()
    a = add_entry(conn, world, ["a"], "alpha")
    b = add_entry(conn, world, ["b"], "beta")
    index_world_entries(conn, emb)
    index_world_entries(conn, HashEmbedder(768))
    conn.execute("DELETE FROM world_entries WHERE id = ?", (a,))
    index_world_entries(conn, emb)
    assert set(vectors.hashes(conn, OWNER_TYPE, emb.model_id)) == {b}
    assert set(vectors.hashes(conn, OWNER_TYPE, "hash-768")) == {b}
    assert conn.execute("SELECT count(*) AS n FROM vec_768").fetchone()["n"] == 1


def test_models_are_indexed_separately(conn: Any, world: int) -> None:
    add_entry(conn, world, ["a"], "alpha")
    assert index_world_entries(conn, HashEmbedder(384)) == 1
    assert index_world_entries(conn, HashEmbedder(384, model_id="another")) == 1
    assert index_world_entries(conn, HashEmbedder(384)) == 0


def test_reindex_all(db: Database) -> None:
    with db.session() as conn:
        world = add_world(conn)
        for i in range(70):
            add_entry(conn, world, [f"key{i}"], f"content {i}")
    emb = CountingEmbedder()
    assert reindex_all(db, emb) == 70
    assert reindex_all(db, emb) == 0
    assert reindex_all(db, emb, force=True) == 70
    with db.session() as conn:
        assert conn.execute("SELECT count(*) AS n FROM vec_384").fetchone()["n"] == 70


def test_change_counters_move_on_every_write_and_refresh_the_caches(conn: Any, world: int) -> None:
    entry = add_entry(conn, world, ["dragon"], "Dragons sleep.")
    first = cached_entries(conn, [world])
    assert cached_entries(conn, [world]) is first  # nothing changed: the same objects come back
    versions = [data_version(conn, "world_entries")]
    update_entry(conn, entry, content="Dragons wake.")
    versions.append(data_version(conn, "world_entries"))
    assert [e.content for e in cached_entries(conn, [world])] == ["Dragons wake."]
    conn.execute("DELETE FROM world_entries WHERE id = ?", (entry,))
    versions.append(data_version(conn, "world_entries"))
    assert cached_entries(conn, [world]) == []
    assert [v[0] for v in versions] == [versions[0][0], versions[0][0] + 1, versions[0][0] + 2]
    assert len({v[1] for v in versions}) == 3  # a fresh random token each time
    before = data_version(conn, "embeddings")
    vectors.upsert(conn, OWNER_TYPE, 1, "m", "h", np.ones(384, dtype=np.float32))
    assert data_version(conn, "embeddings")[0] == before[0] + 1
