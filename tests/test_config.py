"""Settings: file, environment, precedence and loud failures."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from neuralrp.cli import cli
from neuralrp.config import Settings, load_settings, masked_dump
from neuralrp.errors import ConfigError


def write(path: Path, data: object) -> Path:
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_defaults_without_file(tmp_path: Path) -> None:
    s = load_settings(environ={})
    assert s.server.host == "127.0.0.1"
    assert s.server.port == 8000
    assert s.context.summarize_at == 0.8
    assert s.context.keep_recent_turns == 6
    assert s.world.canon_law_every == 3


def test_yaml_file_is_read(tmp_path: Path) -> None:
    cfg = write(tmp_path / "c.yaml", {"llm": {"base_url": "http://127.0.0.1:5001"}, "context": {"max_tokens": 16384}})
    s = load_settings(cfg, environ={})
    assert s.llm.base_url == "http://127.0.0.1:5001"
    assert s.context.max_tokens == 16384
    assert s.context.absence_turns == 20  # untouched keys keep defaults


def test_config_path_from_env_var(tmp_path: Path) -> None:
    cfg = write(tmp_path / "elsewhere.yaml", {"server": {"port": 9001}})
    s = load_settings(environ={"NEURALRP_CONFIG": str(cfg)})
    assert s.server.port == 9001


def test_named_config_file_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="missing.yaml: config file not found"):
        load_settings(tmp_path / "missing.yaml", environ={})


@pytest.mark.parametrize(
    ("var", "value", "section", "key", "expected"),
    [
        ("NEURALRP_CONTEXT_MAX_TOKENS", "16384", "context", "max_tokens", 16384),
        ("NEURALRP_LLM_BASE_URL", "http://x:1", "llm", "base_url", "http://x:1"),
        ("NEURALRP_SAMPLING_REPETITION_PENALTY", "1.2", "sampling", "repetition_penalty", 1.2),
        ("NEURALRP_CONTEXT_KEEP_RECENT_TURNS", "4", "context", "keep_recent_turns", 4),
        ("NEURALRP_LOGGING_LOG_PROMPTS", "true", "logging", "log_prompts", True),
        ("NEURALRP_SAMPLING_STOP", '["\\nUser:", "###"]', "sampling", "stop", ["\nUser:", "###"]),
    ],
)
def test_env_overrides_keys_with_underscores(
    var: str, value: str, section: str, key: str, expected: object
) -> None:
    s = load_settings(environ={var: value})
    assert getattr(getattr(s, section), key) == expected


def test_precedence_overrides_beat_env_beat_file(tmp_path: Path) -> None:
    cfg = write(tmp_path / "c.yaml", {"server": {"port": 1111, "host": "127.0.0.2"}})
    env = {"NEURALRP_SERVER_PORT": "2222"}
    assert load_settings(cfg, environ=env).server.port == 2222
    assert load_settings(cfg, environ=env).server.host == "127.0.0.2"
    assert load_settings(cfg, environ=env, overrides={"server": {"port": 3333}}).server.port == 3333


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"llm": {"base_ur": "x"}}, "unknown key 'llm.base_ur'"),
        ({"contxt": {"max_tokens": 1}}, "unknown key 'contxt'"),
        ({"context": {"max_tokens": "lots"}}, "'context.max_tokens': Input should be a valid integer"),
        ({"server": {"port": 70000}}, "'server.port'"),
        ({"context": {"summarize_at": 2}}, "'context.summarize_at'"),
        ({"llm": {"backend": "kobold"}}, "'llm.backend'"),
    ],
)
def test_bad_file_values_name_the_key(tmp_path: Path, data: dict[str, object], message: str) -> None:
    cfg = write(tmp_path / "c.yaml", data)
    with pytest.raises(ConfigError) as err:
        load_settings(cfg, environ={})
    assert message in str(err.value)
    assert "c.yaml" in str(err.value)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"NEURALRP_CONTEXT_MAX_TOKEN": "1"}, "NEURALRP_CONTEXT_MAX_TOKEN: unknown key 'context.max_token'"),
        ({"NEURALRP_CONTXT_MAX_TOKENS": "1"}, "NEURALRP_CONTXT_MAX_TOKENS: unknown setting section"),
        ({"NEURALRP_SERVER_PORT": "eighty"}, "in NEURALRP_SERVER_PORT"),
        ({"NEURALRP_SAMPLING_STOP": "[oops"}, "NEURALRP_SAMPLING_STOP: 'sampling.stop' needs a JSON list"),
    ],
)
def test_bad_env_values_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(environ=env)
    assert message in str(err.value)


def test_invalid_yaml_and_non_mapping(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("llm: [unclosed", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(bad, environ={})
    bad.write_text("- just\n- a list\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_settings(bad, environ={})


def test_example_config_loads_and_equals_defaults(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parents[1] / "config.example.yaml"
    assert load_settings(example, environ={}) == Settings()


def test_every_setting_is_documented_in_example() -> None:
    example = Path(__file__).resolve().parents[1] / "config.example.yaml"
    documented = yaml.safe_load(example.read_text(encoding="utf-8"))
    for section, model in Settings.model_fields.items():
        assert section in documented, f"section {section} missing from config.example.yaml"
        keys = set(model.annotation.model_fields)  # type: ignore[union-attr]
        assert keys == set(documented[section]), f"{section}: {keys ^ set(documented[section])}"


def test_secrets_are_masked() -> None:
    s = load_settings(environ={"NEURALRP_LLM_API_KEY": "sekrit", "NEURALRP_SECURITY_ACCESS_TOKEN": "t0k"})
    dumped = masked_dump(s)
    assert dumped["llm"]["api_key"] == "***"
    assert dumped["security"]["access_token"] == "***"
    assert "sekrit" not in str(dumped)


def test_cli_config_typo_fails_loudly(tmp_path: Path) -> None:
    cfg = write(tmp_path / "c.yaml", {"sampling": {"temprature": 0.7}})
    result = CliRunner().invoke(cli, ["--config", str(cfg), "config", "show"])
    assert result.exit_code != 0
    assert "unknown key 'sampling.temprature'" in result.output


def test_cli_config_show_reflects_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEURALRP_CONTEXT_MAX_TOKENS", "12345")
    monkeypatch.setenv("NEURALRP_LLM_API_KEY", "sekrit")
    result = CliRunner().invoke(cli, ["config", "show", "--json"])
    assert result.exit_code == 0, result.output
    assert '"max_tokens": 12345' in result.output
    assert "sekrit" not in result.output
