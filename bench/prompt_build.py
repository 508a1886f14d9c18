"""Per-turn prompt build time, prompt size vs a naive prompt, and prefix stability.

Setup: 8 characters (the fixture cards plus renamed copies), a 5,000-entry world, a chat of
10,000 messages (5,000 turns) mentioning places and characters. Each measured turn appends a
new user message and builds the next reply's prompt (as the reply would: DB load, lore
retrieval, build), without the LLM. Run with embeddings excluded (keyword/exact lore only)
and included (e5 by default, or --model minilm; entries indexed first). Then, at turn 500 of a
chat whose older turns were folded into summaries, compares our prompt with a naive one (every card in full,
all keyword-matched lore, as much history as fits) and measures the shared prefix between two
consecutive ordinary turns.
Run: .venv/bin/python bench/prompt_build.py [--turns 60] [--skip-embeddings] [--model e5|minilm]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from neuralrp.chats import store
from neuralrp.chats.importer import import_paths
from neuralrp.config import load_settings
from neuralrp.context.engine import PromptEngine, count_tokens
from neuralrp.context.text import card_text
from neuralrp.db.connection import Database, transaction
from neuralrp.db.migrations import migrate
from neuralrp.library.characters import get_character
from neuralrp.library.service import Library
from neuralrp.retrieval.embedder import make_embedder
from neuralrp.retrieval.index import reindex_all
from neuralrp.retrieval.lore import load_entries, select_lore

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "cards"
BUDGET = 8192 - 350
NAMES = ["Seraphina", "Sakana", "Aqua", "Chiharu Yamada", "爱", "Borin", "Cyra", "Dax"]


def setup_library(root: Path) -> tuple[Database, Library, list[int]]:
    """DB with 8 characters and a 5,000-entry world."""
    db = Database(root / "neuralrp.db")
    with db.session() as conn:
        migrate(conn)
    library = Library(db, root)
    import_paths(library, [FIXTURES])
    with db.session() as conn:
        row = conn.execute("SELECT card_json FROM characters WHERE name = 'Seraphina'").fetchone()
    base = json.loads(row["card_json"])
    for name in NAMES[5:]:
        card = json.loads(json.dumps(base))
        card["data"]["name"] = name
        card["data"]["description"] = card["data"]["description"].replace("Seraphina", name)
        library.import_card(json.dumps(card).encode(), f"{name}.json")
    with db.session() as conn:
        ids = [r["id"] for r in conn.execute("SELECT id FROM characters WHERE scope_chat_id IS NULL ORDER BY id")]
    return db, library, ids[:8]


WORDS = ("salt copper wine silk iron amber wool pearls spices glass horses books maps bells lanterns "
         "river desert forest harbour mountain marsh tundra canyon island valley ruins temple fortress "
         "monks smugglers knights witches pirates nomads scholars miners farmers priests dragons wolves").split()


def entry_text(i: int, rng: random.Random) -> str:
    """Varied lore text, so similarities spread like a real world's."""
    a, b, c, d = rng.sample(WORDS, 4)
    return (f"Place{i} is a {a}-trading town near the {b}, ruled by {c}. Travellers remember its {d}, "
            f"its festivals and a long feud with place{(i * 7) % 5000}.")


def make_world(library: Library, count: int) -> int:
    """A synthetic world: unquoted place keys and quoted landmark phrases, varied content."""
    rng = random.Random(11)
    entries = {str(i): {"uid": i, "key": [f"place{i}", f'"Landmark {i}"'], "keysecondary": [], "comment": "",
                        "content": entry_text(i, rng), "constant": False, "selective": False, "order": 100,
                        "position": 0, "disable": False}
               for i in range(count)}
    result = library.import_world(json.dumps({"entries": entries}).encode(), "bench_world.json")
    assert result.id is not None
    return result.id


def make_chat(db: Database, cast: list[int], world_id: int, turns: int, rng: random.Random) -> int:
    """A chat with 2 messages per turn, all cast active since turn 1."""
    with db.session() as conn, transaction(conn):
        chat_id = store.insert_chat(conn, title="bench", mode="auto", persona={"name": "Ari"})
        for cid in cast:
            store.add_cast_member(conn, chat_id, cid)
        conn.execute("UPDATE chat_cast SET first_turn = 1, reset_turn = 1, last_present_turn = ? WHERE chat_id = ?",
                     (turns, chat_id))
        conn.execute("INSERT INTO chat_worlds (chat_id, world_id) VALUES (?, ?)", (chat_id, world_id))
        for turn in range(1, turns + 1):
            add_turn(conn, chat_id, turn, cast, rng)
        conn.execute("UPDATE chats SET turn = ? WHERE id = ?", (turns, chat_id))
    return chat_id


