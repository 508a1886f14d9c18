"""Vectors in sqlite-vec, keyed by (owner_type, owner_id, model), and the world-entry reads indexing needs.

``embeddings`` holds one row per key (UNIQUE), and the vector itself lives in the vec0 table of its
dimension (``vec_384`` / ``vec_768``, cosine metric) under rowid = embeddings.id. Upserting the same key
replaces the vector in place, so there is never a duplicate. Every read filters on ``model``, so vectors
of different models never mix, and a vector whose length does not fit the model raises VectorError.
KNN uses vec0's ``MATCH ... AND k = ?`` restricted by ``rowid IN (...)`` to the wanted owners.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import numpy as np
import sqlite_vec

from neuralrp.clock import iso
from neuralrp.db.connection import Connection
from neuralrp.errors import NeuralRPError

TABLES = {384: "vec_384", 768: "vec_768"}
MAX_K = 4096  # sqlite-vec's limit for k in a KNN query
_CHUNK = 500


class VectorError(NeuralRPError):
    """A vector does not fit its table or model (wrong dimension, unsupported size)."""


def table_for(dim: int) -> str:
    """The vec0 table holding vectors of this dimension."""
    try:
        return TABLES[dim]
    except KeyError:
        raise VectorError(f"no vector table for dimension {dim}; supported: {sorted(TABLES)}") from None


def _as_vector(vector: Any, dim: int | None = None) -> np.ndarray:
    arr = np.asarray(vector, dtype=np.float32)
    if arr.ndim != 1:
        raise VectorError(f"expected a 1-D vector, got shape {arr.shape}")
    if dim is not None and arr.shape[0] != dim:
        raise VectorError(f"dimension mismatch: expected {dim}, got {arr.shape[0]}")
    return arr


def _blob(vector: np.ndarray) -> bytes:
    return sqlite_vec.serialize_float32(vector.tolist())


def model_dim(conn: Connection, model: str) -> int | None:
    """The dimension already stored for a model, or None if it has no vectors."""
    row = conn.execute("SELECT dim FROM embeddings WHERE model = ? LIMIT 1", (model,)).fetchone()
    return None if row is None else int(row["dim"])


def upsert(conn: Connection, owner_type: str, owner_id: int, model: str, content_hash: str, vector: Any) -> int:
    """Store (or replace) the vector for this key; returns the embeddings row id."""
    arr = _as_vector(vector)
    dim = arr.shape[0]
    table = table_for(dim)
    known = model_dim(conn, model)
    if known is not None and known != dim:
        raise VectorError(f"dimension mismatch: model {model!r} stores {known}-dim vectors, got {dim}")
    row = conn.execute(
        "INSERT INTO embeddings (owner_type, owner_id, model, dim, content_hash, created_at) VALUES (?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (owner_type, owner_id, model) DO UPDATE SET"
        " dim = excluded.dim, content_hash = excluded.content_hash, created_at = excluded.created_at"
        " RETURNING id",
        (owner_type, owner_id, model, dim, content_hash, iso()),
    ).fetchone()
    rowid = int(row["id"])
    conn.execute(f"DELETE FROM {table} WHERE rowid = ?", (rowid,))
    conn.execute(f"INSERT INTO {table} (rowid, embedding) VALUES (?, ?)", (rowid, _blob(arr)))
    return rowid


def _chunks(ids: list[int]) -> Iterable[list[int]]:
    for start in range(0, len(ids), _CHUNK):
        yield ids[start : start + _CHUNK]


def get_many(conn: Connection, owner_type: str, ids: Iterable[int] | None, model: str) -> dict[int, np.ndarray]:
    """Stored vectors of these owners (all owners of the type when ids is None) for one model."""
    dim = model_dim(conn, model)
    if dim is None:
        return {}
    table = table_for(dim)
    base = (
        f"SELECT e.owner_id AS owner_id, v.embedding AS embedding FROM embeddings e"
        f" JOIN {table} v ON v.rowid = e.id WHERE e.owner_type = ? AND e.model = ?"
    )
    out: dict[int, np.ndarray] = {}
    if ids is None:
        rows = conn.execute(base, (owner_type, model)).fetchall()
    else:
        rows = []
        for chunk in _chunks(sorted(set(ids))):
            sql = base + " AND e.owner_id IN (SELECT value FROM json_each(?))"
            rows.extend(conn.execute(sql, (owner_type, model, json.dumps(chunk))).fetchall())
    for row in rows:
        out[int(row["owner_id"])] = np.frombuffer(row["embedding"], dtype=np.float32)
    return out


def hashes(conn: Connection, owner_type: str, model: str) -> dict[int, str]:
    """owner_id -> content_hash of every stored vector of this type and model."""
    rows = conn.execute(
        "SELECT owner_id, content_hash FROM embeddings WHERE owner_type = ? AND model = ?", (owner_type, model)
    ).fetchall()
    return {int(r["owner_id"]): str(r["content_hash"]) for r in rows}


def stale(conn: Connection, owner_type: str, model: str, current: dict[int, str]) -> set[int]:
    """Owners whose content hash (``current``: owner_id -> hash) has no matching stored vector."""
    stored = hashes(conn, owner_type, model)
    return {owner_id for owner_id, digest in current.items() if stored.get(owner_id) != digest}


def delete(conn: Connection, owner_type: str, owner_ids: Iterable[int], model: str | None = None) -> int:
    """Remove the vectors of these owners (for one model, or all models); returns rows removed."""
    removed = 0
    for chunk in _chunks(sorted(set(owner_ids))):
        sql = "SELECT id, dim FROM embeddings WHERE owner_type = ? AND owner_id IN (SELECT value FROM json_each(?))"
        params: list[Any] = [owner_type, json.dumps(chunk)]
        if model is not None:
            sql += " AND model = ?"
            params.append(model)
        removed += _delete_rows(conn, conn.execute(sql, params).fetchall())
    return removed


def delete_model(conn: Connection, owner_type: str, model: str) -> int:
    """Remove every vector of one owner type and model; returns rows removed."""
    rows = conn.execute("SELECT id, dim FROM embeddings WHERE owner_type = ? AND model = ?", (owner_type, model))
    return _delete_rows(conn, rows.fetchall())


def _delete_rows(conn: Connection, rows: list[dict[str, Any]]) -> int:
    for row in rows:
        if int(row["dim"]) in TABLES:
            conn.execute(f"DELETE FROM {TABLES[int(row['dim'])]} WHERE rowid = ?", (row["id"],))
        conn.execute("DELETE FROM embeddings WHERE id = ?", (row["id"],))
    return len(rows)


def knn(
    conn: Connection,
    owner_type: str,
    model: str,
    dim: int,
    query: Any,
    k: int,
    owner_ids: set[int] | None = None,
) -> list[tuple[int, float]]:
    """The k nearest stored vectors to ``query`` as (owner_id, cosine similarity), most similar first."""
    arr = _as_vector(query, dim)
    table = table_for(dim)
    known = model_dim(conn, model)
    if known is not None and known != dim:
        raise VectorError(f"dimension mismatch: model {model!r} stores {known}-dim vectors, query has {dim}")
    if k <= 0 or known is None or (owner_ids is not None and not owner_ids):
        return []
    candidates = "SELECT id FROM embeddings WHERE owner_type = ? AND model = ?"
    params: list[Any] = [owner_type, model]
    if owner_ids is not None:
        candidates += " AND owner_id IN (SELECT value FROM json_each(?))"
        params.append(json.dumps(sorted(owner_ids)))
    sql = (
        f"SELECT e.owner_id AS owner_id, m.distance AS distance FROM"
        f" (SELECT rowid, distance FROM {table} WHERE embedding MATCH ? AND k = ? AND rowid IN ({candidates})) m"
        f" JOIN embeddings e ON e.id = m.rowid ORDER BY m.distance"
    )
    rows = conn.execute(sql, [_blob(arr), min(k, MAX_K), *params]).fetchall()
    return [(int(r["owner_id"]), max(-1.0, min(1.0, 1.0 - float(r["distance"])))) for r in rows]


def best_similarities(
    conn: Connection, owner_type: str, model: str, queries: Any, *, k: int, owner_ids: set[int] | None = None
) -> dict[int, float]:
    """Best similarity per owner over several query vectors, each asking KNN for its k nearest."""
    best: dict[int, float] = {}
    for row in np.atleast_2d(np.asarray(queries, dtype=np.float32)):
        for owner_id, sim in knn(conn, owner_type, model, row.shape[0], row, k, owner_ids):
            best[owner_id] = max(sim, best.get(owner_id, -1.0))
    return best


# ---- world entries as retrieval reads them (retrieval sits beside library, so it cannot use library.worlds)

ENTRY_COLUMNS = ("id, world_id, keys_json, secondary_keys_json, content, comment, constant, selective, "
                 "selective_logic, disabled, order_value, probability, use_probability, is_canon_law")


def entry_rows(conn: Connection, world_ids: list[int]) -> list[dict[str, Any]]:
    """Every entry row (ENTRY_COLUMNS) of these worlds, by id."""
    return conn.execute(
        f"SELECT {ENTRY_COLUMNS} FROM world_entries WHERE world_id IN (SELECT value FROM json_each(?)) ORDER BY id",
        (json.dumps(world_ids),),
    ).fetchall()


def entry_text_rows(conn: Connection, entry_ids: Iterable[int] | None,
                    world_ids: Iterable[int] | None) -> list[dict[str, Any]]:
    """id, world_id, keys_json, comment and content of entries (all, or only these ids and/or worlds), by id."""
    sql = "SELECT id, world_id, keys_json, comment, content FROM world_entries"
    clauses, params = [], []
    if entry_ids is not None:
        clauses.append("id IN (SELECT value FROM json_each(?))")
        params.append(json.dumps(sorted(set(entry_ids))))
    if world_ids is not None:
        clauses.append("world_id IN (SELECT value FROM json_each(?))")
        params.append(json.dumps(sorted(set(world_ids))))
    if clauses:
        sql += " WHERE " + " AND ".join(clauses)
    return conn.execute(sql + " ORDER BY id", params).fetchall()


def world_keys(conn: Connection, world_ids: Iterable[int]) -> dict[int, list[str]]:
    """World id -> the primary keys of all its entries."""
    rows = conn.execute("SELECT world_id, keys_json FROM world_entries WHERE world_id IN (SELECT value FROM"
                        " json_each(?))", (json.dumps(sorted(set(world_ids))),)).fetchall()
    out: dict[int, list[str]] = {int(w): [] for w in world_ids}
    for row in rows:
        out[int(row["world_id"])].extend(str(k) for k in json.loads(row["keys_json"] or "[]"))
    return out


def orphan_entry_ids(conn: Connection, owner_type: str) -> list[int]:
    """Owners of this type with stored vectors whose world entry no longer exists."""
    rows = conn.execute(
        "SELECT DISTINCT owner_id FROM embeddings WHERE owner_type = ?"
        " AND owner_id NOT IN (SELECT id FROM world_entries)", (owner_type,),
    ).fetchall()
    return [int(r["owner_id"]) for r in rows]
