"""Per-message write cost on a chat that already holds 10,000 messages.

Measures the two writes the chat loop makes: inserting a message (one transaction:
turn bump + row) and the per-chunk UPDATE of a streaming reply. Prints median/p99.
Run: .venv/bin/python bench/message_writes.py [--messages 10000] [--samples 500]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from neuralrp.chats import service, store
from neuralrp.db.connection import Database, transaction
from neuralrp.db.migrations import migrate


def fill(db: Database, count: int) -> int:
    """A chat with `count` messages, written in one transaction."""
    with db.session() as conn:
        migrate(conn)
        chat_id = service.create_chat(conn, character_ids=[], card={"name": "Bench", "first_mes": "Hello."})
        with transaction(conn):
            for i in range(count):
                role = "user" if i % 2 == 0 else "assistant"
                turn = store.bump_turn(conn, chat_id) if role == "user" else i // 2 + 1
                store.insert_message(conn, chat_id, role=role, content=f"message {i} " + "lorem ipsum " * 30,
                                     turn=turn)
    return chat_id


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) of values."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q / 100))]


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--samples", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(Path(tmp) / "bench.db")
        chat_id = fill(db, args.messages)
        inserts, updates = [], []
        with db.session() as conn:
            for i in range(args.samples):
                t0 = time.perf_counter()
                msg = service.post_user_message(conn, chat_id, f"new message {i}")
                inserts.append((time.perf_counter() - t0) * 1000)
                text = ""
                for word in range(5):
                    text += f" token{word}"
                    t0 = time.perf_counter()
                    store.set_message_text(conn, msg.id, text)
                    updates.append((time.perf_counter() - t0) * 1000)
            total = conn.execute("SELECT count(*) AS n FROM messages WHERE chat_id = ?", (chat_id,)).fetchone()["n"]
    print(f"chat size: {total} messages")
    print(f"insert user message (turn + row, 1 transaction): median {statistics.median(inserts):.3f} ms,"
          f" p99 {percentile(inserts, 99):.3f} ms over {len(inserts)}")
    print(f"streaming chunk UPDATE: median {statistics.median(updates):.3f} ms,"
          f" p99 {percentile(updates, 99):.3f} ms over {len(updates)}")


if __name__ == "__main__":
    main()
