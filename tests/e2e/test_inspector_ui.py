"""Prompt inspector, Summaries window, Cast panel and mode switch in a real browser.

The NeuralRP app runs on a real port against the fake llama.cpp server (also on a real port). Seraphina is
imported from the SillyTavern PNG card with her 4-entry lorebook, so a message that names its keys puts lore
sections in the next prompt. `context.keep_recent_turns` is 2 so a short chat has turns to fold.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.conftest import FIXTURES
from tests.e2e.conftest import DESKTOP, PHONE, PageLog, expect, serve_with_llm
from tests.e2e.visual import still
from tests.fakes import FakeLLM
from tests.waiting import wait_until

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

pytestmark = pytest.mark.playwright

HTTP_ERROR_LOG = re.compile(r"Failed to load resource: the server responded with a status of (4|5)\d\d ")
LORE_MESSAGE = "Seraphina, tell me about the Eldoria forest, its magic and the beasts in the dark."


@pytest.fixture(scope="module")
def app_url(fake: FakeLLM, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """NeuralRP on a real port with a short keep-recent window, its LLM the fake on another port."""
    with serve_with_llm(fake, tmp_path_factory.mktemp("inspector-ui"), context={"keep_recent_turns": 2}) as url:
        yield url


@pytest.fixture(scope="module")
def library(app_url: str) -> dict[str, int]:
    """Seraphina (PNG card with a lorebook, linked world) and Borin, imported once: name -> character id."""
    png = (FIXTURES / "cards" / "st_default_Seraphina.png").read_bytes()
    resp = httpx.post(f"{app_url}/api/characters/import", files={"file": ("Seraphina.png", png, "image/png")},
                      timeout=30)
    assert resp.status_code == 201, resp.text
    seraphina = resp.json()
    assert seraphina["world_id"] is not None
    ids = {"Seraphina": seraphina["id"]}
    for name, job in (("Borin", "smith"), ("Cyra", "seer")):
        card = {"name": name, "description": f"{name} is a {job}.", "personality": "proud, quick, warm",
                "first_mes": ""}
        made = httpx.post(f"{app_url}/api/characters", json=card, timeout=10)
        assert made.status_code == 201, made.text
        ids[name] = made.json()["id"]
    return ids


@pytest.fixture(autouse=True)
def _fresh_fake(fake: FakeLLM) -> Iterator[None]:
    yield
    fake.replies.clear()
    fake.clear_faults()




def api(app_url: str, method: str, path: str, **kwargs: Any) -> Any:
    resp = httpx.request(method, f"{app_url}{path}", timeout=30, **kwargs)
    assert resp.status_code < 300, resp.text
    return resp.json()


def new_chat(app_url: str, ids: list[int], title: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"character_ids": ids, "persona": {"name": "Ari"}}
    if title:
        body["title"] = title
    return api(app_url, "POST", "/api/chats", json=body)  # type: ignore[no-any-return]


def prompt_doc(app_url: str, chat_id: int) -> dict[str, Any]:
    return api(app_url, "GET", f"/api/chats/{chat_id}/prompt")  # type: ignore[no-any-return]


def add_turns(app_url: str, chat_id: int, texts: list[str]) -> None:
    """User messages through the API, each answered (non-streamed) by the fake."""
    for text in texts:
        api(app_url, "POST", f"/api/chats/{chat_id}/messages", json={"content": text, "stream": False})


def assert_clean(page_log: PageLog) -> None:
    """No script errors; Chromium's own "Failed to load resource" lines for expected 4xx/5xx answers are fine."""
    page_log.console_errors[:] = [e for e in page_log.console_errors if not HTTP_ERROR_LOG.match(e)]
    page_log.assert_clean()


def send(page: Page, text: str) -> None:
    page.get_by_label("Message", exact=True).fill(text)
    page.get_by_role("button", name="Send", exact=True).click()


