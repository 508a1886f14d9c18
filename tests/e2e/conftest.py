"""Browser fixtures: the real app on a loopback port and headless Debian chromium driven by Playwright."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from neuralrp.app import create_app
from neuralrp.config import load_settings
from tests.fakes.live import LiveServer

if TYPE_CHECKING:
    from playwright.sync_api import Browser, ConsoleMessage, Error, Page

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
FAKE_LLM_URL = "http://llm.test/v1"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 375, "height": 800}


def _fake_llm(request: httpx.Request) -> httpx.Response:
    """An LLM server that answers the status probe."""
    return httpx.Response(200, json={"object": "list", "data": [{"id": "fake-model", "object": "model"}]})


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The NeuralRP app (fake reachable LLM, no image backend) served on a real port; yields its base URL."""
    data_dir = tmp_path_factory.mktemp("e2e-data")
    settings = load_settings(
        overrides={"paths": {"data_dir": str(data_dir)}, "llm": {"base_url": FAKE_LLM_URL}}, environ={}
    )
    app = create_app(settings, llm_transport=httpx.MockTransport(_fake_llm))
    with LiveServer(app) as server:
        yield server.url


def expect(target: Any) -> Any:
    """Playwright's expect, imported lazily so collection works without playwright installed."""
    from playwright.sync_api import expect as pw_expect

    return pw_expect(target)


@pytest.fixture(scope="module")
def fake() -> Any:
    """A fake llama.cpp server for the module's app (a module may define its own to pick another flavour)."""
    from tests.fakes import FakeLLM

    return FakeLLM("llamacpp")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Debian chromium (never `playwright install`); fails loudly when it is missing.

    Module-scoped on purpose: while sync Playwright runs it marks its event loop as running in the main
    thread, which breaks the asyncio tests that run after the browser modules. Stopping it clears that.
    """
    from playwright import sync_api

    assert CHROMIUM.exists(), f"{CHROMIUM} is not installed: apt-get install -y chromium (.ci/run does this)"
    playwright = sync_api.sync_playwright().start()
    chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    yield chromium
    chromium.close()
    playwright.stop()


@dataclass
class PageLog:
    """Console errors and uncaught page errors seen by every page a test opened."""

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.console_errors.append(f"{message.text} @ {message.location.get('url', '')}")

    def on_page_error(self, error: Error) -> None:
        self.page_errors.append(f"{error.name}: {error.message}")

    def assert_clean(self) -> None:
        """Fail when the page logged an error or threw."""
        assert self.console_errors == [], self.console_errors
        assert self.page_errors == [], self.page_errors


@pytest.fixture
def page_log() -> PageLog:
    """Errors collected from the pages opened in this test."""
    return PageLog()


@contextmanager
def serve_with_llm(fake: Any, data_dir: Path, **sections: dict[str, Any]) -> Iterator[str]:
    """NeuralRP on a real port, its LLM the fake on another; yields the app's URL."""
    with LiveServer(fake.app) as llm_server:
        overrides: dict[str, Any] = {"paths": {"data_dir": str(data_dir)}, **sections}
        overrides["llm"] = {"base_url": llm_server.url, **sections.get("llm", {})}
        with LiveServer(create_app(load_settings(overrides=overrides, environ={}))) as server:
            yield server.url


@pytest.fixture(scope="module")
def app_url(live_server: str) -> str:
    """The app the pages open; a test module overrides this fixture to serve its own app."""
    return live_server


@pytest.fixture
def open_page(browser: Browser, app_url: str, page_log: PageLog) -> Iterator[Callable[..., Page]]:
    """Factory: open_page(viewport=DESKTOP, **context_options) -> a fresh page on the module's app."""
    contexts = []

    def factory(viewport: dict[str, int] | None = None, **options: Any) -> Page:
        context = browser.new_context(viewport=viewport or DESKTOP, base_url=app_url, **options)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(10_000)
        page.on("console", page_log.on_console)
        page.on("pageerror", page_log.on_page_error)
        return page

    yield factory
    for context in contexts:
        context.close()


@pytest.fixture
def page(open_page: Callable[..., Page]) -> Page:
    """A desktop-sized page (1280x800) on the live server."""
    return open_page()


@pytest.fixture
def phone_page(open_page: Callable[..., Page]) -> Page:
    """A phone-sized page (375x800, touch, 2x pixels) on the live server."""
    return open_page(PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)


@pytest.fixture
def screenshot_dir(tmp_path: Path) -> Path:
    """Where screenshots go: $E2E_SCREENSHOT_DIR when set (to keep them), else the test's tmp dir."""
    target = Path(os.environ.get("E2E_SCREENSHOT_DIR") or tmp_path / "screenshots")
    target.mkdir(parents=True, exist_ok=True)
    return target
