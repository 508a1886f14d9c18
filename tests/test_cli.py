"""The CLI: help, doctor, and a real `neuralrp serve` process answering HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from neuralrp import __version__
from neuralrp.cli import cli
from neuralrp.llm.local_server import free_port
from tests.waiting import wait_until

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

    def answers() -> bool:
        try:
            httpx.get(url + "/api/system/health", timeout=5)
            return True
        except httpx.TransportError:
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            return False

    try:
        wait_until(answers, timeout=60, what="`neuralrp serve` to answer /api/system/health")
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


def test_config_show_includes_values_saved_on_the_settings_page(tmp_path: Path) -> None:
    from neuralrp.config import load_settings
    from neuralrp.ops.ui_settings import LiveSettings
    from neuralrp.services import open_database

    env = {"NEURALRP_PATHS_DATA_DIR": str(tmp_path / "d")}
    settings = load_settings(overrides={"paths": {"data_dir": str(tmp_path / "d")}}, environ={})
    live = LiveSettings(settings, open_database(settings))
    live.load()
    live.update({"sampling": {"max_tokens": 120}, "llm": {"api_key": "sk-secret"}})

    shown = CliRunner().invoke(cli, ["config", "show", "--json"], env=env)
    assert shown.exit_code == 0, shown.output
    data = json.loads(shown.output)
    assert data["sampling"]["max_tokens"] == 120
    assert "sk-secret" not in shown.output  # secrets stay masked
    yaml_out = CliRunner().invoke(cli, ["config", "show"], env=env).output
    assert yaml_out.startswith("# saved on the Settings page (over config.yaml and the environment): "
                               "llm.api_key, sampling.max_tokens\n")
    file_only = CliRunner().invoke(cli, ["config", "show", "--json", "--file-only"], env=env)
    assert json.loads(file_only.output)["sampling"]["max_tokens"] == 350


def test_config_show_without_a_database_shows_the_file_values(tmp_path: Path) -> None:
    env = {"NEURALRP_PATHS_DATA_DIR": str(tmp_path / "none"), "NEURALRP_SAMPLING_MAX_TOKENS": "99"}
    shown = CliRunner().invoke(cli, ["config", "show", "--json"], env=env)
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output)["sampling"]["max_tokens"] == 99
    assert not (tmp_path / "none").exists()  # showing settings creates nothing