def inspector(page: Page) -> Locator:
    return page.get_by_role("dialog", name="Prompt inspector")


def shown_kinds(panel: Locator) -> list[str]:
    return panel.locator(".insp-item").evaluate_all("els => els.map((e) => e.dataset.kind)")  # type: ignore[no-any-return]


def sync_inspector(page: Page, app_url: str, chat_id: int) -> dict[str, Any]:
    """Refresh the inspector until it shows the same total as the API; returns the API's prompt."""
    panel = inspector(page)

    def refreshed() -> tuple[str | None, dict[str, Any]]:
        doc = prompt_doc(app_url, chat_id)
        panel.get_by_role("button", name="Refresh").click()
        expect(panel.get_by_role("button", name="Refresh")).to_be_enabled()
        return panel.locator(".insp-total-tokens").text_content(), doc

    _, doc = wait_until(refreshed, until=lambda seen: seen[0] == f"{seen[1]['total_tokens']:,}", interval=0,
                        what="the inspector to show the API's prompt total")
    return doc


def test_inspector_matches_the_prompt_and_follows_mode_and_cast(
        open_page: Callable[..., Page], page_log: PageLog, app_url: str, library: dict[str, int]) -> None:
    chat = new_chat(app_url, [library["Seraphina"], library["Borin"]])
    page = open_page(permissions=["clipboard-read", "clipboard-write"])
    page.goto(f"/#/chat/{chat['id']}")
    prompt_button = page.get_by_role("button", name="Prompt")
    prompt_button.click()
    panel = inspector(page)
    expect(panel).to_be_visible()
    expect(prompt_button).to_have_attribute("aria-expanded", "true")
    before = prompt_doc(app_url, chat["id"])
    expect(panel.locator(".insp-item")).to_have_count(len(before["sections"]))
    expect(panel.locator(".insp-speaker")).to_contain_text(f"turn {before['turn']} ·")

    # a reply refreshes the open inspector: the next turn, with the lore named in the message
    send(page, LORE_MESSAGE)
    expect(page.get_by_role("button", name="Send", exact=True)).to_be_enabled(timeout=15_000)
    expect(panel.locator(".insp-speaker")).to_contain_text(f"turn {before['turn'] + 1} ·")
    expect(panel.locator(".insp-item[data-kind=lore]").first).to_be_visible()
    doc = sync_inspector(page, app_url, chat["id"])
    assert shown_kinds(panel) == [s["kind"] for s in doc["sections"]]
    expect(panel.locator(".insp-total-tokens")).to_have_text(f"{doc['total_tokens']:,}")
    expect(panel.locator(".insp-overview")).to_contain_text(f"of {doc['budget']:,} tokens")
    expect(panel.locator(".insp-overview")).to_contain_text(f"{doc['reply_reserve']:,} reserved for the reply")
    tokens = panel.locator(".insp-tokens").evaluate_all("els => els.map((e) => e.textContent)")
    assert tokens == [f"{s['tokens']:,} tok" for s in doc["sections"]]

    # the KV-cache prefix: the marker sits before the first section the server must read again (an ordinary
    # turn: the last reply, after the cached prompt), and lore is shown against its budget
    at = doc["prefix"]["index"]
    assert doc["prefix"]["ordinary"] and doc["sections"][at]["kind"] == "history"
    marker = panel.locator(".insp-break")
    expect(marker).to_have_count(1)
    expect(marker).to_contain_text("Prefix breaks here")
    expect(marker).to_contain_text(doc["prefix"]["reason"])
    expect(panel.locator(".insp-break + .insp-item")).to_have_attribute("data-kind", "history")
    assert panel.locator(".insp-sections > li").nth(at).get_attribute("class") == "insp-break"
    expect(panel.locator(".insp-cache")).to_contain_text(f"{doc['prefix']['kept_tokens']:,}")
    expect(panel.locator(".insp-lore-tokens")).to_have_text(f"{doc['lore']['tokens']:,}")
    expect(panel.locator(".insp-lore")).to_contain_text(f"of {doc['lore']['budget']:,} tokens")

    lore_index = next(i for i, s in enumerate(doc["sections"]) if s["kind"] == "lore")
    lore = doc["sections"][lore_index]
    row = panel.locator(".insp-item").nth(lore_index)
    source = row.locator(".insp-source")
    expect(source).to_contain_text(f"entry {lore['source']['entry_id']}")
    expect(source).to_contain_text(lore["source"]["reason"].replace("_", " "))
    expect(source).to_contain_text("matched: " + ", ".join(lore["source"]["matched"]))
    expect(row.locator(".insp-text")).to_be_hidden()
    row.locator("summary").click()
    expect(row.locator(".insp-text")).to_be_visible()
    assert row.locator(".insp-text").text_content() == lore["text"]
    history = next(i for i, s in enumerate(doc["sections"]) if s["kind"] == "history")
    history_source = doc["sections"][history]["source"]
    expect(panel.locator(".insp-item").nth(history).locator(".insp-source")).to_have_text(
        f"message {history_source['message_ids'][0]} · turn {history_source['turn']} · "
        f"{doc['sections'][history]['role']}")
    card_row = panel.locator(".insp-item[data-kind=card_full]").first
    expect(card_row.locator(".insp-kind")).to_have_text("card")

    # kind filter
    panel.locator(".insp-chip[data-kind=lore]").click()
    expect(panel.locator(".insp-item:visible")).to_have_count(sum(s["kind"] == "lore" for s in doc["sections"]))
    panel.locator(".insp-chip[data-kind=all]").click()
    expect(panel.locator(".insp-item:visible")).to_have_count(len(doc["sections"]))

    # Copy JSON puts the same document on the clipboard
    panel.get_by_role("button", name="Copy JSON").click()
    expect(page.get_by_text("Copied the prompt as JSON.")).to_be_visible()
    copied = json.loads(page.evaluate("navigator.clipboard.readText()"))
    assert [s["kind"] for s in copied["sections"]] == [s["kind"] for s in doc["sections"]]
    assert copied["total_tokens"] == doc["total_tokens"]

    # mode switch: Narrator -> the next prompt's system section is the narrator instruction
    narrator = page.get_by_role("radio", name="Narrator")
    expect(page.get_by_role("radio", name="Auto")).to_be_checked()
    narrator.check()
    expect(narrator).to_be_checked()
    wait_until(lambda: api(app_url, "GET", f"/api/chats/{chat['id']}")["mode"] == "narrator", what="narrator mode")
    instruction_row = panel.locator(".insp-item[data-kind=instruction]")
    expect(instruction_row.locator(".insp-source")).to_have_text("the narrator · narrator mode")
    instruction_row.locator("summary").click()
    expect(instruction_row.locator(".insp-text")).to_contain_text("Narrate")
    expect(panel.locator(".insp-speaker")).to_contain_text("the narrator")
    assert "Narrate" in prompt_doc(app_url, chat["id"])["sections"][-1]["text"]

    # cast: Borin leaves -> no card or capsule of his in the inspector
    borin_rows = panel.locator(".insp-item[data-kind=card_full], .insp-item[data-kind=capsule]").filter(
        has_text="Borin")
    expect(borin_rows).not_to_have_count(0)
    page.get_by_role("button", name="Cast").click()
    cast = page.get_by_role("dialog", name="Cast")
    switch = cast.get_by_role("switch", name="Borin")
    expect(switch).to_be_checked()
    switch.uncheck()
    expect(cast.get_by_role("switch", name="Borin")).not_to_be_checked()
    expect(cast.locator(".cast-member.is-off")).to_contain_text("Off stage")
    cast.get_by_role("button", name="Done").click()
    expect(cast).to_be_hidden()
    expect(borin_rows).to_have_count(0)
    expect(panel.locator(".insp-item[data-kind=card_full]").filter(has_text="Seraphina")).to_have_count(1)
    members = {c["name"]: c["is_active"] for c in api(app_url, "GET", f"/api/chats/{chat['id']}")["cast"]}
    assert members == {"Seraphina": True, "Borin": False}
    doc = sync_inspector(page, app_url, chat["id"])
    assert shown_kinds(panel) == [s["kind"] for s in doc["sections"]]
    assert not any(s["source"].get("name") == "Borin" for s in doc["sections"])

    # Escape closes the panel and gives focus back to its button
    panel.locator(".insp-title").focus()
    page.keyboard.press("Escape")
    expect(panel).to_be_hidden()
    expect(prompt_button).to_be_focused()
    expect(prompt_button).to_have_attribute("aria-expanded", "false")
    assert_clean(page_log)


