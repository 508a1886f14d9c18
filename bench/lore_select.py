"""Timings of lore selection over 5,000 entries: in memory, DB-backed and with the real embedding model.

Run: .venv/bin/python bench/lore_select.py
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from neuralrp.db.connection import Database, transaction
from neuralrp.db.migrations import migrate
from neuralrp.retrieval import lore, vectors
from neuralrp.retrieval.embedder import HashEmbedder, OnnxMiniLM, l2_normalize, query_chunks
from neuralrp.retrieval.index import OWNER_TYPE, index_world_entries
from neuralrp.retrieval.lore import LoreIndex, load_entries, lore_for_turn, parse_key, select_lore
from neuralrp.retrieval.types import LoreEntry

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root, for the test helpers
from tests.retrieval.helpers import add_entry, add_world  # noqa: E402

N = 5000
DIM = 384
WORDS = [f"{a}{b}" for a in ("dra", "wy", "ka", "lo", "mi", "sha", "tor", "vel", "qua", "zen")
         for b in ("gon", "rm", "rak", "ria", "th", "dow", "ven", "nix", "rel", "mor", "sa", "tin")]
CJK = "龙王城堡森林魔法剑士公主骑士精灵"
CHAT = [
    "User: *I push open the heavy door of the tavern and shake the rain from my cloak.* Evening. Any rooms left?",
    "Mara: *The one-eyed innkeeper looks up from the bar.* One room, top of the stairs. Two silver, paid now.",
    "User: *I slide the coins across the counter.* I heard strange noises on the mountain road tonight.",
    "Mara: *She lowers her voice.* You're not the first. Folk say something old is waking under the peak.",
    "Kael: *The ranger by the fire doesn't look up from sharpening his blade.* Wolves. Nothing more.",
    "User: Wolves don't make the ground shake, Kael. *I sit down across from him.*",
    "Kael: *He finally meets my eyes.* Then pray it's not what the dwarves buried a thousand years ago.",
    "Mara: *She sets down a mug of ale.* Drink. Whatever it is, it won't come down here tonight.",
    "User: *I take a long sip and stare into the flames.* And if it does?",
    "Kael: Then we'll need more than steel. *He sheathes the blade.* The old wyrm stirs beneath the mountain.",
]


def make_entries(n: int = N, seed: int = 7) -> list[LoreEntry]:
    """Entries with a mix of keyword, quoted-phrase, CJK and regex keys, like a big imported lorebook."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        keys = [f"{rng.choice(WORDS)}{i}", f'"{rng.choice(WORDS)} {rng.choice(WORDS)} {i}"']
        if i % 10 == 0:
            keys.append(rng.choice(CJK) + rng.choice(CJK) + str(i))
        if i % 250 == 0:
            keys.append(f"/{rng.choice(WORDS)}{i}s?/i")
        out.append(LoreEntry(id=i + 1, world_id=1, keys=tuple(keys), secondary_keys=("storm",) if i % 7 else (),
                             selective=i % 3 == 0, content=f"entry {i} " * 30, order=rng.randint(0, 200),
                             probability=100 if i % 5 else 60, constant=i % 997 == 0))
    return out


def recent_text(entries: list[LoreEntry], seed: int = 3) -> str:
    """About 400 words of chat text mentioning a handful of keys."""
    rng = random.Random(seed)
    words = [rng.choice(WORDS) for _ in range(400)]
    for e in rng.sample(entries, 8):
        words.insert(rng.randrange(len(words)), e.keys[0])
    words.insert(5, entries[41].keys[1].strip('"'))
    lines = [" ".join(words[i : i + 40]) for i in range(0, len(words), 40)]
    return "\n".join(lines) + " " + entries[10].keys[2]


