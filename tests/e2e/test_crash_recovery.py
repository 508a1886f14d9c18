"""kill -9 the NeuralRP process mid-stream: nothing already sent is lost."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from neuralrp.llm.local_server import free_port
from tests.api.chat_helpers import CARD
from tests.fakes import FakeLLM, LiveServer
from tests.fakes.live import serve_process

LONG_REPLY = " ".join(f"word{i}" for i in range(200))


def start_server(data_dir: Path, llm_url: str, port: int) -> subprocess.Popen[bytes]:
    return serve_process(data_dir, port, {"NEURALRP_LLM_BASE_URL": llm_url})


@pytest.fixture
def slow_llm() -> Iterator[tuple[FakeLLM, str]]:
    fake = FakeLLM("llamacpp")
    fake.set_fault("slow", between=0.05)
    with LiveServer(fake.app) as server:
        yield fake, server.url


def test_kill_9_mid_stream_loses_nothing_sent(tmp_path: Path, slow_llm: tuple[FakeLLM, str]) -> None:
    fake, llm_url = slow_llm
    fake.enqueue(LONG_REPLY)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = start_server(tmp_path / "data", llm_url, port)
    received: list[str] = []
    try:
        with httpx.Client(base_url=base, trust_env=False, timeout=30) as client:
            chat = client.post("/api/chats", json={"card": CARD}).json()
            with client.stream("POST", f"/api/chats/{chat['id']}/messages", json={"content": "Tell a long tale"}) as r:
                for line in r.iter_lines():
                    if line.startswith("data:"):
                        event = json.loads(line[5:])
                        if event["type"] == "token":
                            received.append(event["text"])
                    if len(received) >= 10:
                        os.kill(proc.pid, signal.SIGKILL)
                        break
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    shown = "".join(received)
    proc = start_server(tmp_path / "data", llm_url, port)
    try:
        stored = httpx.get(f"{base}/api/chats/{chat['id']}/messages", trust_env=False, timeout=10).json()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    roles = [(m["role"], m["status"]) for m in stored["messages"]]
    assert roles == [("assistant", "complete"), ("user", "complete"), ("assistant", "incomplete")]
    assert stored["messages"][1]["content"] == "Tell a long tale"
    partial = stored["messages"][2]["content"]
    assert partial.startswith(shown), "every token the browser saw is in the database"
    assert len(partial) < len(LONG_REPLY)