def test_focus_mode_and_adding_a_character(page: Page, page_log: PageLog, app_url: str,
                                           library: dict[str, int]) -> None:
    chat = new_chat(app_url, [library["Borin"]], title="Forge")
    page.goto(f"/#/chat/{chat['id']}")
    expect(page.get_by_role("radio", name="Focus")).to_be_checked()
    focus_select = page.get_by_role("combobox", name="Focus character")
    expect(focus_select).to_be_visible()
    expect(page.get_by_role("button", name="Cast")).to_contain_text("1")

    page.get_by_role("button", name="Cast").click()
    cast = page.get_by_role("dialog", name="Cast")
    picker = cast.get_by_label("Add character")
    expect(picker).to_be_enabled()
    picker.select_option(label="Cyra")
    cast.get_by_role("button", name="Add", exact=True).click()
    expect(cast.get_by_role("switch", name="Cyra")).to_be_checked()
    expect(picker.locator("option", has_text="Cyra")).to_have_count(0)
    cast.get_by_role("button", name="Close").click()
    expect(cast).to_be_hidden()
    expect(page.get_by_role("button", name="Cast")).to_contain_text("2")
    assert [c["name"] for c in api(app_url, "GET", f"/api/chats/{chat['id']}")["cast"]] == ["Borin", "Cyra"]

    focus_select.select_option(label="Cyra")
    wait_until(lambda: api(app_url, "GET", f"/api/chats/{chat['id']}")["focus_character_id"] == library["Cyra"],
               what="focus on Cyra")
    page.get_by_role("radio", name="Auto").check()
    expect(focus_select).to_be_hidden()
    wait_until(lambda: api(app_url, "GET", f"/api/chats/{chat['id']}")["mode"] == "auto", what="auto mode")
    page.reload()
    expect(page.get_by_role("radio", name="Auto")).to_be_checked()
    page.get_by_role("radio", name="Focus").check()
    expect(focus_select).to_have_value(str(library["Cyra"]))
    wait_until(lambda: api(app_url, "GET", f"/api/chats/{chat['id']}")["mode"] == "focus", what="focus mode")
    assert api(app_url, "GET", f"/api/chats/{chat['id']}")["focus_character_id"] == library["Cyra"]
    assert_clean(page_log)


