"""Latency NeuralRP adds between the backend's first token and the browser's first token.

A minimal OpenAI-compatible SSE backend runs in this process and notes (CLOCK_MONOTONIC)
when it writes its first token; `neuralrp serve` runs as a separate process; an HTTP
client here notes when the first `token` event arrives. Prints median / p90 / max.
Run: .venv/bin/python bench/stream_overhead.py [--runs 50]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from neuralrp.llm.local_server import free_port

FIRST_SENT: list[float] = []


def chunk(text: str, finish: str | None = None) -> bytes:
    """One chat.completion.chunk SSE frame."""
    body = {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": text},
                                                            "finish_reason": finish}]}
    return f"data: {json.dumps(body)}\n\n".encode()


async def backend(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A tiny llama.cpp-like server: /v1/models and a streamed /v1/chat/completions."""
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    if scope["path"] == "/v1/models":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": b'{"object":"list","data":[{"id":"bench"}]}'})
        return
    if scope["path"] != "/v1/chat/completions":
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
    FIRST_SENT.append(time.perf_counter())
    await send({"type": "http.response.body", "body": chunk("Hello"), "more_body": True})
    for word in (" there", ",", " friend", "."):
        await send({"type": "http.response.body", "body": chunk(word), "more_body": True})
    await send({"type": "http.response.body", "body": chunk("", "stop") + b"data: [DONE]\n\n"})


def start_backend() -> str:
    """Serve the fake backend in a thread; return its URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(backend, host="127.0.0.1", port=port, log_level="error"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.01)
    return f"http://127.0.0.1:{port}"


def start_neuralrp(data_dir: Path, llm_url: str) -> tuple[subprocess.Popen[bytes], str]:
    """`neuralrp serve` in its own process, pointed at the fake backend."""
    port = free_port()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("NEURALRP_")},
           "NEURALRP_LLM_BASE_URL": llm_url, "NEURALRP_LLM_BACKEND": "llamacpp", "NEURALRP_LOGGING_LEVEL": "WARNING"}
    proc = subprocess.Popen([sys.executable, "-m", "neuralrp", "serve", "--port", str(port), "--data-dir",
                             str(data_dir)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            httpx.get(url + "/api/system/health", trust_env=False)
            return proc, url
        except httpx.TransportError:
            time.sleep(0.1)
    raise SystemExit("neuralrp did not start")


def one_run(client: httpx.Client, chat_id: int) -> float:
    """Send a message; return ms between the backend's first token and ours."""
    arrived = 0.0
    with client.stream("POST", f"/api/chats/{chat_id}/messages", json={"content": "Hi"}) as resp:
        for line in resp.iter_lines():
            if not arrived and line.startswith("data:") and '"token"' in line:
                arrived = time.perf_counter()
    return (arrived - FIRST_SENT[-1]) * 1000


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    llm_url = start_backend()
    with tempfile.TemporaryDirectory() as tmp:
        proc, url = start_neuralrp(Path(tmp), llm_url)
        try:
            with httpx.Client(base_url=url, trust_env=False, timeout=30) as client:
                chat = client.post("/api/chats", json={"card": {"name": "Bench", "first_mes": "Hi."}}).json()
                for _ in range(5):
                    one_run(client, chat["id"])
                samples = [one_run(client, chat["id"]) for _ in range(args.runs)]
        finally:
            proc.terminate()
            proc.wait()
    samples.sort()
    print(f"backend first token -> client first token over {len(samples)} replies:")
    print(f"  median {statistics.median(samples):.2f} ms, p90 {samples[int(len(samples) * 0.9)]:.2f} ms,"
          f" max {samples[-1]:.2f} ms")


if __name__ == "__main__":
    main()