def add_turn(conn: Any, chat_id: int, turn: int, cast: list[int], rng: random.Random) -> None:
    """One user message and one reply."""
    place = rng.randrange(5000)
    speaker = rng.choice(cast)
    store.insert_message(conn, chat_id, role="user", turn=turn,
                         content=f"We walk toward place{place}, talking about the road and the weather. " * 2)
    store.insert_message(conn, chat_id, role="assistant", turn=turn, character_id=speaker, speaker_name="x",
                         content="The path winds on; someone laughs, the wind rises and the day goes on. " * 3)


def timed_turns(engine: PromptEngine, db: Database, chat_id: int, cast: list[int], n: int) -> list[float]:
    """A reply, then a user message; time the next prompt's build in ms (after 3 warm-up turns).

    After each reply the app embeds the chat's newest lines in the background (PromptEngine.after_reply)
    while the user reads and types; that step runs here too, untimed, as it is not part of the turn.
    The app builds a reply's prompt on a DB worker thread whose connection stays open (PromptEngine.build);
    the timed builds here share one open connection the same way.
    """
    with db.session() as conn:
        return _timed_on(conn, engine, db, chat_id, cast, n)


def _timed_on(held: Any, engine: PromptEngine, db: Database, chat_id: int, cast: list[int], n: int) -> list[float]:
    rng = random.Random(7)
    times = []
    for _ in range(n + 3):
        with db.session() as conn, transaction(conn):
            turn = store.bump_turn(conn, chat_id)
            speaker_id = rng.choice(cast)
            store.insert_message(conn, chat_id, role="assistant", turn=turn - 1, character_id=speaker_id,
                                 speaker_name="x", content=reply_text(rng))
        engine.warm_sync(chat_id)
        with db.session() as conn, transaction(conn):
            text = f"Tell me about place{rng.randrange(5000)} and the Landmark {rng.randrange(5000)}."
            store.insert_message(conn, chat_id, role="user", turn=turn, content=text)
            speaker = get_character(conn, rng.choice(cast))
        t0 = time.perf_counter()
        engine.build_on(held, chat_id, speaker, budget=BUDGET, persist=True)
        times.append((time.perf_counter() - t0) * 1000)
    print(f"  first (cold caches: key index, entry vectors) turn: {times[0]:.0f} ms")
    return times[3:]


def reply_text(rng: random.Random) -> str:
    """A three-paragraph reply naming a place, different every turn."""
    a, b, c = rng.sample(WORDS, 3)
    return (f"*She looks toward place{rng.randrange(5000)}.* The {a} there is worth a detour.\n\n"
            f"\"We could trade {b} before the {c} closes,\" she says, counting coins.\n\n"
            "The wind rises; the road bends toward the hills.")


def report(label: str, times: list[float]) -> None:
    """Print p50 / p99 / max."""
    ordered = sorted(times)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    print(f"{label}: p50 {statistics.median(ordered):.1f} ms, p99 {p99:.1f} ms, max {ordered[-1]:.1f} ms"
          f" over {len(ordered)} turns")