def test_summaries_window(page: Page, page_log: PageLog, app_url: str, library: dict[str, int]) -> None:
    chat = new_chat(app_url, [library["Borin"]], title="Long road")
    add_turns(app_url, chat["id"], [f"We walk on, day {n}." for n in range(1, 7)])
    page.goto(f"/#/chat/{chat['id']}")
    expect(page.locator(".msg")).to_have_count(12)
    page.get_by_role("button", name="Summaries").click()
    dialog = page.get_by_role("dialog", name="Summaries")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_text("No summaries yet")).to_be_visible()
    expect(dialog.locator(".sum-words")).to_contain_text("of 1,200 words")

    # 503 and 409 answers are shown as the server's sentence, inline
    page.route("**/api/chats/*/summarize", lambda route: route.fulfill(
        status=503, json={"error": "BackendUnavailable", "detail": "No LLM server is configured, so nothing can be "
                                                                   "summarised"}))
    dialog.get_by_role("button", name="Summarize now").click()
    expect(dialog.get_by_role("alert")).to_have_text("No LLM server is configured, so nothing can be summarised")
    expect(dialog.get_by_role("button", name="Summarize now")).to_be_enabled()
    page.unroute("**/api/chats/*/summarize")
    page.route("**/api/chats/*/summarize", lambda route: route.fulfill(
        status=409, json={"error": "Conflict", "detail": "summarization is already running for this chat"}))
    dialog.get_by_role("button", name="Summarize now").click()
    expect(dialog.get_by_role("alert")).to_have_text("summarization is already running for this chat")
    expect(dialog.get_by_role("button", name="Summarize now")).to_be_enabled()
    page.unroute("**/api/chats/*/summarize")

    dialog.get_by_role("button", name="Summarize now").click()
    expect(dialog.get_by_role("alert")).to_be_hidden()
    items = dialog.locator(".sum-list").first.locator(".sum-item")
    expect(items.first).to_be_visible(timeout=15_000)
    expect(dialog.get_by_role("button", name="Summarize now")).to_be_enabled()
    body = api(app_url, "GET", f"/api/chats/{chat['id']}/summaries")
    live = [s for s in body["summaries"] if not s["archived"]]
    expect(items).to_have_count(len(live))
    first = live[0]
    expect(items.first.locator(".sum-range")).to_have_text(f"Turns {first['start_turn']}–{first['end_turn']}")
    expect(items.first).to_contain_text(f"{first['message_count']} messages")
    expect(dialog.locator(".sum-words strong")).to_have_text(str(body["word_count"]))
    live_messages = api(app_url, "GET", f"/api/chats/{chat['id']}/messages")["messages"]
    expect(page.locator(".msg")).to_have_count(len(live_messages))  # the chat reloaded: folded turns left it

    # edit, then reload: the edit persists
    items.first.get_by_role("button", name="Edit").click()
    box = items.first.get_by_label(f"Summary of turns {first['start_turn']}–{first['end_turn']}")
    expect(box).to_have_value(first["text"])
    box.fill("Ari and Borin walked the long road for days.")
    items.first.get_by_role("button", name="Save").click()
    expect(items.first.locator(".sum-text")).to_have_text("Ari and Borin walked the long road for days.")
    expect(items.first.locator(".sum-tag-accent")).to_have_text("edited")
    page.reload()
    page.get_by_role("button", name="Summaries").click()
    dialog = page.get_by_role("dialog", name="Summaries")
    items = dialog.locator(".sum-list").first.locator(".sum-item")
    expect(items.first.locator(".sum-text")).to_have_text("Ari and Borin walked the long road for days.")
    stored = api(app_url, "GET", f"/api/chats/{chat['id']}/summaries")["summaries"][0]
    assert stored["text"] == "Ari and Borin walked the long road for days." and stored["edited"] is True

    # un-fold (confirmed inline): the summary is archived and its messages come back
    newest = items.last
    newest.get_by_role("button", name="Un-fold").click()
    newest.get_by_role("button", name="Cancel").click()
    expect(newest.get_by_role("button", name="Un-fold")).to_be_visible()
    newest.get_by_role("button", name="Un-fold").click()
    newest.get_by_role("button", name="Yes, un-fold").click()
    archived = dialog.locator(".sum-archived")
    expect(archived.locator("summary")).to_have_text("Archived summaries (1)")
    expect(archived.locator(".sum-item")).to_be_hidden()
    archived.locator("summary").click()
    expect(archived.locator(".sum-item")).to_be_visible()
    expect(archived.get_by_role("button", name="Edit")).to_have_count(0)
    body = api(app_url, "GET", f"/api/chats/{chat['id']}/summaries")
    assert sum(s["archived"] for s in body["summaries"]) == 1
    live_messages = api(app_url, "GET", f"/api/chats/{chat['id']}/messages")["messages"]
    expect(page.locator(".msg")).to_have_count(len(live_messages))
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(page.get_by_role("button", name="Summaries")).to_be_focused()
    assert_clean(page_log)


