"""Chat craft in a real browser: edit in place + history, delete + undo, search and jump, NPCs, fork, rename, export.

NeuralRP runs on a real port against a fast fake llama.cpp server; chats are seeded through the API and the
features are then driven through the page like a user would.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.e2e.conftest import PageLog, expect, serve_with_llm
from tests.fakes import FakeLLM

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

pytestmark = pytest.mark.playwright

CARD = {"spec": "chara_card_v2", "spec_version": "2.0",
        "data": {"name": "Seraphina", "description": "Guardian of the glade.",
                 "first_mes": "*Seraphina kneels beside you.* \"You're awake.\""}}
HTTP_ERROR_LOG = re.compile(r"Failed to load resource: the server responded with a status of 4\d\d ")


@pytest.fixture(scope="module")
def app_url(fake: FakeLLM, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """NeuralRP on a real port, its LLM the fake on another."""
    with serve_with_llm(fake, tmp_path_factory.mktemp("craft-ui")) as url:
        yield url


@pytest.fixture(autouse=True)
def _fresh_fake(fake: FakeLLM) -> Iterator[None]:
    yield
    fake.replies.clear()


def new_chat(app_url: str, name: str = "Seraphina", title: str | None = None) -> dict[str, Any]:
    card = json.loads(json.dumps(CARD))
    card["data"]["name"] = name
    body: dict[str, Any] = {"card": card, "persona": {"name": "Ari"}}
    if title:
        body["title"] = title
    resp = httpx.post(f"{app_url}/api/chats", json=body, timeout=10)
    assert resp.status_code == 201, resp.text
    return resp.json()  # type: ignore[no-any-return]


def say(app_url: str, fake: FakeLLM, chat_id: int, text: str, reply: str) -> None:
    """One user message and its reply, through the API (no streaming)."""
    fake.enqueue(reply)
    resp = httpx.post(f"{app_url}/api/chats/{chat_id}/messages", json={"content": text, "stream": False},
                      timeout=20)
    assert resp.status_code in (200, 201), resp.text


def stored(app_url: str, chat_id: int) -> list[dict[str, Any]]:
    return httpx.get(f"{app_url}/api/chats/{chat_id}/messages", timeout=10).json()["messages"]  # type: ignore[no-any-return]


def assert_clean(page_log: PageLog) -> None:
    """No script errors; Chromium's own "Failed to load resource" lines for expected 4xx answers are fine."""
    page_log.console_errors[:] = [e for e in page_log.console_errors if not HTTP_ERROR_LOG.match(e)]
    page_log.assert_clean()


def msgs(page: Page) -> Locator:
    return page.locator(".msg-items > .msg")


def action(message: Locator, name: str) -> Locator:
    message.hover()
    return message.get_by_role("button", name=name, exact=True)


def test_edit_in_place_persists_and_history_restores(page: Page, page_log: PageLog, fake: FakeLLM,
                                                     app_url: str) -> None:
    chat = new_chat(app_url)
    say(app_url, fake, chat["id"], "Where am I?", "The glade is quiet.")
    page.goto(f"/#/chat/{chat['id']}")
    reply = msgs(page).nth(2)
    expect(reply.locator(".msg-text")).to_have_text("The glade is quiet.")

    action(reply, "Edit").click()
    box = reply.get_by_label("Edit message")
    expect(box).to_be_focused()
    expect(box).to_have_value("The glade is quiet.")
    box.fill("Never mind")
    box.press("Escape")  # cancel keeps the old text
    expect(reply.locator(".msg-text")).to_have_text("The glade is quiet.")

    action(reply, "Edit").click()
    reply.get_by_label("Edit message").fill("The glade hums softly.")
    reply.get_by_label("Edit message").press("Control+Enter")
    expect(reply.locator(".msg-text")).to_have_text("The glade hums softly.")
    assert stored(app_url, chat["id"])[2]["content"] == "The glade hums softly."

    page.reload()
    reply = msgs(page).nth(2)
    expect(reply.locator(".msg-text")).to_have_text("The glade hums softly.")
    action(reply, "History").click()
    dialog = page.get_by_role("dialog", name="Message history")
    item = dialog.locator(".hist-item").first
    expect(item.locator(".hist-op")).to_have_text("Edited")
    expect(item.locator(".hist-old")).to_contain_text("The glade is quiet.")
    expect(item.locator(".hist-new")).to_contain_text("The glade hums softly.")
    item.get_by_role("button", name="Restore").click()
    expect(dialog.locator(".hist-item")).to_have_count(2)
    expect(dialog.locator(".hist-item").first.locator(".hist-op")).to_have_text("Restored")
    dialog.get_by_role("button", name="Close").first.click()
    expect(dialog).to_be_hidden()
    expect(msgs(page).nth(2).locator(".msg-text")).to_have_text("The glade is quiet.")
    assert stored(app_url, chat["id"])[2]["content"] == "The glade is quiet."
    assert_clean(page_log)


