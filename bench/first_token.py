"""User first-token latency with and without background LLM jobs queued.

NeuralRP runs in this process (uvicorn on a loopback port) with the built-in demo model (SmolLM2-135M-Instruct on
llama-cpp-python: one slot, like llama.cpp and KoboldCpp). Each round sends a chat message twice and times
the wait from the request to the first streamed token:
- idle: nothing else asks the LLM (the capsules and summaries a reply may start are let finish first);
- busy: `--jobs` card generations (the longest background calls) are queued first, and the message is sent
  once one of them is streaming. The scheduler pauses it for the reply; afterwards the jobs are cancelled
  through the task list (/api/system/llm-tasks), as the UI's Cancel does.
Prints each round, then `first_token idle_s=A busy_s=B` (medians over the rounds).

Run: .venv/bin/python bench/first_token.py [--rounds 3] [--jobs 2] [--reply-tokens 32] [--threads 2]
[--parallel-slots 1]
`--fake` uses the fake LLM of tests/fakes instead (it serves in parallel, so it shows the scheduler's own
overhead only). Needs the [local] extra without --fake.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

import neuralrp
from neuralrp.app import create_app
from neuralrp.config import load_settings

TREE = Path(neuralrp.__file__).resolve().parents[1]
sys.path.insert(0, str(TREE))

from tests.api.chat_helpers import CARD  # noqa: E402
from tests.cardgen.helpers import DESCRIPTION  # noqa: E402
from tests.fakes import FakeLLM, LiveServer  # noqa: E402

TIMEOUT_S = 300.0
MESSAGE = "Mira, what do you see on the horizon?"


def first_token(url: str, chat_id: int) -> float:
    """Send a message; seconds until its first token (the reply is read to its end)."""
    started = time.monotonic()
    took: float | None = None
    with httpx.Client(base_url=url, timeout=TIMEOUT_S, trust_env=False) as client, \
            client.stream("POST", f"/api/chats/{chat_id}/messages", json={"content": MESSAGE}) as resp:
        for line in resp.iter_lines():
            if not line.startswith("data:"):
                continue
            event = json.loads(line[5:])
            if event["type"] == "token" and took is None:
                took = time.monotonic() - started
            if event["type"] == "error":
                raise SystemExit(f"the reply failed: {event['detail']}")
    if took is None:
        raise SystemExit("the reply streamed no token")
    return took


def tasks(client: httpx.Client) -> list[dict[str, Any]]:
    """The background LLM calls NeuralRP has now."""
    return client.get("/api/system/llm-tasks").json()["tasks"]  # type: ignore[no-any-return]


def queue_jobs(url: str, count: int) -> list[threading.Thread]:
    """Start `count` card generations and return once one of them is streaming."""
    def generate() -> None:
        with httpx.Client(base_url=url, timeout=TIMEOUT_S, trust_env=False) as client:
            client.post("/api/cardgen/character", json={"description": DESCRIPTION})

    threads = [threading.Thread(target=generate, daemon=True) for _ in range(count)]
    for thread in threads:
        thread.start()
    with httpx.Client(base_url=url, timeout=TIMEOUT_S, trust_env=False) as client:
        deadline = time.monotonic() + TIMEOUT_S
        while not any(t["state"] == "running" and t["tokens"] > 0 for t in tasks(client)):
            if time.monotonic() > deadline:
                raise SystemExit("no background job started streaming")
            time.sleep(0.05)
    return threads


def cancel_jobs(url: str, threads: list[threading.Thread]) -> None:
    """Cancel every background call still there and wait for the requests to end."""
    with httpx.Client(base_url=url, timeout=TIMEOUT_S, trust_env=False) as client:
        for thread in threads:
            for task in tasks(client):
                client.post(f"/api/system/llm-tasks/{task['id']}/cancel")
            thread.join(timeout=TIMEOUT_S)


def wait_quiet(url: str) -> None:
    """Return once no background call has been listed for a second (capsules and summaries after a reply)."""
    calm = 0
    deadline = time.monotonic() + TIMEOUT_S
    with httpx.Client(base_url=url, timeout=TIMEOUT_S, trust_env=False) as client:
        while calm < 5:
            calm = 0 if tasks(client) else calm + 1
            if time.monotonic() > deadline:
                raise SystemExit("background work never settled")
            time.sleep(0.2)


def run(url: str, rounds: int, jobs: int) -> tuple[list[float], list[float]]:
    """The idle and busy first-token times, one pair per round."""
    with httpx.Client(base_url=url, timeout=TIMEOUT_S, trust_env=False) as client:
        chat = client.post("/api/chats", json={"card": CARD, "persona": {"name": "Ari"}}).json()
    first_token(url, chat["id"])  # warm-up: loads the prompt into the server's cache once
    idle: list[float] = []
    busy: list[float] = []
    for n in range(1, rounds + 1):
        wait_quiet(url)
        idle.append(first_token(url, chat["id"]))
        threads = queue_jobs(url, jobs)
        busy.append(first_token(url, chat["id"]))
        cancel_jobs(url, threads)
        print(f"round {n}: idle {idle[-1]:.3f} s, with {jobs} background job(s) queued {busy[-1]:.3f} s")
    return idle, busy


def settings_for(data_dir: Path, args: argparse.Namespace, llm_url: str | None) -> Any:
    sections: dict[str, Any] = {"paths": {"data_dir": str(data_dir)},
                                "sampling": {"max_tokens": args.reply_tokens, "temperature": 0.7},
                                "logging": {"level": "WARNING"}}
    sections["llm"] = {"parallel_slots": args.parallel_slots, **({"base_url": llm_url} if llm_url else {})}
    if not llm_url:
        sections["local"] = {"demo": True, "n_ctx": 2048, "n_threads": args.threads}
    return load_settings(overrides=sections, environ={})


def main() -> None:
    """Parse arguments, start NeuralRP (and the fake with --fake), run the rounds, print the summary line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--reply-tokens", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--parallel-slots", type=int, default=1,
                        help="llm.parallel_slots; more than 1 on the one-slot demo shows replies queued behind "
                             "background work at the server, as before the scheduler")
    parser.add_argument("--fake", action="store_true", help="the fake LLM instead of the built-in model")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="neuralrp-bench-") as tmp:
        fake = FakeLLM("llamacpp") if args.fake else None
        if fake is not None:
            fake.fault("slow", times=None, between=0.02)
        llm = LiveServer(fake.app).start() if fake is not None else None
        try:
            app = create_app(settings_for(Path(tmp), args, llm.url if llm else None))
            with LiveServer(app, startup_timeout=TIMEOUT_S) as server:
                print(f"backend: {'fake LLM (parallel)' if fake else 'built-in demo model (one slot)'}; "
                      f"llm.parallel_slots {args.parallel_slots}; {args.rounds} round(s), {args.jobs} card "
                      "generation(s) queued per busy round")
                idle, busy = run(server.url, args.rounds, args.jobs)
        finally:
            if llm is not None:
                llm.stop()
    print(f"first_token idle_s={statistics.median(idle):.3f} busy_s={statistics.median(busy):.3f}")


if __name__ == "__main__":
    main()