def test_an_excerpt_summary_is_marked_in_the_summaries_window(page: Page, page_log: PageLog, app_url: str,
                                                               library: dict[str, int]) -> None:
    chat = new_chat(app_url, [library["Borin"]], title="Excerpt road")
    add_turns(app_url, chat["id"], [f"We cross the river at ford {n}." for n in range(1, 7)])
    api(app_url, "POST", f"/api/chats/{chat['id']}/summarize")
    wait_until(lambda: api(app_url, "GET", f"/api/chats/{chat['id']}/summaries"),
               until=lambda b: not b["running"] and b["summaries"], what="the fold")
    excerpt = "Ari: We cross the river at ford 1.\nBorin: Reply 2 to: We cross the river at ford 1."

    def as_excerpt(route: Any) -> None:
        """The server's own answer with its first summary as an excerpt (what a rejected, forced fold stores)."""
        response = route.fetch()
        body = response.json()
        body["summaries"][0].update(origin="extract", text=excerpt)
        route.fulfill(response=response, body=json.dumps(body), headers={**response.headers,
                                                                        "content-type": "application/json"})

    page.route("**/api/chats/*/summaries", as_excerpt)
    page.goto(f"/#/chat/{chat['id']}")
    page.get_by_role("button", name="Summaries").click()
    dialog = page.get_by_role("dialog", name="Summaries")
    items = dialog.locator(".sum-list").first.locator(".sum-item")
    expect(items.first.locator(".sum-tag-warn")).to_have_text("excerpt")
    expect(items.first.locator(".sum-origin")).to_contain_text("Excerpt: the model's summary was rejected")
    expect(items.first.locator(".sum-text")).to_have_text(excerpt)
    expect(items.first.get_by_role("button", name="Edit")).to_be_visible()
    expect(items.first.get_by_role("button", name="Un-fold")).to_be_visible()
    expect(dialog.locator(".sum-origin")).to_have_count(1)  # only the excerpt has the note
    page.unroute("**/api/chats/*/summaries")
    assert_clean(page_log)


