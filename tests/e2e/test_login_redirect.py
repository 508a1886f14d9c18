"""Issue 20: after logging in, `?next=` only ever leads to a page of this server, judged after Chromium's own URL
normalization (tab, CR and LF dropped, backslashes read as slashes, `//` meaning another host)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING
from urllib.parse import quote

import httpx
import pytest

from neuralrp.app import create_app
from neuralrp.config import load_settings
from tests.e2e.conftest import FAKE_LLM_URL, _fake_llm
from tests.fakes import LiveServer

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.playwright

TOKEN = "e2e-login-redirect-token-0123456789"
HOSTILE = ["/\t/evil.example/", "/\r/evil.example/", "/\n/evil.example/", "/\\evil.example/", "/\\\\evil.example/",
           "//evil.example/", "/.//evil.example/", "https://evil.example/",
           "\t//evil.example/", "javascript:alert(1)", "/\t\\evil.example"]


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An app that needs its access token."""
    overrides = {"paths": {"data_dir": str(tmp_path_factory.mktemp("login-data"))}, "llm": {"base_url": FAKE_LLM_URL},
                 "security": {"access_token": TOKEN}}
    app = create_app(load_settings(overrides=overrides, environ={}), llm_transport=httpx.MockTransport(_fake_llm))
    with LiveServer(app) as server:
        yield server.url


def _log_in(page: Page, next_value: str) -> str:
    """Open the login page with ?next=, log in, and return where the browser ends."""
    page.goto(f"/login.html?next={quote(next_value, safe='')}")
    page.fill("#login-token", TOKEN)
    page.click("button[type=submit]")
    page.wait_for_function("() => location.pathname !== '/login.html'")
    return str(page.evaluate("location.origin + location.pathname + location.search"))


@pytest.mark.parametrize("next_value", HOSTILE)
def test_hostile_next_stays_on_this_server(open_page: Callable[..., Page], app_url: str, next_value: str) -> None:
    assert _log_in(open_page(), next_value) == app_url + "/"


def test_local_next_is_followed(open_page: Callable[..., Page], app_url: str) -> None:
    page = open_page()
    assert _log_in(page, "/favicon.svg?v=1#top") == app_url + "/favicon.svg?v=1"
    assert page.evaluate("location.hash") == "#top"