def test_delete_and_undo(page: Page, page_log: PageLog, fake: FakeLLM, app_url: str) -> None:
    chat = new_chat(app_url)
    say(app_url, fake, chat["id"], "Hello there", "Hello, traveller.")
    page.goto(f"/#/chat/{chat['id']}")
    expect(msgs(page)).to_have_count(3)
    action(msgs(page).nth(1), "Delete").click()
    expect(msgs(page)).to_have_count(2)
    expect(page.locator(".msg[data-role=user]")).to_have_count(0)
    assert len(stored(app_url, chat["id"])) == 2

    page.locator(".toast").get_by_role("button", name="Undo").click()
    expect(msgs(page)).to_have_count(3)
    expect(msgs(page).nth(1).locator(".msg-text")).to_have_text("Hello there")
    assert [m["content"] for m in stored(app_url, chat["id"])][1] == "Hello there"
    assert_clean(page_log)


def test_search_finds_live_and_deleted_messages_and_jumps_to_them(
        page: Page, page_log: PageLog, fake: FakeLLM, app_url: str, screenshot_dir: Path) -> None:
    chat = new_chat(app_url, title="Long night")
    say(app_url, fake, chat["id"], "Tell me about the zanzibar lantern.", "It glows blue.")
    say(app_url, fake, chat["id"], "And the quokka statue?", "It is old.")
    for i in range(10):
        say(app_url, fake, chat["id"], f"Line {i} of small talk about the weather.", f"Answer {i}, the sky is grey.")
    live = stored(app_url, chat["id"])
    target = next(m for m in live if "zanzibar" in m["content"])
    doomed = next(m for m in live if "quokka" in m["content"])
    assert httpx.delete(f"{app_url}/api/messages/{doomed['id']}", timeout=10).status_code == 200

    page.goto("/#/search")
    expect(page.get_by_role("heading", level=1, name="Search")).to_be_visible()
    page.get_by_role("searchbox", name="Search messages").fill("zanzibar")
    page.get_by_role("searchbox", name="Search messages").press("Enter")
    hit = page.locator(f'.search-hit[data-message-id="{target["id"]}"]')
    expect(hit.locator("mark")).to_have_text("zanzibar")
    expect(page.get_by_role("heading", level=2, name=re.compile("Long night"))).to_be_visible()
    expect(page).to_have_url(re.compile(r"#/search\?q=zanzibar$"))
    page.screenshot(path=str(screenshot_dir / "search-desktop.png"))
    hit.get_by_role("link").click()
    expect(page).to_have_url(re.compile(rf"#/chat/{chat['id']}\?seq={target['seq']}"))
    jumped = page.locator(f'.msg[data-id="{target["id"]}"]')
    expect(jumped).to_have_attribute("data-flash", "true")
    expect(jumped).to_be_in_viewport()

    page.goto("/#/search?q=quokka")
    hit = page.locator(f'.search-hit[data-message-id="{doomed["id"]}"]')
    expect(hit.locator(".badge")).to_contain_text("archived")
    expect(hit.locator("mark")).to_have_text("quokka")
    hit.get_by_role("link").click()
    dialog = page.get_by_role("dialog", name="Message history")
    expect(dialog).to_contain_text("no longer in the chat log")
    expect(dialog.locator(".hist-item").first.locator(".hist-op")).to_have_text("Deleted")
    dialog.get_by_role("button", name="Restore").first.click()
    expect(page.locator(f'.msg[data-id="{doomed["id"]}"]')).to_have_count(1)
    assert any(m["id"] == doomed["id"] for m in stored(app_url, chat["id"]))
    assert_clean(page_log)


def test_search_on_a_phone(phone_page: Page, page_log: PageLog, fake: FakeLLM, app_url: str,
                           screenshot_dir: Path) -> None:
    chat = new_chat(app_url)
    say(app_url, fake, chat["id"], "The moonflower blooms at night.", "Only at night.")
    page = phone_page
    page.goto("/#/search?q=moonflower")
    expect(page.locator(".search-hit mark").first).to_have_text("moonflower")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    page.screenshot(path=str(screenshot_dir / "search-phone.png"))
    page.goto(f"/#/chat/{chat['id']}")
    expect(msgs(page)).to_have_count(3)
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    page.screenshot(path=str(screenshot_dir / "chat-phone.png"))
    assert_clean(page_log)


