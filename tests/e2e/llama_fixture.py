"""Session fixture `real_llama`: the demo GGUF served by a real llama-cpp-python server.

Reuse it from any e2e module with::

    from tests.e2e.llama_fixture import real_llama  # noqa: F401

and mark each parameter that names it with ``# noqa: F811`` (ruff sees it as shadowing the import).
The server's own output goes to ``llama_server.log`` in a temporary folder.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from neuralrp.llm.demo_model import DEMO_ALIAS, DEMO_CHAT_FORMAT, demo_model_path
from neuralrp.llm.local_server import LocalModelServer

N_CTX = 1024


@pytest.fixture(scope="session")
def real_llama(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalModelServer]:
    """A started LocalModelServer (the SmolLM2 demo, n_ctx 1024), shared by the whole session."""
    # No importorskip: CI installs the [local] extra, and a missing server must fail loudly, never skip.
    models_dir = tmp_path_factory.mktemp("models")
    server = LocalModelServer(
        demo_model_path(),
        n_ctx=N_CTX,
        n_threads=min(4, os.cpu_count() or 1),
        alias=DEMO_ALIAS,
        chat_format=DEMO_CHAT_FORMAT,
        log_path=models_dir / "llama_server.log",
        startup_timeout_s=120,
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()
