"""`neuralrp danbooru fetch` through click's CliRunner, against the fake Danbooru API."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner, Result

from neuralrp.cli import cli
from tests.fakes.fake_danbooru import FakeDanbooru


def invoke(fake: FakeDanbooru, args: list[str], env: dict[str, str] | None = None,
           sleeps: list[float] | None = None) -> Result:
    obj = {"danbooru_transport": fake.transport(), "danbooru_sleep": (sleeps if sleeps is not None else []).append}
    return CliRunner().invoke(cli, ["danbooru", "fetch", "--delay", "0", "--base-url", "https://danbooru.test",
                                    *args], obj=obj, env=env or {})


def test_fetch_writes_the_dataset_into_the_data_dir(tmp_path: Path) -> None:
    fake = FakeDanbooru()
    result = invoke(fake, ["--limit", "2", "--posts", "4"],
                    env={"DANBOORU_LOGIN": "alice", "DANBOORU_API_KEY": "k3y"})
    assert result.exit_code == 0, result.output
    target = tmp_path / "data" / "danbooru" / "characters.json"  # cwd is tmp_path; data_dir defaults to ./data
    assert f"wrote 2 characters to {target}" in result.output
    assert "[1/2] hatsune_miku: female" in result.output
    names = [c["name"] for c in json.loads(target.read_text())["characters"]]
    assert names == ["hatsune_miku", "hakurei_reimu"]
    assert [dict(r.url.params) for r in fake.requests][1:] == [{"tags": "hatsune_miku", "limit": "4"},
                                                                {"tags": "hakurei_reimu", "limit": "4"}]


def test_options_beat_the_environment_and_tags_pick_characters(tmp_path: Path) -> None:
    fake = FakeDanbooru(login="bob", api_key="other")
    out = tmp_path / "mine.json"
    result = invoke(fake, ["--login", "bob", "--api-key", "other", "--tags", "kirito, saber_(fate)",
                           "--out", str(out)], env={"DANBOORU_LOGIN": "alice", "DANBOORU_API_KEY": "k3y"})
    assert result.exit_code == 0, result.output
    assert [c["name"] for c in json.loads(out.read_text())["characters"]] == ["kirito", "saber_(fate)"]
    assert fake.params(0) == {"search[name_comma]": "kirito,saber_(fate)", "limit": "2"}


def test_missing_key_is_a_usage_error(tmp_path: Path) -> None:
    result = invoke(FakeDanbooru(), ["--login", "alice"])
    assert result.exit_code == 2
    assert "DANBOORU_API_KEY" in result.output


def test_bad_key_and_rate_limit_fail_cleanly(tmp_path: Path) -> None:
    out = tmp_path / "c.json"
    result = invoke(FakeDanbooru(), ["--login", "alice", "--api-key", "wrong", "--out", str(out)])
    assert result.exit_code == 1
    assert "refused the login or API key (HTTP 401" in result.output
    assert "nothing was written" in result.output and not out.exists()
    limited = FakeDanbooru()
    limited.fault("rate_limit", retry_after="5", times=-1)
    sleeps: list[float] = []
    result = invoke(limited, ["--login", "alice", "--api-key", "k3y", "--out", str(out)], sleeps=sleeps)
    assert result.exit_code == 1 and "429 (rate limit)" in result.output
    assert sleeps == [5.0, 5.0, 5.0] and not out.exists()


def test_help_lists_the_group() -> None:
    result = CliRunner().invoke(cli, ["danbooru", "--help"])
    assert result.exit_code == 0 and "fetch" in result.output