def test_npc_dialog_and_promote_to_library(page: Page, page_log: PageLog, app_url: str,
                                           screenshot_dir: Path) -> None:
    chat = new_chat(app_url, name="Orla")
    page.goto(f"/#/chat/{chat['id']}")
    expect(msgs(page)).to_have_count(1)  # the chat is loaded: the Cast button works
    page.get_by_role("button", name="Cast").click()
    cast = page.get_by_role("dialog", name="Cast")
    cast.get_by_role("button", name="Add NPC").click()
    npc = page.get_by_role("dialog", name="Add NPC")
    npc.get_by_role("button", name="Create NPC").click()
    expect(npc.get_by_role("alert")).to_contain_text("name")
    npc.get_by_label("Name").fill("Mira")
    npc.get_by_label("Gender").select_option("female")
    npc.get_by_label("Description").fill("The innkeeper, sharp-eyed and kind.")
    npc.get_by_label("Personality").fill("Warm, nosy.")
    npc.get_by_label("Visual tags").fill("red hair, apron")
    npc.get_by_role("button", name="Create NPC").click()
    expect(npc).to_be_hidden()
    row = cast.locator(".cast-member.is-npc")
    expect(row.locator(".cast-name")).to_contain_text("Mira")
    page.screenshot(path=str(screenshot_dir / "cast-npc-desktop.png"))
    members = httpx.get(f"{app_url}/api/chats/{chat['id']}", timeout=10).json()["cast"]
    mira = next(c for c in members if c["name"] == "Mira")
    assert mira["is_npc"] is True

    row.get_by_role("button", name="Edit Mira").click()
    edit = page.get_by_role("dialog", name="Edit NPC")
    expect(edit.get_by_label("Description")).to_have_value("The innkeeper, sharp-eyed and kind.")
    expect(edit.get_by_label("Gender")).to_have_value("female")
    edit.get_by_role("button", name="Cancel").click()

    row.get_by_role("button", name="Promote to library").click()
    expect(page.locator(".toast")).to_contain_text("Mira is now in your library")
    expect(cast.locator(".cast-member.is-npc")).to_have_count(0)
    cast.get_by_role("button", name="Done").click()
    page.goto("/#/library")
    expect(page.get_by_role("list", name="Characters").get_by_role("link", name="Mira")).to_be_visible()
    assert_clean(page_log)


def test_fork_from_the_second_message(page: Page, page_log: PageLog, fake: FakeLLM, app_url: str) -> None:
    chat = new_chat(app_url)
    say(app_url, fake, chat["id"], "Shall we go north?", "North it is.")
    say(app_url, fake, chat["id"], "Onward!", "We walk.")
    before = stored(app_url, chat["id"])
    page.goto(f"/#/chat/{chat['id']}")
    expect(msgs(page)).to_have_count(5)
    action(msgs(page).nth(1), "Fork from here").click()
    dialog = page.get_by_role("dialog", name="Fork from here")
    expect(dialog.locator(".fork-preview")).to_have_text("Shall we go north?")
    dialog.get_by_label("Title of the new chat").fill("Road not taken")
    dialog.get_by_role("button", name="Fork").click()
    expect(page.get_by_role("heading", level=1, name="Road not taken")).to_be_visible()
    new_id = int(re.search(r"#/chat/(\d+)", page.url).group(1))  # type: ignore[union-attr]
    assert new_id != chat["id"]
    expect(msgs(page)).to_have_count(2)
    expect(msgs(page).nth(1).locator(".msg-text")).to_have_text("Shall we go north?")
    assert [m["content"] for m in stored(app_url, new_id)] == [m["content"] for m in before[:2]]
    assert len(stored(app_url, chat["id"])) == 5, "the original is untouched"
    assert_clean(page_log)


def test_rename_and_export_links(page: Page, page_log: PageLog, fake: FakeLLM, app_url: str,
                                 screenshot_dir: Path) -> None:
    chat = new_chat(app_url)
    say(app_url, fake, chat["id"], "Is it safe here?", "Safe enough.")
    page.goto(f"/#/chat/{chat['id']}")
    expect(msgs(page)).to_have_count(3)
    page.get_by_role("button", name="Rename").click()
    field = page.get_by_label("Chat title")
    expect(field).to_be_focused()
    field.fill("Safe harbour")
    field.press("Enter")
    expect(page.get_by_role("heading", level=1, name="Safe harbour")).to_be_visible()
    expect(page.locator(".chat-item[aria-current=page]")).to_contain_text("Safe harbour")
    assert httpx.get(f"{app_url}/api/chats/{chat['id']}", timeout=10).json()["title"] == "Safe harbour"

    page.get_by_role("button", name="Export").click()
    menu = page.get_by_role("menu", name="Export formats")
    expect(menu.get_by_role("menuitem")).to_have_count(4)
    page.screenshot(path=str(screenshot_dir / "chat-export-desktop.png"))
    links = {f: menu.locator(f'[data-format="{f}"]').get_attribute("href")
             for f in ("jsonl", "alpaca", "sharegpt", "chatml")}
    for fmt, link in links.items():
        assert link is not None
        resp = httpx.get(f"{app_url}{link}", timeout=10)
        assert resp.status_code == 200, (fmt, resp.text)
        assert "attachment" in resp.headers["content-disposition"]
        rows = [json.loads(line) for line in resp.text.splitlines() if line.strip()]
        assert rows, fmt
        if fmt == "sharegpt":
            assert all(set(turn) == {"from", "value"} for turn in rows[0]["conversations"])
        if fmt == "chatml":
            assert "messages" in rows[0]
        if fmt == "jsonl":
            assert any(r.get("mes") == "Is it safe here?" for r in rows)
    page.keyboard.press("Escape")
    expect(menu).to_be_hidden()
    assert_clean(page_log)
