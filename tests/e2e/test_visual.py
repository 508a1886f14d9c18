"""Visual regression: every page (and the two busiest dialogs) at 1366x900, 1920x1080 and 390x844.

Each screenshot is compared with its committed baseline (tests/e2e/baselines/<page>-<width>.png) with a small
tolerance, and no element may stick out of the window or out of a clipping box at any size. The scene is fixed
(scenes.py): the same cards, chats and timestamps, the browser clock stopped, UTC, transitions off, and the
machine-dependent parts of the Status page (ports, paths, sizes) replaced. Set UPDATE_BASELINES=1 to accept new
pictures; look at them first (the failure message names the file).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.e2e.conftest import expect, serve_with_llm
from tests.e2e.scenes import BROWSER_NOW, Scene, fixed_clock, seed_scene
from tests.e2e.visual import SIZES, STILL_CSS, compare, overflow, settle, steady_backups, steady_status
from tests.fakes import FakeLLM

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

pytestmark = pytest.mark.playwright


def _open_cast(page: Page) -> None:
    page.get_by_role("button", name="Cast").click()
    expect(page.get_by_role("dialog", name="Cast")).to_be_visible()
    expect(page.locator(".cast-member")).to_have_count(2)


def _open_new_chat(page: Page) -> None:
    page.get_by_role("button", name="New chat").click()
    dialog = page.get_by_role("dialog", name="New chat")
    expect(dialog.locator("input[name=character]")).to_have_count(2)
    expect(dialog.get_by_text("Loading", exact=False)).to_have_count(0)


# name -> (address for the scene, what must be on screen first, an optional step after loading)
PAGES: dict[str, tuple[Callable[[Scene], str], str, Callable[[Page], None] | None]] = {
    "chat": (lambda s: "#/chat", ".chat-item", None),
    "chat-open": (lambda s: f"#/chat/{s.glade_chat}", ".msg[data-role=assistant] .swipes", None),
    "chat-group": (lambda s: f"#/chat/{s.market_chat}", ".msg[data-role=assistant]", None),
    "cast-dialog": (lambda s: f"#/chat/{s.market_chat}", ".msg[data-role=assistant]", _open_cast),
    "new-chat-dialog": (lambda s: "#/chat", ".chat-item", _open_new_chat),
    "library": (lambda s: "#/library", ".lib-card", None),
    "worlds": (lambda s: "#/library/worlds", ".lib-world", None),
    "character": (lambda s: f"#/library/character/{s.seraphina}", ".lib-chat-link", None),
    "world": (lambda s: f"#/library/world/{s.world}", ".lib-entry-title", None),
    "search": (lambda s: "#/search?q=glade", ".search-hit", None),
    "images": (lambda s: "#/images", ".img-gallery .state-title", None),
    "settings": (lambda s: "#/settings", ".settings-form", None),
    "status": (lambda s: "#/status", ".job", None),
}


@pytest.fixture(scope="module")
def scene_app(fake: FakeLLM, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Scene]]:
    """The app with the fixed scene; the fixed clock stays on so nothing stored later moves the pictures."""
    with fixed_clock() as clock, serve_with_llm(fake, tmp_path_factory.mktemp("visual")) as url:
        yield url, seed_scene(url, clock)


@pytest.fixture(scope="module")
def app_url(scene_app: tuple[str, Scene]) -> str:
    return scene_app[0]


@pytest.fixture(scope="module")
def contexts(browser: Browser, scene_app: tuple[str, Scene]) -> Iterator[dict[str, BrowserContext]]:
    """One browser context per size, UTC and en-US; the phone one is a touch device."""
    made: dict[str, BrowserContext] = {}
    for key, viewport in SIZES.items():
        phone = viewport["width"] < 600
        context = browser.new_context(viewport=viewport, base_url=scene_app[0], device_scale_factor=1,
                                      is_mobile=phone, has_touch=phone, timezone_id="UTC", locale="en-US",
                                      reduced_motion="reduce", color_scheme="dark")
        context.route("**/api/system/status", steady_status)
        context.route("**/api/backups", steady_backups)
        made[key] = context
    yield made
    for context in made.values():
        context.close()


@pytest.fixture
def shot_dir(screenshot_dir: Path) -> Path:
    return screenshot_dir


def show(context: BrowserContext, scene: Scene, name: str) -> Page:
    """Open one page of the scene at rest, ready for its picture."""
    address, ready, step = PAGES[name]
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.clock.set_fixed_time(BROWSER_NOW)
    page.goto("/" + address(scene))
    page.add_style_tag(content=STILL_CSS)
    expect(page.locator(ready).first).to_be_visible()
    settle(page)
    if step is not None:
        step(page)
        settle(page)
    return page


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("name", list(PAGES))
def test_page_matches_its_baseline_and_fits(contexts: dict[str, BrowserContext], scene_app: tuple[str, Scene],
                                            name: str, size: str, shot_dir: Path) -> None:
    page = show(contexts[size], scene_app[1], name)
    try:
        sticking_out = overflow(page)
        png = page.screenshot(full_page=True, animations="disabled", caret="hide")
    finally:
        page.close()
    assert sticking_out == [], f"{name} at {size}px:\n" + "\n".join(sticking_out)
    compare(png, f"{name}-{size}", shot_dir)


def test_the_overflow_check_finds_a_cut_off_element(contexts: dict[str, BrowserContext],
                                                     scene_app: tuple[str, Scene]) -> None:
    """A check that cannot fail proves nothing: a tool pushed past the chat header's edge must be reported."""
    page = show(contexts["1366"], scene_app[1], "chat-open")
    try:
        assert overflow(page) == []
        page.evaluate("""() => {
            const tools = document.querySelector('.chat-tools');
            tools.style.flexWrap = 'nowrap';
            tools.style.flex = 'none';
            for (let i = 0; i < 20; i += 1) tools.append(tools.firstElementChild.cloneNode(true));
        }""")
        found = overflow(page)
        page.evaluate("() => { document.querySelector('.chat-list-title').style.marginLeft = '3000px'; }")
        wider = overflow(page)
    finally:
        page.close()
    assert any("cut off" in line and "chat-tool" in line for line in found), found
    assert any("chat-list-title" in line for line in wider), wider


