"""Issue 20, exposed mode: tokens of 16+ characters or a generated one, random server-side sessions that end on
logout, expiry and token change, and a login rate limit with backoff."""

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
from neuralrp.llm.local_server import free_port
from neuralrp.security import COOKIE, bind_problem
from neuralrp.sessions import FREE_TRIES, LoginLimiter, SessionStore

TOKEN = "a-long-enough-access-token-42"


class Clock:
    """A settable monotonic clock."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def locked(tmp_path: Path) -> Iterator[TestClient]:
    settings = load_settings(overrides={"paths": {"data_dir": str(tmp_path / "data")},
                                        "security": {"access_token": TOKEN}}, environ={})
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as client:
        yield client


def _login(client: TestClient, token: str = TOKEN) -> str:
    answer = client.post("/api/auth/login", json={"token": token})
    assert answer.status_code == 204, answer.text
    return answer.cookies[COOKIE]


def test_each_login_gets_its_own_random_session_that_logout_ends(locked: TestClient) -> None:
    first, second = _login(locked), _login(locked)
    assert first != second and TOKEN not in first and len(first) >= 40
    locked.cookies.clear()
    assert locked.get("/api/characters", cookies={COOKIE: first}).status_code == 200
    locked.post("/api/auth/logout", cookies={COOKIE: first})
    locked.cookies.clear()
    assert locked.get("/api/characters", cookies={COOKIE: first}).status_code == 401  # revoked on the server
    assert locked.get("/api/characters", cookies={COOKIE: second}).status_code == 200
    assert locked.get("/api/characters", cookies={COOKIE: "forged-value"}).status_code == 401


def test_a_token_change_ends_every_session(locked: TestClient) -> None:
    sid = _login(locked)
    locked.cookies.clear()
    locked.app.state.services.settings.security.access_token = "a-brand-new-token-of-30-chars!"  # type: ignore[attr-defined]
    assert locked.get("/api/characters", cookies={COOKIE: sid}).status_code == 401


def test_sessions_expire_and_are_bound_to_their_token() -> None:
    clock = Clock()
    store = SessionStore(ttl_s=60, clock=clock)
    sid = store.create(TOKEN)
    assert store.valid(sid, TOKEN) and not store.valid(sid + "x", TOKEN)
    assert not store.valid(store.create(TOKEN), "another token")
    clock.now += 61
    assert not store.valid(sid, TOKEN) and len(store) == 0


def test_login_backs_off_after_wrong_tokens(locked: TestClient) -> None:
    for _ in range(FREE_TRIES):
        assert locked.post("/api/auth/login", json={"token": "guess"}).status_code == 401
    assert locked.post("/api/auth/login", json={"token": "guess"}).status_code == 401  # earns the first lockout
    refused = locked.post("/api/auth/login", json={"token": TOKEN})
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
    assert "too many wrong tokens" in refused.json()["detail"]


def test_backoff_doubles_and_a_right_token_clears_it() -> None:
    clock = Clock()
    limiter = LoginLimiter(free_tries=2, max_backoff_s=8, clock=clock)
    assert [limiter.failed("a") for _ in range(7)] == [0, 0, 1, 2, 4, 8, 8]
    assert limiter.wait_s("a") == 8 and limiter.wait_s("b") == 0
    clock.now += 8
    assert limiter.wait_s("a") == 0
    limiter.succeeded("a")
    assert limiter.failed("a") == 0


@pytest.mark.parametrize("token, refused", [("x", True), ("fifteen-chars-x", True), ("sixteen-chars-xy", False)])
def test_exposed_tokens_need_16_characters(token: str, refused: bool) -> None:
    settings = load_settings(overrides={"server": {"host": "0.0.0.0"}, "security": {"access_token": token}},
                             environ={})
    problem = bind_problem(settings)
    assert (problem is not None) == refused
    if refused:
        assert "at least 16" in str(problem)
    loopback = load_settings(overrides={"security": {"access_token": token}}, environ={})
    assert bind_problem(loopback) is None


def test_exposed_serve_without_a_token_generates_and_prints_one(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    ran: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: ran.update(app=app, **kwargs))
    result = CliRunner().invoke(cli, ["serve", "--host", "0.0.0.0", "--port", str(free_port()),
                                      "--data-dir", str(tmp_path / "d")], env={"NEURALRP_SECURITY_ACCESS_TOKEN": ""})
    assert result.exit_code == 0, result.output
    assert ran["host"] == "0.0.0.0"
    printed = result.output.split("log in with it): ", 1)[1].split()[0]
    assert len(printed) >= 16