def fold_old_turns(db: Database, chat_id: int, upto: int) -> None:
    """Stand-in for the summarizer: 5 summaries over turns 1..upto, their messages archived."""
    with db.session() as conn, transaction(conn):
        step = max(1, upto // 5)
        for start in range(1, upto + 1, step):
            end = min(upto, start + step - 1)
            rows = conn.execute("SELECT min(id) AS a, max(id) AS b FROM messages WHERE chat_id = ? AND turn BETWEEN"
                                " ? AND ?", (chat_id, start, end)).fetchone()
            text = "The travellers crossed the river lands, traded salt, argued and made peace. " * 6
            cur = conn.execute("INSERT INTO summaries (chat_id, first_message_id, last_message_id, start_turn,"
                               " end_turn, text, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, '', '')",
                               (chat_id, rows["a"], rows["b"], start, end, text))
            conn.execute("UPDATE messages SET archived = 1, archived_reason = 'summarized', summary_id = ?"
                         " WHERE chat_id = ? AND turn BETWEEN ? AND ?", (cur.lastrowid, chat_id, start, end))


def naive_tokens(db: Database, chat_id: int, cast: list[int], world_id: int) -> int:
    """Every card in full + all keyword-matched lore + as much history (no summaries) as fits."""
    with db.session() as conn:
        cards = sum(count_tokens(card_text(get_character(conn, cid), "Ari")) for cid in cast)
        msgs = store.list_messages(conn, chat_id, include_archived=True, limit=5000)
        recent = "\n".join(m.content for m in msgs[-4:])
        lore = select_lore(load_entries(conn, [world_id]), recent, turn=500, threshold=1.1)
    total = cards + sum(count_tokens(h.entry.content) for h in lore)
    for msg in reversed(msgs):
        cost = count_tokens(msg.content) + 4
        if total + cost > BUDGET:
            break
        total += cost
    return total


def render(prompt: Any) -> str:
    """The prompt as one string, the way a chat template would concatenate it."""
    return "".join(f"<{m.role}>{m.content}" for m in prompt.messages())


def prefix_share(before: str, after: str) -> float:
    """Share of `before`'s tokens that stay an identical prefix of `after`."""
    shared = next((i for i, (x, y) in enumerate(zip(before, after, strict=False)) if x != y), min(len(before),
                                                                                                 len(after)))
    return count_tokens(before[:shared]) / max(1, count_tokens(before))


def turn_500(db: Database, engine: PromptEngine, cast: list[int], world_id: int) -> None:
    """Our prompt vs the naive one at turn 500, and the prefix kept between two ordinary turns."""
    chat_id = make_chat(db, cast, world_id, 500, random.Random(5))
    fold_old_turns(db, chat_id, 494)
    with db.session() as conn:
        speaker = get_character(conn, cast[0])
    ours = engine.build_sync(chat_id, speaker, budget=BUDGET, persist=True)
    present = {s.source.get("character_id") for s in ours.sections if s.kind in ("card_full", "capsule")}
    naive = naive_tokens(db, chat_id, cast, world_id)
    print(f"turn 500: ours {ours.total_tokens} tokens vs naive {naive} tokens = "
          f"{ours.total_tokens / naive:.0%} (every cast member's card or capsule present: {set(cast) <= present})")
    with db.session() as conn, transaction(conn):
        store.insert_message(conn, chat_id, role="assistant", turn=500, character_id=cast[0], speaker_name="x",
                             content="She nods and points at the road ahead, where place17 waits. " * 3)
        turn = store.bump_turn(conn, chat_id)
        store.insert_message(conn, chat_id, role="user", turn=turn, content="Then onward, to place42 and beyond!")
    after = engine.build_sync(chat_id, speaker, budget=BUDGET, persist=True)
    print(f"prefix kept between two ordinary turns: {prefix_share(render(ours), render(after)):.1%}")


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--turns", type=int, default=60)
    parser.add_argument("--skip-embeddings", action="store_true")
    parser.add_argument("--model", choices=["e5", "minilm"], default="e5", help="embeddings.model (default e5)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        settings = load_settings(overrides={"paths": {"data_dir": str(root)}, "embeddings": {"model": args.model}},
                                 environ={})
        db, library, cast = setup_library(root)
        world_id = make_world(library, 5000)
        t0 = time.perf_counter()
        chat_id = make_chat(db, cast, world_id, 5000, random.Random(3))
        print(f"setup: 8 characters, 5,000-entry world, 10,000-message chat in {time.perf_counter() - t0:.1f} s")
        plain = PromptEngine(db, lambda: settings, lambda: None)
        report("embedding excluded", timed_turns(plain, db, chat_id, cast, args.turns))
        embedder = make_embedder(settings)
        if not args.skip_embeddings:
            t0 = time.perf_counter()
            indexed = reindex_all(db, embedder)
            print(f"indexed {indexed} entries in {time.perf_counter() - t0:.1f} s (once, in the background normally)")
            semantic = PromptEngine(db, lambda: settings, lambda: embedder)
            report(f"embedding included ({embedder.model_id})", timed_turns(semantic, db, chat_id, cast, args.turns))
        turn_500(db, PromptEngine(db, lambda: settings, lambda: embedder if embedder.ready else None), cast, world_id)


if __name__ == "__main__":
    main()
