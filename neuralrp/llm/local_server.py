"""Start and supervise llama-cpp-python's OpenAI-compatible server as a child process.

Typical use (in the app's lifespan)::

    server = LocalModelServer(path, n_ctx=4096, alias="smollm2-135m-instruct")
    server.start()                                   # blocks until GET /v1/models answers 200
    task = asyncio.create_task(server.supervise())   # restarts it if it dies
    ...
    task.cancel(); server.stop()

The server never interrupts a running stream (`--interrupt_requests False`): other requests wait for the model
instead, so NeuralRP keeps status checks off the server while it generates (see neuralrp/llm/scheduler.py).
The child's stdout and stderr are merged and drained by a thread into an optional log
file and a short in-memory tail, which startup errors quote.
"""

from __future__ import annotations

import asyncio
import atexit
import collections
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

import httpx

from neuralrp.errors import BackendUnavailable, ConfigError

log = logging.getLogger(__name__)

GGUF_MAGIC = b"GGUF"
HOST = "127.0.0.1"
TAIL_LINES = 40
_POLL_S = 0.1
_MAX_BACKOFF_S = 30.0


def validate_gguf(path: Path) -> Path:
    """Return path if it is a readable GGUF file, else raise ConfigError naming it."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ConfigError(f"Local model file not found: {path}")
    try:
        with path.open("rb") as f:
            magic = f.read(4)
    except OSError as e:
        raise ConfigError(f"Cannot read local model file {path}: {e}") from e
    if magic != GGUF_MAGIC:
        raise ConfigError(f"Local model file {path} is not a GGUF file (it does not start with 'GGUF')")
    return path


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


class LocalModelServer:
    """One llama-cpp-python server process on a loopback port, restarted when it dies."""

    def __init__(
        self,
        model_path: Path,
        *,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        startup_timeout_s: float = 120,
        alias: str | None = None,
        chat_format: str | None = None,
        log_path: Path | None = None,
        python: str = sys.executable,
        command: list[str] | None = None,
        max_restarts: int = 5,
        restart_backoff_s: float = 1.0,
        prompt_cache_mb: int = 0,
    ) -> None:
        self.model_path = validate_gguf(model_path)
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.startup_timeout_s = startup_timeout_s
        self.alias = alias or self.model_path.stem
        self.chat_format = chat_format  # None: the template stored in the GGUF
        self.log_path = log_path
        self.python = python
        # Test seam: a command run instead of llama_cpp.server; "{port}" in an argument is filled in.
        self._command = command
        self.max_restarts = max_restarts
        self.restart_backoff_s = restart_backoff_s
        # llama-cpp-python's RAM prompt cache: several prompt states, the one with the longest shared prefix is
        # reloaded, so a background job between two replies does not cost the reply its cached prefix.
        self.prompt_cache_mb = prompt_cache_mb
        self.restarts = 0
        self._port: int | None = None
        self._proc: subprocess.Popen[str] | None = None
        self._drainer: threading.Thread | None = None
        self._tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        self._lock = threading.Lock()
        self._stopping = False
        self._atexit_registered = False

    # -- public state -------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The loopback port; chosen on the first start() and kept across restarts."""
        if self._port is None:
            raise BackendUnavailable("The local model server has not been started", backend="llm")
        return self._port

    @property
    def base_url(self) -> str:
        """Root URL of the server, e.g. http://127.0.0.1:PORT (the OpenAI API is under /v1)."""
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int | None:
        """PID of the current server process, or None before start() and after stop()."""
        return self._proc.pid if self._proc is not None else None

    def is_running(self) -> bool:
        """True while the server process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def output_tail(self) -> str:
        """The last lines the server process wrote (stdout and stderr merged)."""
        return "".join(self._tail)

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        """Launch the server and block until GET /v1/models answers 200."""
        if self.is_running():
            return
        self._stopping = False
        if self._port is None:
            self._port = free_port()
        if not self._atexit_registered:
            # The server must never outlive NeuralRP, even when the lifespan never ran its shutdown.
            atexit.register(self.stop)
            self._atexit_registered = True
        self._launch()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Terminate the server (kill it after timeout_s); safe to call more than once."""
        self._stopping = True
        with self._lock:
            self._terminate(timeout_s)
        if self._atexit_registered:
            atexit.unregister(self.stop)
            self._atexit_registered = False

    async def supervise(self, *, poll_interval_s: float = 0.5) -> None:
        """Watch the process until stop(); restart it on the same port when it exits unexpectedly."""
        while not self._stopping:
            await asyncio.sleep(poll_interval_s)
            if self._stopping or self._proc is None or self.is_running():
                continue
            if not await self._restart_after_exit():
                return

    # -- internals ----------------------------------------------------------------------

    def build_command(self, port: int) -> list[str]:
        """The argv that starts the server on the given loopback port."""
        if self._command is not None:
            return [arg.replace("{port}", str(port)) for arg in self._command]
        argv = [self.python, "-m", "llama_cpp.server", "--model", str(self.model_path)]
        argv += ["--host", HOST, "--port", str(port), "--n_ctx", str(self.n_ctx)]
        if self.n_threads is not None:
            argv += ["--n_threads", str(self.n_threads)]
        if self.chat_format is not None:
            argv += ["--chat_format", self.chat_format]
        # The server's default (True) ends a running stream with [DONE] whenever any other request arrives,
        # even GET /v1/models: a status check would cut the user's reply. Requests queue instead.
        if self.prompt_cache_mb > 0:
            argv += ["--cache", "True", "--cache_type", "ram", "--cache_size", str(self.prompt_cache_mb * 2**20)]
        return argv + ["--model_alias", self.alias, "--interrupt_requests", "False"]

    def _launch(self) -> None:
        """Spawn the process and wait for readiness; on failure kill it and raise BackendUnavailable."""
        with self._lock:
            if self._stopping:
                raise BackendUnavailable("The local model server is stopping", backend="llm")
            self._spawn()
            try:
                self._wait_ready()
            except BackendUnavailable:
                # Keep the dead process object: supervise() reads its exit code and retries.
                self._kill(self._proc, timeout_s=5.0)
                raise
        log.info("local model server %r ready at %s (pid %s)", self.alias, self.base_url, self.pid)

    def _spawn(self) -> None:
        argv = self.build_command(self.port)
        log.info("starting local model server: %s", " ".join(argv))
        self._tail.clear()
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        try:
            self._proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                encoding="utf-8",
                errors="replace",
                env=env,
                # Own session: a Ctrl-C in the terminal reaches NeuralRP, which then stops the child.
                start_new_session=True,
            )
        except OSError as e:
            raise BackendUnavailable(f"Could not start the local model server ({argv[0]}): {e}") from e
        assert self._proc.stdout is not None
        self._drainer = threading.Thread(
            target=self._drain, args=(self._proc.stdout,), name=f"llama-log-{self._proc.pid}", daemon=True
        )
        self._drainer.start()

    def _drain(self, stream: IO[str]) -> None:
        """Copy the child's output into the tail (and the log file) until EOF."""
        log_file = self.log_path.open("a", encoding="utf-8") if self.log_path is not None else None
        try:
            for line in stream:
                self._tail.append(line)
                if log_file is not None:
                    log_file.write(line)
                    log_file.flush()
        finally:
            stream.close()
            if log_file is not None:
                log_file.close()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout_s
        url = f"{self.base_url}/v1/models"
        with httpx.Client(timeout=2.0, trust_env=False) as client:
            while True:
                code = self._proc.poll() if self._proc is not None else None
                if code is not None:
                    self._fail(f"exited with code {code} during startup")
                if self._stopping:
                    self._fail("was stopped during startup")
                if self._answers(client, url):
                    return
                if time.monotonic() >= deadline:
                    self._fail(f"did not answer GET /v1/models within {self.startup_timeout_s:g} s")
                time.sleep(_POLL_S)

    @staticmethod
    def _answers(client: httpx.Client, url: str) -> bool:
        try:
            return client.get(url).status_code == 200
        except httpx.HTTPError:
            return False

    def _fail(self, what: str) -> None:
        if self._drainer is not None and self._proc is not None and self._proc.poll() is not None:
            # Let the drainer catch the dead process's last words before quoting them.
            self._drainer.join(timeout=1.0)
        tail = self.output_tail().strip() or "(no output)"
        raise BackendUnavailable(
            f"The local model server for {self.model_path} {what}. Last output:\n{tail}", backend="llm"
        )

    def _terminate(self, timeout_s: float) -> None:
        proc, self._proc = self._proc, None
        self._kill(proc, timeout_s)

    def _kill(self, proc: subprocess.Popen[str] | None, timeout_s: float) -> None:
        """SIGTERM proc, SIGKILL it after timeout_s, and wait for its output to drain."""
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                log.warning("local model server (pid %d) ignored SIGTERM; killing it", proc.pid)
                proc.kill()
                proc.wait()
            log.info("local model server (pid %d) stopped", proc.pid)
        if self._drainer is not None:
            self._drainer.join(timeout=2.0)
            self._drainer = None

    async def _restart_after_exit(self) -> bool:
        """Restart after an unexpected exit, with backoff; False once the restart budget is spent."""
        code = self._proc.returncode if self._proc is not None else None
        if self.restarts >= self.max_restarts:
            log.error(
                "local model server exited with code %s; gave up after %d restarts. Last output:\n%s",
                code,
                self.restarts,
                self.output_tail().strip(),
            )
            return False
        delay = min(self.restart_backoff_s * 2**self.restarts, _MAX_BACKOFF_S)
        self.restarts += 1
        log.warning(
            "local model server exited unexpectedly with code %s; restart %d/%d in %.1f s",
            code,
            self.restarts,
            self.max_restarts,
            delay,
        )
        await asyncio.sleep(delay)
        if self._stopping:
            return False
        try:
            await asyncio.to_thread(self._launch)
        except BackendUnavailable as e:
            if self._stopping:
                return False
            log.warning("restart %d of the local model server failed: %s", self.restarts, e.message)
        return True
