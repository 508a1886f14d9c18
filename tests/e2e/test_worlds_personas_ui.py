"""Issue 14 in a real browser: worlds in use (a standalone World Info file attached to a new chat, a card's linked
world), a group reply kept in character, deleting a chat with undo, a persona's description and the system prompt
in the prompt inspector, personas imported from a SillyTavern settings.json.

The NeuralRP app runs on a real port against the fake llama.cpp server (also on a real port); each test makes the
characters and worlds it needs, under names of its own.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from PIL import Image

from tests.conftest import FIXTURES
from tests.e2e.conftest import PageLog, expect, serve_with_llm
from tests.fakes import FakeLLM
from tests.waiting import wait_until

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

pytestmark = pytest.mark.playwright


@pytest.fixture(scope="module")
def app_url(fake: FakeLLM, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """NeuralRP on a real port, its LLM the fake on another."""
    with serve_with_llm(fake, tmp_path_factory.mktemp("worlds-personas-ui")) as url:
        yield url


@pytest.fixture(autouse=True)
def _fresh_fake(fake: FakeLLM) -> Iterator[None]:
    yield
    fake.replies.clear()


def api(app_url: str, method: str, path: str, **kwargs: Any) -> Any:
    resp = httpx.request(method, f"{app_url}{path}", timeout=15, **kwargs)
    assert resp.status_code < 300, resp.text
    return resp.json()


def character(app_url: str, name: str, **data: Any) -> dict[str, Any]:
    card = {"spec": "chara_card_v2", "spec_version": "2.0",
            "data": {"name": name, "description": f"{name} walks the old roads.", "first_mes": f"{name} nods.",
                     **data}}
    return api(app_url, "POST", "/api/characters", json=card)  # type: ignore[no-any-return]


def world(app_url: str, name: str, keys: list[str], content: str) -> dict[str, Any]:
    data = json.dumps({"entries": {"0": {"uid": 0, "key": keys, "content": content, "comment": name}}})
    return api(app_url, "POST", "/api/worlds/import", files={"file": (f"{name}.json", data)})  # type: ignore


def open_inspector(page: Page) -> Locator:
    page.get_by_role("button", name="Prompt").click()
    panel = page.get_by_role("dialog", name="Prompt inspector")
    expect(panel.locator(".insp-section").first).to_be_visible(timeout=60_000)  # the first lore turn loads the embedder
    return panel


def test_a_world_file_imported_and_attached_to_a_new_chat_shows_in_the_inspector(
        page: Page, page_log: PageLog, app_url: str, tmp_path: Path) -> None:
    character(app_url, "Mira", first_mes="Welcome to the glade, {{user}}.")
    eldoria = tmp_path / "Eldoria.json"
    eldoria.write_bytes((FIXTURES / "worlds" / "st_Eldoria_release.json").read_bytes())
    page.goto("/#/library/worlds")
    with page.expect_file_chooser() as chooser:
        page.get_by_role("button", name="Import", exact=True).click()
    chooser.value.set_files(str(eldoria))
    expect(page.get_by_role("region", name="Import results")).to_contain_text("Eldoria")
    expect(page.get_by_role("list", name="Worlds").locator(".lib-world", has_text="Eldoria")).to_contain_text(
        "Not linked")

    page.goto("/#/chat")
    page.get_by_role("button", name="New chat").click()
    dialog = page.get_by_role("dialog", name="New chat")
    dialog.get_by_role("checkbox", name=re.compile("^Mira")).check()
    dialog.get_by_role("checkbox", name=re.compile("^Eldoria")).check()
    dialog.get_by_role("button", name="Start chat").click()
    expect(page.get_by_role("heading", level=1, name="Mira")).to_be_visible()

    panel = open_inspector(page)
    lore = panel.locator(".insp-section[data-kind=lore] .insp-source")
    expect(lore.first).to_contain_text("Eldoria via chat")
    expect(panel.locator(".insp-worlds")).to_have_text("Worlds: Eldoria (chat)")

    page.get_by_role("button", name="Worlds", exact=True).click()
    worlds = page.get_by_role("dialog", name="Worlds")
    expect(worlds.get_by_role("checkbox", name=re.compile("^Eldoria"))).to_be_checked()
    worlds.get_by_role("button", name="Cancel").click()
    page_log.assert_clean()


def test_a_card_with_extensions_world_picks_up_that_world_on_import(
        page: Page, page_log: PageLog, app_url: str, tmp_path: Path) -> None:
    world(app_url, "Sunreach", ["lantern"], "Lanterns in Sunreach never go out.")
    card = tmp_path / "Nox.json"
    card.write_text(json.dumps({"spec": "chara_card_v2", "spec_version": "2.0", "data": {
        "name": "Nox", "description": "A lamplighter.", "first_mes": "Nox lights a lantern.",
        "extensions": {"world": "Sunreach"}}}), encoding="utf-8")
    page.goto("/#/library")
    with page.expect_file_chooser() as chooser:
        page.get_by_role("button", name="Import", exact=True).click()
    chooser.value.set_files(str(card))
    expect(page.get_by_role("region", name="Import results")).to_contain_text("Nox")
    nox = next(c for c in api(app_url, "GET", "/api/characters") if c["name"] == "Nox")

    page.goto(f"/#/library/character/{nox['id']}")
    expect(page.get_by_label("Linked world")).to_have_value("Sunreach")
    page.get_by_role("button", name="Start chat").click()
    expect(page.get_by_role("heading", level=1, name="Nox")).to_be_visible()
    page.get_by_role("button", name="Worlds", exact=True).click()
    worlds = page.get_by_role("dialog", name="Worlds")
    expect(worlds.locator(".chat-world-link")).to_have_text(["Sunreach — Nox's card"])
    worlds.get_by_role("button", name="Cancel").click()
    expect(open_inspector(page).locator(".insp-section[data-kind=lore] .insp-source")).to_contain_text(
        "Sunreach via Nox's card")

    page.goto(f"/#/library/character/{nox['id']}")  # the link is edited in the card editor, written to the card
    page.get_by_label("Linked world").select_option("")
    page.get_by_role("button", name="Save", exact=True).click()
    wait_until(lambda: api(app_url, "GET", f"/api/characters/{nox['id']}")["card"]["data"]["extensions"]["world"],
               until=lambda linked: linked == "", what="the card's extensions.world cleared")
    page_log.assert_clean()


def test_a_group_reply_shows_neither_its_label_nor_the_users_line(
        page: Page, page_log: PageLog, app_url: str, fake: FakeLLM) -> None:
    ids = [character(app_url, name)["id"] for name in ("Ayla", "Borin")]
    chat = api(app_url, "POST", "/api/chats", json={"character_ids": ids, "persona": {"name": "Kai"}})
    fake.enqueue("Ayla: *nods* We leave at dawn.\nKai: Fine by me.\nBorin: Aye.")
    page.goto(f"/#/chat/{chat['id']}")
    page.get_by_label("Message", exact=True).fill("Ayla, when do we leave?")
    page.get_by_role("button", name="Send", exact=True).click()
    reply = page.locator(".msg[data-role=assistant]").last
    expect(reply.locator(".msg-name")).to_have_text("Ayla")
    expect(reply.locator(".msg-text")).to_have_text("nods We leave at dawn.")  # *nods*: an action, in italics
    stored = api(app_url, "GET", f"/api/chats/{chat['id']}/messages")["messages"][-1]
    assert stored["content"] == "*nods* We leave at dawn."
    request = [r for r in fake.chat_requests() if "Ayla, when do we leave?" in json.dumps(r.json)][-1]
    assert request.json["stop"] == ["\nKai:", "\nBorin:"]

    fake.enqueue("Borin: Aye, dawn it is.")  # "speak next": Borin answers without a new message
    page.get_by_role("button", name="Cast").click()
    page.get_by_role("dialog", name="Cast").get_by_role("button", name="Speak now: Borin").click()
    expect(page.locator(".msg[data-role=assistant]")).to_have_count(4)  # two greetings, Ayla, Borin
    reply = page.locator(".msg[data-role=assistant]").last
    expect(reply.locator(".msg-name")).to_have_text("Borin")
    expect(reply.locator(".msg-text")).to_have_text("Aye, dawn it is.")
    assert [m["role"] for m in api(app_url, "GET", f"/api/chats/{chat['id']}/messages")["messages"]].count(
        "user") == 1
    page_log.assert_clean()


def test_delete_a_chat_and_undo_it(page: Page, page_log: PageLog, app_url: str) -> None:
    chat = api(app_url, "POST", "/api/chats", json={"character_ids": [character(app_url, "Wren")["id"]],
                                                     "title": "Wren's road"})
    page.goto(f"/#/chat/{chat['id']}")
    expect(page.get_by_role("heading", level=1, name="Wren's road")).to_be_visible()
    page.get_by_role("button", name="Delete chat").click()
    expect(page).to_have_url(re.compile(r"#/chat$"))
    chats = page.get_by_role("list", name="Chats")
    expect(chats.get_by_text("Wren's road")).to_have_count(0)
    page.locator(".toast").get_by_role("button", name="Undo").click()
    expect(page.get_by_role("heading", level=1, name="Wren's road")).to_be_visible()
    expect(chats.get_by_text("Wren's road")).to_have_count(1)

    page.get_by_role("button", name="Delete chat").click()  # later: from Deleted chats
    page.get_by_role("button", name="Deleted chats").click()
    chats.get_by_role("button", name="Restore Wren's road").click()
    page.get_by_role("button", name="Deleted chats").click()
    expect(chats.get_by_text("Wren's road")).to_have_count(1)
    assert api(app_url, "GET", f"/api/chats/{chat['id']}")["deleted_at"] is None
    page_log.assert_clean()


def test_a_personas_description_reaches_the_prompt(page: Page, page_log: PageLog, app_url: str) -> None:
    character(app_url, "Orin")
    page.goto("/#/settings")
    page.get_by_role("button", name="Add persona").click()
    page.get_by_label("Persona name").fill("Rhea")
    page.get_by_label("Persona description").fill("{{user}} is a knight sworn to {{char}}.")
    page.get_by_role("button", name="Save persona").click()
    personas = page.get_by_role("list", name="Personas")
    expect(personas.locator(".persona", has_text="Rhea")).to_contain_text("Default")

    page.goto("/#/chat")
    page.get_by_role("button", name="New chat").click()
    dialog = page.get_by_role("dialog", name="New chat")
    expect(dialog.get_by_label("Persona", exact=True)).to_have_value(re.compile(r"^\d+$"))  # the default is chosen
    dialog.get_by_role("checkbox", name=re.compile("^Orin")).check()
    dialog.get_by_role("button", name="Start chat").click()
    expect(page.get_by_role("heading", level=1, name="Orin")).to_be_visible()
    expect(page.locator(".chat-meta-persona")).to_have_text("as Rhea")
    panel = open_inspector(page)
    persona = panel.locator(".insp-section[data-kind=persona]")
    persona.locator("summary").click()
    expect(persona.locator(".insp-text")).to_have_text("[Rhea, the user's character] Rhea is a knight sworn to Orin.")
    page_log.assert_clean()


def test_the_system_prompt_setting_then_a_cards_own_prompt(page: Page, page_log: PageLog, app_url: str) -> None:
    lumi = character(app_url, "Lumi")
    chat = api(app_url, "POST", "/api/chats", json={"character_ids": [lumi["id"]], "persona": {"name": "Ari"}})
    page.goto("/#/settings")
    page.get_by_label("System prompt").fill("You tell a tale of {{char}} for {{user}}.")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_role("status").filter(has_text="Saved")).to_be_visible()
    try:
        page.goto(f"/#/chat/{chat['id']}")
        system = open_inspector(page).locator(".insp-section[data-kind=system]")
        expect(system.locator(".insp-source")).to_contain_text("system prompt from Settings")
        system.locator("summary").click()
        expect(system.locator(".insp-text")).to_have_text("You tell a tale of Lumi for Ari.")

        page.goto(f"/#/library/character/{lumi['id']}")
        page.get_by_label("System prompt").fill("{{original}} Speak in rhyme.")
        page.get_by_role("button", name="Save", exact=True).click()
        wait_until(lambda: api(app_url, "GET", f"/api/characters/{lumi['id']}")["card"]["data"]["system_prompt"],
                   what="the card's system prompt saved")
        page.goto(f"/#/chat/{chat['id']}")
        system = open_inspector(page).locator(".insp-section[data-kind=system]")
        expect(system.locator(".insp-source")).to_contain_text("system prompt of Lumi's card")
        system.locator("summary").click()
        expect(system.locator(".insp-text")).to_have_text("You tell a tale of Lumi for Ari. Speak in rhyme.")
    finally:
        httpx.delete(f"{app_url}/api/settings/chats/system_prompt", timeout=10)
    page_log.assert_clean()


def test_personas_imported_from_a_sillytavern_settings_file(
        page: Page, page_log: PageLog, app_url: str, tmp_path: Path) -> None:
    settings = tmp_path / "settings.json"
    settings.write_bytes((FIXTURES / "personas" / "st_settings_personas.json").read_bytes())
    kai_picture = tmp_path / "1727000000001-Kai.png"
    Image.new("RGB", (8, 8), "teal").save(kai_picture, format="PNG")
    page.goto("/#/settings")
    try:
        with page.expect_file_chooser() as chooser:
            page.get_by_role("button", name="Import from SillyTavern…").click()
        chooser.value.set_files([str(settings), str(kai_picture)])
        results = page.get_by_role("region", name="Persona import results")
        imported = results.get_by_role("list", name="Imported").get_by_role("listitem")
        expect(imported.filter(has_text="Kai")).to_contain_text("(with picture)")
        expect(imported).to_have_count(3)
        expect(imported.filter(has_text="小雪")).not_to_contain_text("(with picture)")
        personas = page.get_by_role("list", name="Personas")
        expect(personas.locator(".persona", has_text="小雪")).to_contain_text("说话温柔")
        expect(personas.locator(".persona", has_text="Kai").locator("img.avatar-img")).to_be_visible()

        with page.expect_file_chooser() as chooser:
            page.get_by_role("button", name="Import from SillyTavern…").click()
        chooser.value.set_files(str(settings))
        expect(results).to_contain_text("Imported 0 personas, skipped 3.")
        expect(results.get_by_role("list", name="Skipped (already here)")).to_contain_text("小雪")
        expect(personas.locator(".persona", has_text="小雪")).to_have_count(1)
        page_log.assert_clean()
    finally:  # the module's app is shared: leave no persona (nor default) behind for the other tests
        for persona in api(app_url, "GET", "/api/personas"):
            if persona["name"] in ("User", "Kai", "小雪"):
                api(app_url, "DELETE", f"/api/personas/{persona['id']}")