def test_a_rejected_capsule_is_explained_in_the_inspector(page: Page, page_log: PageLog, app_url: str, fake: FakeLLM,
                                                         library: dict[str, int]) -> None:
    chat = new_chat(app_url, [library["Cyra"]])
    add_turns(app_url, chat["id"], ["Hello.", "How are you?"])
    fake.enqueue("Turn three reply.", "[Cyra - a seer, kind of gal. {END}]")
    add_turns(app_url, chat["id"], ["Tell me my future."])
    wait_until(lambda: prompt_doc(app_url, chat["id"])["background"], what="the capsule rejection")
    page.goto(f"/#/chat/{chat['id']}")
    page.get_by_role("button", name="Prompt").click()
    note = inspector(page).locator(".insp-bg-note")
    expect(note).to_have_count(1)
    expect(note).to_contain_text("Capsule for Cyra: the model's answer was rejected (it contains template junk")
    expect(note).to_contain_text("The previous one stays in use; tried again in about")
    expect(note.locator(".insp-bg-answer")).to_have_text("[Cyra - a seer, kind of gal. {END}]")
    assert_clean(page_log)


def test_untrusted_names_and_text_are_never_html(page: Page, page_log: PageLog, app_url: str) -> None:
    name = '<img src=x onerror="window.__pwned=1">'
    card = {"name": name, "description": "<b id=bold>bold</b> <script>window.__pwned=2</script>", "first_mes": ""}
    made = api(app_url, "POST", "/api/characters", json=card)
    chat = new_chat(app_url, [made["id"]])
    page.goto(f"/#/chat/{chat['id']}")
    page.get_by_role("button", name="Prompt").click()
    panel = inspector(page)
    card_row = panel.locator(".insp-item[data-kind=card_full]")
    expect(card_row.locator(".insp-source")).to_have_text(f"{name} · full card")
    card_row.locator("summary").click()
    expect(card_row.locator(".insp-text")).to_contain_text("<b id=bold>bold</b> <script>window.__pwned=2</script>")
    page.get_by_role("button", name="Cast").click()
    cast = page.get_by_role("dialog", name="Cast")
    expect(cast.get_by_role("switch", name=name)).to_be_checked()
    expect(page.get_by_role("combobox", name="Focus character").locator("option")).to_have_text([name])
    assert page.locator("img[src=x], #bold").count() == 0
    assert page.evaluate("window.__pwned") is None
    assert_clean(page_log)


