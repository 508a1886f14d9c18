"""Run an ASGI app on a real localhost port in a background thread (for streaming/disconnect tests).

    with LiveServer(fake.app) as server:
        httpx.get(server.url + "/v1/models")

`LiveServer(app, host="127.0.0.1", port=0, startup_timeout=30.0, graceful_timeout=1.0)` starts uvicorn in a
daemon thread on `start()`/`__enter__`, waits until it accepts connections (the app's lifespan startup
included), and exposes `.port` and `.url`.  `stop()`/`__exit__` sets `should_exit` and joins the thread;
requests still hanging after `graceful_timeout` seconds are cancelled.  Also usable as an async context
manager (`async with LiveServer(app) as server:`); start/stop then block the loop only briefly.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import uvicorn

from tests.waiting import DEFAULT_TIMEOUT, wait_until


class LiveServer:
    """Serve an ASGI app with uvicorn on 127.0.0.1 in a daemon thread."""

    def __init__(
        self,
        app: Any,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        startup_timeout: float = DEFAULT_TIMEOUT,
        graceful_timeout: float = 1.0,
    ) -> None:
        self.app = app
        self.host = host
        self.requested_port = port
        self.startup_timeout = startup_timeout
        self.graceful_timeout = graceful_timeout
        self.port = 0
        self.server: uvicorn.Server | None = None
        self.thread: threading.Thread | None = None
        self.error: BaseException | None = None

    @property
    def url(self) -> str:
        """Base URL, e.g. `http://127.0.0.1:54321`."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> LiveServer:
        """Start uvicorn and wait until it is serving; RuntimeError if it fails to start."""
        config = uvicorn.Config(
            self.app,
            host=self.host,
            port=self.requested_port,
            log_level="warning",
            timeout_graceful_shutdown=self.graceful_timeout,
        )
        self.server = uvicorn.Server(config)
        self.error = None
        self.thread = threading.Thread(target=self._run, args=(self.server,), name="LiveServer", daemon=True)
        self.thread.start()
        server, thread = self.server, self.thread
        try:
            wait_until(lambda: server.started or not thread.is_alive(), timeout=self.startup_timeout,
                       interval=0.005, what="uvicorn to start")
        except AssertionError:
            pass  # reported below, with uvicorn's own error
        if not server.started:
            error = self.error
            self.stop()
            raise RuntimeError(f"LiveServer: uvicorn did not start ({error!r}; see its log)") from error
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        return self

    def _run(self, server: uvicorn.Server) -> None:
        """Thread body: run uvicorn, keeping any exit/exception (uvicorn calls sys.exit on startup failure)."""
        try:
            server.run()
        except BaseException as exc:  # reported by start()
            self.error = exc

    def stop(self) -> None:
        """Ask uvicorn to exit and wait for the thread (forcing exit if it lingers)."""
        if self.server is None or self.thread is None:
            return
        self.server.should_exit = True
        self.thread.join(self.graceful_timeout + 5.0)
        if self.thread.is_alive():
            self.server.force_exit = True
            self.thread.join(5.0)
        self.server = None
        self.thread = None

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    async def __aenter__(self) -> LiveServer:
        return self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def serve_process(data_dir: Path, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """`neuralrp serve` in its own process (no NEURALRP_* from outside, plus `env`), once it answers health."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("NEURALRP_")} | env
    proc = subprocess.Popen([sys.executable, "-m", "neuralrp", "serve", "--port", str(port), "--data-dir",
                             str(data_dir)], env=full, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def healthy() -> bool:
        assert proc.poll() is None, "server exited during start"
        return httpx.get(f"http://127.0.0.1:{port}/api/system/health", timeout=5, trust_env=False).is_success

    wait_until(healthy, timeout=60, what="`neuralrp serve` to answer /api/system/health",
               ignore=(httpx.TransportError,))
    return proc
