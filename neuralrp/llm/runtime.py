"""Which LLM backend the app talks to: a configured server, or a built-in local one."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any

import httpx

from neuralrp.backends import ProbeCache
from neuralrp.config import Settings
from neuralrp.errors import BackendError
from neuralrp.llm.client import OpenAICompatBackend
from neuralrp.llm.demo_model import DEMO_ALIAS, DEMO_CHAT_FORMAT, DEMO_LABEL, demo_model_path
from neuralrp.llm.gguf import LocalModel, prompt_cache_mb
from neuralrp.llm.local_server import LocalModelServer
from neuralrp.llm.types import LLMBackend

log = logging.getLogger(__name__)


@dataclass
class LLMRuntime:
    """The backend in use plus the local server NeuralRP supervises, if any."""

    backend: LLMBackend | None = None
    local: LocalModelServer | None = None
    label: str = ""
    demo: bool = False
    status_cache: ProbeCache = field(default_factory=ProbeCache)  # the status page's last look at the server
    _supervisor: asyncio.Task[None] | None = field(default=None, repr=False)
    _retired: list[LLMBackend] = field(default_factory=list, repr=False)

    def describe(self) -> dict[str, Any]:
        """What the status page shows about the built-in model."""
        if self.local is None:
            return {"built_in": False}
        return {"built_in": True, "demo": self.demo, "label": self.label, "model_path": str(self.local.model_path),
                "url": self.local.base_url}

    def reconfigure(self, settings: Settings, transport: httpx.AsyncBaseTransport | None = None) -> None:
        """Point at the LLM server now configured (a built-in local model keeps running instead).

        Called when the llm or context settings change (context.max_tokens is the window Ollama is asked for).
        """
        if self.local is not None:
            return
        self.status_cache.clear()
        if self.backend is not None:
            self._retired.append(self.backend)  # a reply may still be streaming from it; closed at shutdown
        self.backend = _remote_backend(settings, transport) if settings.llm.base_url else None

    async def aclose(self) -> None:
        """Stop supervising, stop the local server, close the clients."""
        for old in self._retired:
            await old.aclose()
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        if self.local is not None:
            await asyncio.to_thread(self.local.stop)
        if self.backend is not None:
            await self.backend.aclose()


def _remote_backend(settings: Settings, transport: httpx.AsyncBaseTransport | None) -> OpenAICompatBackend:
    """The client for the configured server; Ollama is asked for a context.max_tokens window."""
    return OpenAICompatBackend(settings.llm, transport=transport, context_wish=settings.context.max_tokens)


def _local_server(settings: Settings) -> tuple[LocalModelServer, bool]:
    local = settings.local
    demo = local.model_path is None
    path = demo_model_path() if demo else local.model_path
    assert path is not None
    server = LocalModelServer(path, n_ctx=local.n_ctx, n_threads=local.n_threads,
                              startup_timeout_s=local.startup_timeout_s, alias=DEMO_ALIAS if demo else None,
                              chat_format=DEMO_CHAT_FORMAT if demo else None,
                              log_path=settings.data_dir / "logs" / "llama_server.log",
                              prompt_cache_mb=local.prompt_cache_mb if local.prompt_cache_mb is not None
                              else prompt_cache_mb(path, local.n_ctx))
    return server, demo


async def start_runtime(settings: Settings, transport: httpx.AsyncBaseTransport | None = None) -> LLMRuntime:
    """Build the backend; start and supervise llama-cpp-python when a local model is configured."""
    if settings.local.model_path is None and not settings.local.demo:
        if not settings.llm.base_url:
            return LLMRuntime()
        return LLMRuntime(backend=_remote_backend(settings, transport))
    server, demo = await asyncio.to_thread(_local_server, settings)
    await asyncio.to_thread(server.start)
    runtime = LLMRuntime(local=server, demo=demo,
                         label=DEMO_LABEL if demo else f"Built-in: {server.model_path.name}")
    # It is llama-cpp-python, and NeuralRP knows its GGUF and chat format: Continue can work there (gguf.py).
    backend = OpenAICompatBackend(settings.llm, base_url=server.base_url, context_length=settings.local.n_ctx,
                                  kind="llamacpp_python", local_model=LocalModel(server.model_path, server.chat_format))
    runtime.backend = backend
    # Detect now, while the server is idle: llama-cpp-python answers any request (even GET /v1/models) only
    # between generations, so the model info is learnt once here and reused.
    try:
        await backend.info()
    except BackendError as e:
        log.warning("the built-in model server did not describe itself (%s); detection runs on first use", e.message)
    runtime._supervisor = asyncio.create_task(server.supervise(), name="local-llm-supervisor")
    log.info("%s serving at %s", runtime.label, server.base_url)
    return runtime
