"""The sqlite-vec store: one vector per (owner_type, owner_id, model), KNN equal to numpy."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from neuralrp.db.connection import transaction
from neuralrp.retrieval import vectors
from neuralrp.retrieval.embedder import l2_normalize
from neuralrp.retrieval.vectors import VectorError


def unit(rng: np.random.Generator, n: int, dim: int = 384) -> np.ndarray:
    return l2_normalize(rng.standard_normal((n, dim)))


def count(conn: Any, table: str) -> int:
    return int(conn.execute(f"SELECT count(*) AS n FROM {table}").fetchone()["n"])


def test_upsert_replaces_and_never_duplicates(conn: Any) -> None:
    rng = np.random.default_rng(1)
    a, b = unit(rng, 2)
    first = vectors.upsert(conn, "world_entry", 7, "m", "h1", a)
    second = vectors.upsert(conn, "world_entry", 7, "m", "h2", b)
    assert first == second
    assert count(conn, "embeddings") == 1 and count(conn, "vec_384") == 1
    stored = vectors.get_many(conn, "world_entry", [7], "m")
    np.testing.assert_allclose(stored[7], b, rtol=1e-6)
    assert vectors.hashes(conn, "world_entry", "m") == {7: "h2"}


def test_models_and_owner_types_do_not_mix(conn: Any) -> None:
    rng = np.random.default_rng(2)
    a, b, c = unit(rng, 3)
    vectors.upsert(conn, "world_entry", 1, "model-a", "h", a)
    vectors.upsert(conn, "world_entry", 1, "model-b", "h", b)
    vectors.upsert(conn, "character", 1, "model-a", "h", c)
    np.testing.assert_allclose(vectors.get_many(conn, "world_entry", None, "model-a")[1], a, rtol=1e-6)
    np.testing.assert_allclose(vectors.get_many(conn, "world_entry", None, "model-b")[1], b, rtol=1e-6)
    assert [o for o, _ in vectors.knn(conn, "world_entry", "model-b", 384, a, 10)] == [1]
    assert vectors.knn(conn, "world_entry", "model-c", 384, a, 10) == []
    assert vectors.get_many(conn, "world_entry", [1], "model-c") == {}


def test_dimension_errors(conn: Any) -> None:
    vectors.upsert(conn, "world_entry", 1, "m", "h", np.ones(384, np.float32))
    with pytest.raises(VectorError, match="stores 384-dim"):
        vectors.upsert(conn, "world_entry", 2, "m", "h", np.ones(768, np.float32))
    with pytest.raises(VectorError, match="no vector table for dimension 5"):
        vectors.upsert(conn, "world_entry", 3, "other", "h", np.ones(5, np.float32))
    with pytest.raises(VectorError, match="dimension mismatch"):
        vectors.knn(conn, "world_entry", "m", 384, np.ones(768, np.float32), 3)
    with pytest.raises(VectorError, match="stores 384-dim"):
        vectors.knn(conn, "world_entry", "m", 768, np.ones(768, np.float32), 3)
    with pytest.raises(VectorError, match="1-D"):
        vectors.upsert(conn, "world_entry", 1, "m", "h", np.ones((2, 384), np.float32))


@pytest.mark.parametrize("dim", [384, 768])
def test_knn_matches_numpy(conn: Any, dim: int) -> None:
    rng = np.random.default_rng(dim)
    data = unit(rng, 300, dim)
    for owner_id, vec in enumerate(data):
        vectors.upsert(conn, "world_entry", owner_id, f"m{dim}", "h", vec)
    vectors.upsert(conn, "other", 0, f"m{dim}", "h", data[0])  # same model, other owner type: ignored
    query = unit(rng, 1, dim)[0]
    sims = data @ query
    got = vectors.knn(conn, "world_entry", f"m{dim}", dim, query, 10)
    assert [o for o, _ in got] == list(np.argsort(-sims)[:10])
    np.testing.assert_allclose([s for _, s in got], np.sort(sims)[::-1][:10], atol=1e-5)
    subset = set(range(0, 300, 7))
    got = vectors.knn(conn, "world_entry", f"m{dim}", dim, query, 5, owner_ids=subset)
    want = sorted(subset, key=lambda i: -sims[i])[:5]
    assert [o for o, _ in got] == want
    assert vectors.knn(conn, "world_entry", f"m{dim}", dim, query, 5, owner_ids=set()) == []


def test_best_similarities_takes_the_best_query(conn: Any) -> None:
    e = np.eye(384, dtype=np.float32)
    for i in range(3):
        vectors.upsert(conn, "world_entry", i, "m", "h", e[i])
    best = vectors.best_similarities(conn, "world_entry", "m", e[[0, 1]], k=1)
    assert best == {0: pytest.approx(1.0), 1: pytest.approx(1.0)}


def test_stale_and_delete(conn: Any) -> None:
    v = np.ones(384, np.float32)
    for i in range(4):
        vectors.upsert(conn, "world_entry", i, "m", f"h{i}", v)
    vectors.upsert(conn, "world_entry", 0, "m2", "h0", v)
    assert vectors.stale(conn, "world_entry", "m", {0: "h0", 1: "changed", 9: "new"}) == {1, 9}
    assert vectors.delete(conn, "world_entry", [0, 1], model="m") == 2
    assert set(vectors.get_many(conn, "world_entry", None, "m")) == {2, 3}
    assert set(vectors.get_many(conn, "world_entry", None, "m2")) == {0}
    assert vectors.delete(conn, "world_entry", [0]) == 1
    assert vectors.delete_model(conn, "world_entry", "m") == 2
    assert count(conn, "embeddings") == 0 and count(conn, "vec_384") == 0


def test_get_many_chunks_large_id_lists(conn: Any) -> None:
    v = np.ones(384, np.float32)
    with transaction(conn):
        for i in range(1200):
            vectors.upsert(conn, "world_entry", i, "m", "h", v)
    assert len(vectors.get_many(conn, "world_entry", range(0, 1200, 1), "m")) == 1200
    assert len(vectors.get_many(conn, "world_entry", [5, 5, 6, 5000], "m")) == 2