def best_ms(fn: Callable[[], Any], repeat: int = 20) -> float:
    """Best wall time of ``repeat`` runs, in milliseconds."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best * 1000


def pure_timings() -> dict[str, float]:
    """select_lore over 5,000 in-memory entries."""
    entries = make_entries()
    text = recent_text(entries)
    rng = np.random.default_rng(0)
    vecs = {e.id: v for e, v in zip(entries, l2_normalize(rng.standard_normal((N, DIM))), strict=True)}
    query = l2_normalize(rng.standard_normal((9, DIM)))
    sims = {i: float(s) for i, s in zip(vecs, rng.normal(0.15, 0.08, N), strict=True)}  # a few above 0.4
    hits = select_lore(entries, text, turn=1, query_vector=query, entry_vectors=vecs)
    assert any(h.reason == "exact_key" for h in hits) and any(h.reason == "keyword" for h in hits)
    def cold() -> None:
        parse_key.cache_clear()
        LoreIndex(entries)

    return {
        "build LoreIndex (keys parsed from scratch)": best_ms(cold, 3),
        "build LoreIndex (parsed keys cached)": best_ms(lambda: LoreIndex(entries), 5),
        "select_lore keys only": best_ms(lambda: select_lore(entries, text, turn=1)),
        "select_lore keys + numpy vectors (9 queries)": best_ms(
            lambda: select_lore(entries, text, turn=1, query_vector=query, entry_vectors=vecs)),
        "select_lore keys + precomputed similarities": best_ms(
            lambda: select_lore(entries, text, turn=1, similarities=sims)),
    }


def db_timings(path: Path) -> dict[str, float]:
    """DB-backed pieces: loading entries, vectors, KNN and the whole lore_for_turn."""
    db = Database(path)
    emb = HashEmbedder(DIM)
    entries = make_entries()
    with db.session() as conn:
        migrate(conn)
        world = add_world(conn)
        with transaction(conn):
            for e in entries:
                add_entry(conn, world, list(e.keys), e.content)
        start = time.perf_counter()
        index_world_entries(conn, emb)
        out = {"index 5,000 entries (HashEmbedder)": (time.perf_counter() - start) * 1000}
        text = recent_text(load_entries(conn, [world]))
        ids = {e.id for e in load_entries(conn, [world])}
        query = emb.embed(query_chunks(text))
        out["load_entries"] = best_ms(lambda: load_entries(conn, [world]), 5)
        out["vectors.get_many 5,000"] = best_ms(lambda: vectors.get_many(conn, OWNER_TYPE, ids, emb.model_id), 5)
        out["vectors.knn k=32 over 5,000 (1 query)"] = best_ms(
            lambda: vectors.knn(conn, OWNER_TYPE, emb.model_id, DIM, query[0], 32, ids), 5)
        out["lore_for_turn (numpy path, warm caches)"] = best_ms(
            lambda: lore_for_turn(conn, emb, [world], text, turn=1), 5)
        lore.KNN_ABOVE, saved = 0, lore.KNN_ABOVE
        try:
            out["lore_for_turn (KNN path, warm caches)"] = best_ms(
                lambda: lore_for_turn(conn, emb, [world], text, turn=1), 5)
        finally:
            lore.KNN_ABOVE = saved
    return out


def model_timings() -> dict[str, float]:
    """The real ONNX MiniLM embedding one turn's query lines (the last 8), and one short new line."""
    model = OnnxMiniLM()
    start = time.perf_counter()
    model.load()
    out = {"load ONNX MiniLM (tokenizer + session)": (time.perf_counter() - start) * 1000}
    text = "\n".join(CHAT)
    out[f"embed {len(query_chunks(text))} query chunks ({len(text)} chars of chat)"] = best_ms(
        lambda: model.embed(query_chunks(text)), 5)
    out["embed one short line"] = best_ms(lambda: model.embed(["the old wyrm stirs beneath the mountain"]), 5)
    return out


def report(timings: dict[str, float]) -> None:
    for name, ms in timings.items():
        print(f"  {name:<48} {ms:8.2f} ms")


def main() -> None:
    """Print every timing."""
    print(f"select_lore over {N} entries (best of runs):")
    report(pure_timings())
    with tempfile.TemporaryDirectory() as tmp:
        print(f"DB-backed lore over {N} entries:")
        report(db_timings(Path(tmp) / "perf.db"))
    print("Real embedding model per turn:")
    report(model_timings())


if __name__ == "__main__":
    main()
