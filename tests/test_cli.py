"""The CLI: help, doctor, and a real `neuralrp serve` process answering HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from neuralrp import __version__
from neuralrp.cli import cli
from neuralrp.llm.local_server import free_port

COMMANDS = ("serve", "migrate", "config", "doctor", "import", "export", "prompt", "reindex")


def test_help_lists_commands() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for name in COMMANDS:
        assert f"  {name} " in result.output


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_has_help_and_is_in_readme(name: str) -> None:
    command = cli.commands[name]
    assert command.help and command.help.strip()
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    assert f"neuralrp {name}" in readme


def test_version_option() -> None:
    result = CliRunner().invoke(cli, ["--version"])
    assert __version__ in result.output


def test_doctor_reports_down_backend_in_one_line(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    env = {"NEURALRP_PATHS_DATA_DIR": str(tmp_path / "d"), "NEURALRP_LLM_BASE_URL": f"http://127.0.0.1:{port}"}
    result = CliRunner().invoke(cli, ["doctor"], env=env)
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if "llm backend" in line]
    assert len(lines) == 1
    assert lines[0].startswith("[FAIL] llm backend: cannot connect to")
    assert "start the llm server or fix llm.base_url" in lines[0]
    assert "[ok  ] sqlite-vec: loaded v0.1" in result.output


def test_doctor_unconfigured_backend_says_how_to_fix(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["doctor"], env={"NEURALRP_PATHS_DATA_DIR": str(tmp_path / "d")})
    assert result.exit_code == 1
    assert "[FAIL] llm backend: not configured -> set llm.base_url" in result.output
    assert "[warn] images backend: not configured" in result.output


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEURALRP_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "neuralrp", "serve", "--port", str(port), "--data-dir", str(tmp_path / "d")],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(url + "/api/system/health", timeout=1)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_serve_answers_status(served: str) -> None:
    body = httpx.get(served + "/api/system/status", timeout=10).json()
    assert body["version"] == __version__
    assert body["schema_version"] >= 1


def test_serve_refuses_config_typo(tmp_path: Path) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text("server:\n  prot: 8001\n", encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "neuralrp", "--config", str(cfg), "serve"],
        capture_output=True, text=True, timeout=30,
    )
    assert proc.returncode != 0
    assert "unknown key 'server.prot'" in proc.stderr


def test_doctor_checks_built_in_model_path(tmp_path: Path) -> None:
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"NOTAGGUF")
    env = {"NEURALRP_PATHS_DATA_DIR": str(tmp_path / "d"), "NEURALRP_LOCAL_MODEL_PATH": str(fake)}
    result = CliRunner().invoke(cli, ["doctor"], env=env)
    assert result.exit_code == 1
    line = next(x for x in result.output.splitlines() if "llm backend" in x)
    assert line.startswith("[FAIL] llm backend:") and "model.gguf" in line
