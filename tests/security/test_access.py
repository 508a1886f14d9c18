"""Access control: loopback-only by default, the token when exposed, Host and Origin guards, no CORS."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from neuralrp.app import create_app
from neuralrp.cli import cli
from neuralrp.config import load_settings
from neuralrp.security import COOKIE, bind_problem, host_allowed, is_loopback, json_depth_exceeds

TOKEN = "s3cret-token-for-tests"
LOCAL = "http://127.0.0.1:8000"


def _client(tmp_path: Path, **security: Any) -> TestClient:
    settings = load_settings(overrides={"paths": {"data_dir": str(tmp_path / "data")}, "security": security},
                             environ={})
    return TestClient(create_app(settings), base_url=LOCAL)


@pytest.fixture
def locked(tmp_path: Path) -> Iterator[TestClient]:
    """An app with an access token."""
    with _client(tmp_path, access_token=TOKEN) as client:
        yield client


@pytest.fixture
def open_app(tmp_path: Path) -> Iterator[TestClient]:
    """An app without a token (loopback use)."""
    with _client(tmp_path) as client:
        yield client


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "example.org"])
def test_serve_on_a_public_address_with_a_short_token_exits_before_binding(host: str) -> None:
    env = {"NEURALRP_SECURITY_ACCESS_TOKEN": "fifteen-chars-x"}  # 15: one short of the minimum
    result = CliRunner().invoke(cli, ["serve", "--host", host, "--port", "1"], env=env)
    assert result.exit_code != 0
    assert "security.access_token" in result.output
    assert "NEURALRP_SECURITY_ACCESS_TOKEN" in result.output
    assert f"refusing to listen on {host}" in result.output and "at least 16" in result.output


def test_token_from_the_environment_allows_a_public_address(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEURALRP_SECURITY_ACCESS_TOKEN", TOKEN)
    monkeypatch.setenv("NEURALRP_SERVER_HOST", "0.0.0.0")
    assert bind_problem(load_settings(environ=None)) is None


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "::1", "[::1]", "localhost", "LOCALHOST"])
def test_loopback_needs_no_token(host: str) -> None:
    assert is_loopback(host)
    assert bind_problem(load_settings(overrides={"server": {"host": host}}, environ={})) is None


def test_blank_token_counts_as_none() -> None:
    settings = load_settings(overrides={"server": {"host": "0.0.0.0"}, "security": {"access_token": "  "}},
                             environ={})
    assert bind_problem(settings) is not None


def test_without_token_nothing_changes(open_app: TestClient) -> None:
    assert open_app.get("/api/characters").status_code == 200
    assert open_app.get("/").status_code == 200


def test_token_guards_api_and_ui(locked: TestClient) -> None:
    assert locked.get("/api/system/health").status_code == 200
    refused = locked.get("/api/characters")
    assert refused.status_code == 401
    assert refused.json()["error"] == "Unauthorized"
    page = locked.get("/", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"] == "/login.html"
    assert locked.get("/login.html").status_code == 200
    assert locked.get("/api/characters", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert locked.get("/api/characters", headers={"Authorization": "Bearer wrong"}).status_code == 401


def test_login_sets_a_strict_httponly_cookie(locked: TestClient) -> None:
    assert locked.post("/api/auth/login", json={"token": "nope"}).status_code == 401
    assert locked.get("/api/characters").status_code == 401
    done = locked.post("/api/auth/login", json={"token": TOKEN})
    assert done.status_code == 204
    cookie = done.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=") and TOKEN not in cookie
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    assert locked.get("/api/characters").status_code == 200
    assert locked.get("/", follow_redirects=False).status_code == 200
    locked.post("/api/auth/logout")
    locked.cookies.clear()
    assert locked.get("/api/characters").status_code == 401


@pytest.mark.parametrize("origin", ["http://evil.example", "null", "http://127.0.0.1:9999"])
def test_cross_site_writes_are_refused(open_app: TestClient, origin: str) -> None:
    refused = open_app.post("/api/characters", json={"name": "X"}, headers={"Origin": origin})
    assert refused.status_code == 403
    assert refused.json()["error"] == "CrossSiteRequest"
    assert "cross-site" in refused.json()["detail"]


def test_cross_site_referer_is_refused_and_same_origin_passes(open_app: TestClient) -> None:
    refused = open_app.delete("/api/characters/1", headers={"Referer": "https://evil.example/page"})
    assert refused.status_code == 403 and "Referer" in refused.json()["detail"]
    made = open_app.post("/api/characters", json={"name": "X"}, headers={"Origin": LOCAL})
    assert made.status_code == 201
    assert open_app.get("/api/characters", headers={"Origin": "http://evil.example"}).status_code == 200


def test_no_cors_headers(open_app: TestClient) -> None:
    headers = {"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"}
    for response in (open_app.get("/api/characters", headers=headers),
                     open_app.options("/api/characters", headers=headers)):
        assert not [k for k in response.headers if k.lower().startswith("access-control-")]
    assert open_app.get("/").headers["x-frame-options"] == "DENY"
    assert "script-src 'self'" in open_app.get("/").headers["content-security-policy"]


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8000", "localhost.evil.example"])
def test_dns_rebinding_hosts_are_refused(open_app: TestClient, host: str) -> None:
    refused = open_app.get("/api/characters", headers={"Host": host})
    assert refused.status_code == 403
    assert refused.json()["error"] == "HostNotAllowed"
    assert "security.allowed_hosts" in refused.json()["detail"]


@pytest.mark.parametrize("host", ["localhost:8000", "127.0.0.1", "[::1]:8000", "192.168.1.20:8000", "app.localhost"])
def test_loopback_and_ip_hosts_pass(open_app: TestClient, host: str) -> None:
    assert open_app.get("/api/system/health", headers={"Host": host}).status_code == 200


def test_allowed_hosts_setting(tmp_path: Path) -> None:
    with _client(tmp_path, allowed_hosts=["rp.lan"]) as client:
        assert client.get("/api/system/health", headers={"Host": "rp.lan:8000"}).status_code == 200
        assert client.get("/api/system/health", headers={"Host": "other.lan"}).status_code == 403
    settings = load_settings(overrides={"server": {"host": "box.lan"}}, environ={})
    assert host_allowed("box.lan:8000", settings, None)
    assert not host_allowed("evil.example", settings, "127.0.0.1")


def test_json_depth_scan_skips_strings() -> None:
    assert json_depth_exceeds(b"[" * 9 + b"]" * 9, 8)
    assert not json_depth_exceeds(b'["[[[[[[[[[[[[[[[[[[[[\\"[[[["]', 8)