def test_the_comparison_tolerates_noise_and_catches_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Baseline matching itself: a few stray pixels pass, a changed block, a new size or no baseline fail."""
    import io

    import numpy as np
    from PIL import Image

    from tests.e2e import visual

    monkeypatch.delenv("UPDATE_BASELINES", raising=False)
    monkeypatch.setattr(visual, "BASELINES", tmp_path / "baselines")
    picture = np.full((200, 300, 3), 40, dtype=np.uint8)

    def encoded(pixels: np.ndarray) -> bytes:
        out = io.BytesIO()
        Image.fromarray(pixels).save(out, format="PNG")
        return out.getvalue()

    with pytest.raises(AssertionError, match="no baseline"):
        visual.compare(encoded(picture), "page-1366", tmp_path)
    monkeypatch.setenv("UPDATE_BASELINES", "1")
    assert visual.compare(encoded(picture), "page-1366", tmp_path).note == "baseline written"
    monkeypatch.delenv("UPDATE_BASELINES")
    noisy = picture.copy()
    noisy[0, :20] = 255  # 20 stray pixels: antialiasing-sized noise
    noisy[100, :] = 50  # a faint shift everywhere on one row, under the per-channel slack
    assert visual.compare(encoded(noisy), "page-1366", tmp_path).note == "matches"
    changed = picture.copy()
    changed[50:90, 50:90] = 200  # a 40x40 block: 2.7% of the picture
    with pytest.raises(AssertionError, match="of the pixels changed"):
        visual.compare(encoded(changed), "page-1366", tmp_path)
    assert (tmp_path / "page-1366.diff.png").is_file()
    with pytest.raises(AssertionError, match="its baseline 300x200"):
        visual.compare(encoded(np.full((220, 300, 3), 40, dtype=np.uint8)), "page-1366", tmp_path)
