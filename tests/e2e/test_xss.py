"""Hostile cards in a real browser: XSS payloads in every card, lore and chat field never run script.

A card whose every text field (and tags, alternate greetings, lorebook keys and content, the persona name,
the LLM's reply and the user's message) carries script payloads is created through the API. The library
grid, search results, card editor, world editor, a chat with its greeting, the prompt inspector and an image
with a hostile prompt and tags (gallery card, details, inpaint dialog) are
opened; every payload tries to bump `window.__xss` or call alert(), and CSS injection tries to hide the body.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.e2e.conftest import PageLog, expect, serve_with_llm
from tests.fakes import FakeA1111, FakeLLM, LiveServer

if TYPE_CHECKING:
    from playwright.sync_api import Dialog, Page

pytestmark = pytest.mark.playwright

BUMP = "window.__xss=(window.__xss||0)+1"
PAYLOADS = [
    f"<script>{BUMP}</script>",
    f"<img src=x onerror=\"{BUMP}\">",
    f"<svg onload=\"{BUMP}\"><circle r=1 /></svg>",
    f"<a href=\"javascript:{BUMP}\">click me</a>",
    f"javascript:{BUMP}",
    "</style><style>body{display:none}</style>",
    "</textarea><img src=x onerror=alert(1)>",
    "\"><iframe srcdoc=\"<script>parent.__xss=1</script>\"></iframe>",
    "{{user}}<img src=x onerror=alert('{{char}}')>{{char}}",
    f"*<img src=x onerror=\"{BUMP}\">* **<script>alert(1)</script>** `<b>code</b>`",
    f"> <details open ontoggle=\"{BUMP}\">quoted</details>",
    f"[link](javascript:{BUMP}) ![img](x\" onerror=\"{BUMP})",
]
EVIL = " ".join(PAYLOADS)
NAME = "Mal<img src=x onerror=alert(1)>ory"
# Resolves once every image has loaded or failed (so its onload/onerror has fired), then after the next frame
# and one more task (so toggle events and other queued handlers have run too).
SETTLED = """() => Promise.all(Array.from(document.images, (img) => img.complete ? null : new Promise((done) => {
    img.addEventListener("load", done, {once: true});
    img.addEventListener("error", done, {once: true});
}))).then(() => new Promise((done) => requestAnimationFrame(() => setTimeout(done))))"""
SINKS = ("script:not([src]), iframe, object, embed, img[src='x'], [onerror], [onload], [ontoggle], "
         "a[href^='javascript' i], style:not([data-app])")


def evil_card() -> dict[str, Any]:
    """A V2 card with a payload in every field, its lorebook too."""
    entries = [{"keys": [p[:60], "forest"], "secondary_keys": [p[:40]], "content": f"Lore {i}: {EVIL}",
                "comment": p, "name": p[:50], "enabled": True, "constant": True, "insertion_order": i, "id": i}
               for i, p in enumerate(PAYLOADS[:4])]
    data = {
        "name": NAME, "description": f"Description {EVIL}", "personality": f"Personality {EVIL}",
        "scenario": f"Scenario {EVIL}", "first_mes": f"*waves* Hello {{{{user}}}}! {EVIL}",
        "mes_example": f"<START>\n{{{{char}}}}: {EVIL}", "creator_notes": f"Notes {EVIL}",
        "system_prompt": f"System {EVIL}", "post_history_instructions": f"PHI {EVIL}",
        "alternate_greetings": [f"Alt {p}" for p in PAYLOADS], "tags": [p[:40] for p in PAYLOADS[:6]] + ["evil"],
        "creator": f"<b onmouseover=\"{BUMP}\">me</b>", "character_version": "<script>1</script>",
        "character_book": {"name": f"Book {PAYLOADS[1]}", "entries": entries}, "extensions": {},
    }
    return {"spec": "chara_card_v2", "spec_version": "2.0", "data": data}


@pytest.fixture(scope="module")
def app_url(fake: FakeLLM, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """NeuralRP on a real port, its LLM and image server fakes on two others."""
    with LiveServer(FakeA1111().app) as sd, \
            serve_with_llm(fake, tmp_path_factory.mktemp("xss-ui"), images={"base_url": sd.url}) as url:
        yield url


@pytest.fixture(scope="module")
def seeded(app_url: str, fake: FakeLLM) -> dict[str, Any]:
    """The evil character, its world, and a chat (greeting, evil user message, evil reply)."""
    made = httpx.post(f"{app_url}/api/characters", json=evil_card(), timeout=30)
    assert made.status_code == 201, made.text
    character = made.json()
    body = {"character_ids": [character["id"]], "persona": {"name": f"Ari<script>{BUMP}</script>"},
            "title": f"Chat <img src=x onerror=\"{BUMP}\">"}
    chat = httpx.post(f"{app_url}/api/chats", json=body, timeout=30)
    assert chat.status_code == 201, chat.text
    fake.enqueue(f"Reply {EVIL}")
    sent = httpx.post(f"{app_url}/api/chats/{chat.json()['id']}/messages",
                      json={"content": f"User {EVIL}", "stream": False}, timeout=30)
    assert sent.status_code < 300, sent.text
    image = httpx.post(f"{app_url}/api/images/generate", json={"prompt": f"Prompt {EVIL}", "negative_prompt": EVIL,
                                                              "chat_id": chat.json()["id"]}, timeout=30)
    assert image.status_code == 201, image.text
    tagged = httpx.patch(f"{app_url}/api/images/{image.json()['id']}", json={"tags": [p[:40] for p in PAYLOADS[:4]]},
                         timeout=30)
    assert tagged.status_code == 200, tagged.text
    return {"character": character, "chat": chat.json(), "image": tagged.json()}


@pytest.fixture
def guarded(page: Page) -> Iterator[tuple[Page, list[str]]]:
    """The page with `window.__xss = 0` before any script, and every dialog (alert/confirm) recorded."""
    dialogs: list[str] = []

    def on_dialog(dialog: Dialog) -> None:
        dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    page.add_init_script("window.__xss = 0;")
    page.on("dialog", on_dialog)
    yield page, dialogs


def assert_inert(page: Page, dialogs: list[str]) -> None:
    """No payload ran, no dangerous node was built from card text, and the page is still visible."""
    page.evaluate(SETTLED)  # any onerror/onload/ontoggle handler of an injected node has had its chance to run
    assert page.evaluate("window.__xss") == 0
    assert dialogs == []
    found = page.evaluate(f"Array.from(document.querySelectorAll({SINKS!r}), (n) => n.outerHTML.slice(0, 120))")
    assert found == []
    assert page.evaluate("getComputedStyle(document.body).display") != "none"
    expect(page.locator("#view")).to_be_visible()


def test_library_grid_search_and_editors_stay_inert(
        guarded: tuple[Page, list[str]], page_log: PageLog, seeded: dict[str, Any]) -> None:
    page, dialogs = guarded
    cid = seeded["character"]["id"]
    page.goto("/#/library")
    card = page.locator(f".lib-card[data-character-id='{cid}']")
    expect(card).to_contain_text(NAME)  # shown as text, not markup
    assert_inert(page, dialogs)

    page.goto("/#/library?q=onerror")
    expect(page.locator(f".lib-card[data-character-id='{cid}']")).to_be_visible()
    assert_inert(page, dialogs)

    page.goto(f"/#/library/character/{cid}")
    expect(page.get_by_role("heading", level=1)).to_contain_text(NAME)
    expect(page.locator("textarea").first).to_be_visible()
    values = page.locator("textarea").evaluate_all("els => els.map((e) => e.value)")
    assert any(PAYLOADS[0] in v for v in values)  # the raw text is editable as it is
    assert_inert(page, dialogs)

    world_id = seeded["character"].get("world_id")
    if world_id:
        page.goto(f"/#/library/world/{world_id}")
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        assert_inert(page, dialogs)

    page.get_by_role("link", name="Library").first.click()
    expect(page.locator(f".lib-card[data-character-id='{cid}']")).to_be_visible()
    assert_inert(page, dialogs)
    page_log.assert_clean()


def test_chat_greeting_reply_and_inspector_stay_inert(
        guarded: tuple[Page, list[str]], page_log: PageLog, seeded: dict[str, Any]) -> None:
    page, dialogs = guarded
    page.goto(f"/#/chat/{seeded['chat']['id']}")
    greeting = page.locator(".msg[data-role=assistant]").first
    expect(greeting.locator(".msg-text")).to_contain_text("<script>")
    expect(greeting.locator("em.action").first).to_have_text("waves")  # the safe Markdown subset still renders
    expect(page.locator(".msg[data-role=user] .msg-text").last).to_contain_text("User <script>")
    expect(page.locator(".msg[data-role=assistant] .msg-text").last).to_contain_text("Reply <script>")
    assert_inert(page, dialogs)

    page.get_by_role("button", name="Prompt").click()
    panel = page.get_by_role("dialog", name="Prompt inspector")
    expect(panel).to_be_visible()
    expect(panel.locator(".insp-item").first).to_be_visible()
    for item in panel.locator(".insp-item").all()[:8]:
        item.click()
    assert_inert(page, dialogs)

    page.get_by_role("link", name="Library").first.click()
    expect(page.locator(".lib-card").first).to_be_visible()
    assert_inert(page, dialogs)
    page_log.assert_clean()


def test_gallery_lightbox_details_and_inpaint_stay_inert(
        guarded: tuple[Page, list[str]], page_log: PageLog, seeded: dict[str, Any]) -> None:
    page, dialogs = guarded
    page.goto("/#/images")
    card = page.locator(f".img-card[data-image-id='{seeded['image']['id']}']")
    expect(card).to_contain_text("Prompt <script>")  # the prompt is shown as text
    card.get_by_text("Details", exact=True).click()
    assert_inert(page, dialogs)
    card.get_by_role("button", name="Inpaint").click()
    dialog = page.get_by_role("dialog", name="Inpaint")
    expect(dialog.get_by_label("Prompt", exact=True)).to_have_value(seeded["image"]["prompt"])
    assert_inert(page, dialogs)
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    page.goto(f"/#/chat/{seeded['chat']['id']}")
    expect(page.locator(".msg").last).to_be_visible()
    assert_inert(page, dialogs)
    page_log.assert_clean()

