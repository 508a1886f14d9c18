"""Issue 20, base URLs: http/https only from the config file, the environment and the settings API alike, and a
base URL moved to another host forgets the credentials entered for the old one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from neuralrp.app import create_app
from neuralrp.config import load_settings
from neuralrp.errors import ConfigError

BAD = ["file:///etc/passwd", "gopher://127.0.0.1:70/x", "javascript:alert(1)", "ftp://host/", "http://", "//host/x",
       "127.0.0.1:5000"]


@pytest.mark.parametrize("url", BAD)
@pytest.mark.parametrize("key", ["llm.base_url", "images.base_url"])
def test_config_file_and_env_refuse_other_schemes(tmp_path: Path, url: str, key: str) -> None:
    section, name = key.split(".")
    config = tmp_path / "config.yaml"
    config.write_text(f"{section}:\n  {name}: '{url}'\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=key.replace(".", r"\.") + ".*http:// or https://"):
        load_settings(config, environ={})
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_settings(environ={f"NEURALRP_{section.upper()}_{name.upper()}": url})


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = load_settings(overrides={"paths": {"data_dir": str(tmp_path / "data")},
                                        "llm": {"base_url": "http://127.0.0.1:9/v1", "api_key": "sk-old-host"},
                                        "images": {"base_url": "http://127.0.0.1:9", "password": "pw"}},
                             environ={})
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as test_client:
        yield test_client


@pytest.mark.parametrize("url", BAD)
def test_settings_api_refuses_other_schemes(client: TestClient, url: str) -> None:
    refused = client.put("/api/settings", json={"llm": {"base_url": url}})
    assert refused.status_code == 422 and "llm.base_url" in refused.json()["detail"]
    assert "http:// or https://" in refused.json()["detail"]
    current = client.app.state.services.live_settings.current  # type: ignore[attr-defined]
    assert current.llm.base_url == "http://127.0.0.1:9/v1" and current.llm.api_key == "sk-old-host"


def test_new_host_clears_the_key_same_host_keeps_it(client: TestClient) -> None:
    live = client.app.state.services.live_settings  # type: ignore[attr-defined]
    same = client.put("/api/settings", json={"llm": {"base_url": "https://127.0.0.1:9/other", "api_key": "***"}})
    assert same.status_code == 200 and live.current.llm.api_key == "sk-old-host"
    moved = client.put("/api/settings", json={"llm": {"base_url": "http://evil.example:9/v1", "api_key": "***"},
                                              "images": {"base_url": "http://evil.example:7860"}})
    assert moved.status_code == 200, moved.text
    assert live.current.llm.api_key is None and live.current.images.password is None
    assert moved.json()["values"]["llm"]["api_key"] is None
    given = client.put("/api/settings", json={"llm": {"base_url": "http://new.example/v1", "api_key": "sk-new"}})
    assert given.status_code == 200 and live.current.llm.api_key == "sk-new"


def test_resetting_a_base_url_to_another_host_drops_the_ui_key_only(client: TestClient) -> None:
    live = client.app.state.services.live_settings  # type: ignore[attr-defined]
    client.put("/api/settings", json={"llm": {"base_url": "http://other.example/v1", "api_key": "sk-for-other"}})
    assert live.current.llm.api_key == "sk-for-other"
    assert client.delete("/api/settings/llm/base_url").status_code == 200
    assert live.current.llm.base_url == "http://127.0.0.1:9/v1"
    assert live.current.llm.api_key == "sk-old-host"  # the config file's own key for its own host
