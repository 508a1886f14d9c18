"""The web shell in a real browser: navigation, key controls, the status view, phone layout, safety."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.e2e.conftest import PHONE, PageLog, expect

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page, Route

pytestmark = pytest.mark.playwright

VIEWS = [
    # (nav link, route, page heading)
    ("Chat", "chat", "Chat"),
    ("Library", "library", "Library"),
    ("Search", "search", "Search"),
    ("Images", "images", "Images"),
    ("Settings", "settings", "Settings"),
    ("Status", "status", "System status"),
]


def main_nav(page: Page) -> Locator:
    return page.get_by_role("navigation", name="Main")


def fact(page: Page, term: str) -> Locator:
    """The <dd> that follows the <dt> with exactly this text."""
    return page.locator("dt", has_text=re.compile(f"^{re.escape(term)}$")).locator("xpath=following-sibling::dd[1]")


def fetch_status(base_url: str) -> dict[str, Any]:
    response = httpx.get(f"{base_url}/api/system/status", timeout=10)
    response.raise_for_status()
    return response.json()  # type: ignore[no-any-return]


def test_root_redirects_to_chat_and_nav_has_six_links(page: Page, page_log: PageLog) -> None:
    page.goto("/")
    expect(page).to_have_url(re.compile(r"#/chat$"))
    nav = main_nav(page)
    expect(nav).to_be_visible()
    for name, route, _ in VIEWS:
        link = nav.get_by_role("link", name=name, exact=True)
        expect(link).to_be_visible()
        expect(link).to_have_attribute("href", f"#/{route}")
    expect(nav.get_by_role("link")).to_have_count(len(VIEWS))
    expect(page.locator("#conn-indicator")).to_have_attribute("data-state", "online")
    page_log.assert_clean()


@pytest.mark.parametrize(("link", "route", "heading"), VIEWS)
def test_nav_link_shows_its_view(page: Page, page_log: PageLog, link: str, route: str, heading: str) -> None:
    page.goto("/#/chat" if route != "chat" else "/#/status")
    nav_link = main_nav(page).get_by_role("link", name=link, exact=True)
    nav_link.click()
    expect(page).to_have_url(re.compile(f"#/{route}$"))
    expect(page.get_by_role("heading", level=1, name=heading)).to_be_visible()
    expect(nav_link).to_have_attribute("aria-current", "page")
    expect(main_nav(page).locator("[aria-current=page]")).to_have_count(1)
    expect(page).to_have_title(f"{link} · NeuralRP")
    page_log.assert_clean()


def test_key_controls_have_accessible_names(page: Page, page_log: PageLog) -> None:
    page.goto("/#/chat")
    expect(page.get_by_text("No chats yet")).to_be_visible()
    new_chat = page.get_by_role("button", name="New chat")
    expect(new_chat).to_be_visible()
    new_chat.click()
    expect(page.get_by_role("dialog", name="New chat")).to_be_visible()
    page.keyboard.press("Escape")

    main_nav(page).get_by_role("link", name="Library").click()
    expect(page.get_by_role("button", name="Import")).to_be_visible()
    expect(page.get_by_role("link", name="Settings")).to_be_visible()
    page.goto("/#/images")
    expect(page.get_by_text("No images yet")).to_be_visible()
    page_log.assert_clean()


def test_status_view_shows_the_api_report(page: Page, page_log: PageLog, live_server: str) -> None:
    report = fetch_status(live_server)
    page.goto("/#/status")
    expect(fact(page, "Version")).to_have_text(report["version"])
    expect(fact(page, "Schema version")).to_have_text(str(report["schema_version"]))
    expect(fact(page, "Python")).to_have_text(report["python"])
    expect(page.locator(".health")).to_have_attribute("data-health", report["health"])
    expect(page.get_by_text("NeuralRP is healthy")).to_be_visible()

    llm = page.locator(".backend-card", has_text="Text generation (LLM)")
    expect(llm.get_by_text("Reachable", exact=True)).to_be_visible()
    expect(llm.get_by_text(report["backends"]["llm"]["detail"])).to_be_visible()
    images = page.locator(".backend-card", has_text="Images (AUTOMATIC1111)")
    expect(images.get_by_text("Not configured", exact=True)).to_be_visible()
    expect(images.get_by_text(report["backends"]["images"]["hint"])).to_be_visible()

    expect(page.locator(".count[data-table=characters] .count-value")).to_have_text("0")
    expect(page.locator(".count")).to_have_count(len(report["database"]["counts"]))
    expect(fact(page, "Size")).to_have_text(re.compile(r"^\d+(\.\d)? (B|KiB|MiB)$"))
    expect(fact(page, "Free")).to_have_text(re.compile(r"^\d+(\.\d)? (KiB|MiB|GiB|TiB)$"))

    with page.expect_response("**/api/system/status"):
        page.get_by_role("button", name="Refresh").click()
    expect(fact(page, "Version")).to_have_text(report["version"])
    page_log.assert_clean()


def test_phone_layout_has_a_usable_bottom_nav(phone_page: Page, page_log: PageLog) -> None:
    page = phone_page
    page.goto("/")
    nav = main_nav(page)
    expect(nav).to_be_visible()
    box = nav.bounding_box()
    assert box is not None
    assert box["y"] + box["height"] == pytest.approx(PHONE["height"], abs=1), "nav sits at the bottom"
    for name, _, _ in VIEWS:
        link_box = nav.get_by_role("link", name=name, exact=True).bounding_box()
        assert link_box is not None
        assert link_box["x"] >= 0 and link_box["x"] + link_box["width"] <= PHONE["width"]
        assert link_box["height"] >= 44, "touch target"
    for name, route, heading in VIEWS:
        nav.get_by_role("link", name=name, exact=True).tap()
        expect(page).to_have_url(re.compile(f"#/{route}$"))
        expect(page.get_by_role("heading", level=1, name=heading)).to_be_visible()
        if route == "status":
            expect(page.locator(".health")).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], f"{route} overflows"
    page_log.assert_clean()


def test_keyboard_focus_is_visible(page: Page, page_log: PageLog) -> None:
    page.goto("/#/chat")
    library = main_nav(page).get_by_role("link", name="Library", exact=True)
    for _ in range(10):
        page.keyboard.press("Tab")
        if library.evaluate("node => node === document.activeElement"):
            break
    expect(library).to_be_focused()
    assert library.evaluate("node => getComputedStyle(node).outlineStyle") == "solid"
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1, name="Library")).to_be_focused()
    page_log.assert_clean()


def test_unknown_route_says_not_found(page: Page, page_log: PageLog) -> None:
    page.goto("/#/nowhere")
    expect(page.get_by_role("heading", level=1, name="Page not found")).to_be_visible()
    expect(main_nav(page).locator("[aria-current=page]")).to_have_count(0)
    page.get_by_role("link", name="Go back").click()
    expect(page).to_have_url(re.compile(r"#/chat$"))
    page_log.assert_clean()


def test_banner_when_the_server_is_unreachable(page: Page) -> None:
    page.route("**/api/**", lambda route: route.abort())
    page.goto("/#/status")
    banner = page.locator("#conn-banner")
    expect(banner).to_be_visible()
    expect(banner).to_have_attribute("role", "alert")
    expect(banner).to_contain_text("Cannot reach the NeuralRP server")
    expect(page.locator("#conn-indicator")).to_have_attribute("data-state", "offline")

    page.unroute("**/api/**")
    banner.get_by_role("button", name="Retry now").click()
    expect(banner).to_be_hidden()
    expect(page.get_by_text("Reconnected to the NeuralRP server.")).to_be_visible()
    expect(fact(page, "Version")).to_be_visible()  # the status view reloads itself on reconnect


def test_api_error_detail_is_shown_as_text(page: Page) -> None:
    payload = '<img src=x onerror="window.__pwned = 1"> backend exploded'

    def fail(route: Route) -> None:
        route.fulfill(
            status=503, content_type="application/json", body=json.dumps({"error": "BackendError", "detail": payload})
        )

    page.route("**/api/system/status", fail)
    page.goto("/#/status")
    error = page.locator(".status-body").get_by_role("alert")
    expect(error).to_contain_text(payload)
    assert page.locator("img[src=x]").count() == 0
    assert page.evaluate("window.__pwned") is None

    # api() turns the error JSON into a toast carrying the human sentence.
    detail = page.evaluate(
        """async () => {
            const { get } = await import('/js/api.js');
            try { await get('/api/system/status'); } catch (err) { return [err.name, err.status, err.detail]; }
        }"""
    )
    assert detail == ["ApiError", 503, payload]
    expect(page.locator(".toast-error")).to_contain_text(payload)
    assert page.locator("img[src=x]").count() == 0


def test_status_view_renders_untrusted_backend_text_safely(page: Page, page_log: PageLog, live_server: str) -> None:
    report = fetch_status(live_server)
    report["backends"]["llm"].update(detail="<b id=bold>bold</b>", hint="<script>window.__pwned=1</script>")

    page.route("**/api/system/status", lambda route: route.fulfill(json=report))
    page.goto("/#/status")
    expect(page.get_by_text("<b id=bold>bold</b>")).to_be_visible()
    expect(page.get_by_text("<script>window.__pwned=1</script>")).to_be_visible()
    assert page.locator("#bold").count() == 0
    assert page.evaluate("window.__pwned") is None
    page_log.assert_clean()


def test_dom_builder_refuses_unsafe_input(page: Page, page_log: PageLog) -> None:
    page.goto("/")
    result = page.evaluate(
        """async () => {
            const { el } = await import('/js/dom.js');
            const refused = (fn) => { try { fn(); return false; } catch { return true; } };
            const text = el('p', {}, '<b>hi</b>', 42);
            let clicks = 0;
            const button = el('button', { on: { click: () => { clicks += 1; } } }, 'x');
            button.click();
            return {
                onclick: refused(() => el('a', { onclick: 'alert(1)' })),
                onMixedCase: refused(() => el('img', { OnError: 'alert(1)' })),
                jsHref: refused(() => el('a', { href: 'javascript:alert(1)' })),
                jsHrefObfuscated: refused(() => el('a', { href: ' JaVa\\tScRiPt:alert(1)' })),
                htmlDataUrl: refused(() => el('a', { href: 'data:text/html,<script>1</script>' })),
                script: refused(() => el('script', {}, 'alert(1)')),
                srcdoc: refused(() => el('div', { srcdoc: '<b>' })),
                safeHref: el('a', { href: '#/chat' }).getAttribute('href'),
                imageDataUrl: !refused(() => el('img', { src: 'data:image/png;base64,AAAA' })),
                text: text.textContent,
                childElements: text.children.length,
                clicks,
            };
        }"""
    )
    assert result == {
        "onclick": True,
        "onMixedCase": True,
        "jsHref": True,
        "jsHrefObfuscated": True,
        "htmlDataUrl": True,
        "script": True,
        "srcdoc": True,
        "safeHref": "#/chat",
        "imageDataUrl": True,
        "text": "<b>hi</b>42",
        "childElements": 0,
        "clicks": 1,
    }
    page_log.assert_clean()


def test_screenshots(open_page: Callable[..., Page], page_log: PageLog, screenshot_dir: Path) -> None:
    shots = []
    for label, page in (
        ("desktop", open_page()),
        ("phone", open_page(PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)),
    ):
        for route in ("chat", "library", "status"):
            page.goto(f"/#/{route}")
            if route == "status":
                expect(fact(page, "Version")).to_be_visible()
            path = screenshot_dir / f"{label}-{route}.png"
            page.screenshot(path=str(path), full_page=label == "desktop", animations="disabled")
            shots.append(path)
    assert all(p.stat().st_size > 5_000 for p in shots)
    page_log.assert_clean()