def test_screenshots(open_page: Callable[..., Page], page_log: PageLog, app_url: str,
                     library: dict[str, int], screenshot_dir: Path) -> None:
    chat = new_chat(app_url, [library["Seraphina"], library["Borin"]], title="Glade at dusk")
    add_turns(app_url, chat["id"], [LORE_MESSAGE, "Borin, what do you think?", "Let us rest by the fire.",
                                    "Morning comes; we pack up."])
    api(app_url, "POST", f"/api/chats/{chat['id']}/summarize")
    wait_until(lambda: not api(app_url, "GET", f"/api/chats/{chat['id']}/summaries")["running"], what="the fold")
    add_turns(app_url, chat["id"], [LORE_MESSAGE])
    shots = []
    for label, viewport, options in (("desktop", DESKTOP, {}),
                                     ("phone", PHONE, {"is_mobile": True, "has_touch": True,
                                                       "device_scale_factor": 2})):
        page = open_page(viewport, **options)
        page.goto(f"/#/chat/{chat['id']}")
        expect(page.locator(".msg").first).to_be_visible()
        path = screenshot_dir / f"inspector-chat-{label}.png"
        page.screenshot(path=str(path), animations="disabled")
        shots.append(path)
        assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"], f"{label} overflows"
        send_box = page.get_by_role("button", name="Send", exact=True).bounding_box()
        assert send_box is not None and send_box["y"] + send_box["height"] <= viewport["height"]

        page.get_by_role("button", name="Prompt").click()
        panel = inspector(page)
        expect(panel.locator(".insp-item[data-kind=lore]").first).to_be_visible()
        panel.locator(".insp-item[data-kind=lore] summary").first.click()
        path = screenshot_dir / f"inspector-{label}.png"
        page.screenshot(path=str(path), animations="disabled")
        shots.append(path)
        assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"], f"{label} overflows"
        still(page)  # the panel slides in
        box = panel.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= viewport["width"]
        panel.get_by_role("button", name="Close").click()
        expect(panel).to_be_hidden()

        page.get_by_role("button", name="Summaries").click()
        dialog = page.get_by_role("dialog", name="Summaries")
        expect(dialog.locator(".sum-item").first).to_be_visible()
        path = screenshot_dir / f"summaries-{label}.png"
        page.screenshot(path=str(path), animations="disabled")
        shots.append(path)
        page.keyboard.press("Escape")
        expect(dialog).to_be_hidden()

        page.get_by_role("button", name="Cast").click()
        cast = page.get_by_role("dialog", name="Cast")
        expect(cast.get_by_role("switch", name="Borin")).to_be_visible()
        path = screenshot_dir / f"cast-{label}.png"
        page.screenshot(path=str(path), animations="disabled")
        shots.append(path)
        page.keyboard.press("Escape")
        expect(cast).to_be_hidden()
    assert all(p.stat().st_size > 5_000 for p in shots)
    assert_clean(page_log)
