"""Big chats: open a 10,000-message chat in the browser, and search 100,000 messages.

Builds a data dir with one 10,000-message chat plus 90,000 messages in 90 other chats,
then (1) times full-text searches through the API on a live server, and (2) times, in
headless Chromium, from navigation to the chat's newest message being visible.
Run: .venv/bin/python bench/chat_scale.py [--searches 30] [--opens 5]
"""

from __future__ import annotations

import argparse
import contextlib
import random
import socket
import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx
import uvicorn

from neuralrp.app import create_app
from neuralrp.chats import store
from neuralrp.config import load_settings
from neuralrp.db.connection import Database, transaction
from neuralrp.db.migrations import migrate
from neuralrp.library.characters import insert_character

WORDS = ("sword river lantern storm castle whisper amber falcon winter harbour ember oath raven silver "
         "forest candle thunder mirror shadow garden bridge tower secret letter").split()
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


def line(rng: random.Random, n: int = 24) -> str:
    """A random sentence of dictionary words."""
    return " ".join(rng.choice(WORDS) for _ in range(n)) + "."


def fill(db: Database, big: int, others: int, per_other: int) -> int:
    """One big chat and many smaller ones; returns the big chat's id."""
    rng = random.Random(1)
    with db.session() as conn, transaction(conn):
        cid = insert_character(conn, {"name": "Bench", "description": "A patient companion."})
        chat_ids = []
        for index in range(others + 1):
            chat_id = store.insert_chat(conn, title=f"chat {index}")
            store.add_cast_member(conn, chat_id, cid)
            count = big if index == 0 else per_other
            for i in range(count):
                role = "user" if i % 2 == 0 else "assistant"
                store.insert_message(conn, chat_id, role=role, content=line(rng), turn=i // 2 + 1,
                                     character_id=None if role == "user" else cid)
            chat_ids.append(chat_id)
    return chat_ids[0]


def time_searches(url: str, n: int) -> list[float]:
    """Milliseconds per GET /api/search (two-word queries) over HTTP."""
    rng = random.Random(2)
    times = []
    with httpx.Client(base_url=url, trust_env=False, timeout=30) as client:
        for _ in range(n):
            q = f"{rng.choice(WORDS)} {rng.choice(WORDS)}"
            t0 = time.perf_counter()
            resp = client.get("/api/search", params={"q": q, "limit": 50})
            times.append((time.perf_counter() - t0) * 1000)
            assert resp.status_code == 200, resp.text
    return times


def time_opens(url: str, chat_id: int, n: int) -> list[float]:
    """Milliseconds from navigation to the newest message of the big chat being visible."""
    from playwright.sync_api import sync_playwright

    times = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        for _ in range(n):
            page = browser.new_page()
            t0 = time.perf_counter()
            page.goto(f"{url}/#/chat/{chat_id}")
            page.locator(".msg, [data-message-id]").last.wait_for(state="visible", timeout=30_000)
            times.append((time.perf_counter() - t0) * 1000)
            page.close()
        browser.close()
    return times


@contextlib.contextmanager
def serve(app: object) -> object:
    """The app on a free loopback port in a thread; yields its URL."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def show(label: str, times: list[float]) -> None:
    """Print median and p95."""
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    print(f"{label}: median {statistics.median(ordered):.1f} ms, p95 {p95:.1f} ms over {len(ordered)}")


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--searches", type=int, default=30)
    parser.add_argument("--opens", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(overrides={"paths": {"data_dir": tmp}, "library": {"watch": False}}, environ={})
        db = Database(Path(tmp) / "neuralrp.db")
        with db.session() as conn:
            migrate(conn)
        t0 = time.perf_counter()
        big = fill(db, 10_000, 90, 1_000)
        print(f"built 100,000 messages (one chat of 10,000) in {time.perf_counter() - t0:.1f} s")
        with serve(create_app(settings)) as url:
            show("search across 100,000 messages (HTTP)", time_searches(url, args.searches))
            show("open a 10,000-message chat (first screen visible)", time_opens(url, big, args.opens))


if __name__ == "__main__":
    main()
