"""Issue 21 in a real browser: what a SillyTavern user reaches for in the first hour.

Avatars (messages, chat list, New chat, Cast, changing a card's picture), chat lists per character with search
and sort, the library's sort, swipe arrows on the newest reply (→ past the newest writes a new version),
keyboard shortcuts, Copy, the header at 1366 px, the Cast dialog's rows, fork and export names, texts, the card
editor's Regenerate buttons and single Save, the Status page's backup lines, the built-in model on Settings,
and a chat opened by its address with a notice over the composer. The app serves the fixed scene of scenes.py
against a fake llama.cpp server; tests that change the scene come last or undo what they did.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from PIL import Image

from neuralrp.app import create_app
from neuralrp.config import load_settings
from tests.e2e.conftest import PageLog, expect
from tests.e2e.scenes import BROWSER_NOW, T0, Scene, fixed_clock, seed_scene
from tests.e2e.visual import still
from tests.fakes import FakeLLM, LiveServer
from tests.waiting import wait_until

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

pytestmark = pytest.mark.playwright

WIDE = {"width": 1366, "height": 900}


@pytest.fixture(scope="module")
def scene_app(fake: FakeLLM, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Scene, Any, Any]]:
    """The fixed scene on a live app (its LLM the fake); yields (url, scene ids, the FastAPI app, the clock)."""
    data_dir = tmp_path_factory.mktemp("first-hour")
    with fixed_clock() as clock, LiveServer(fake.app) as llm:
        app = create_app(load_settings(overrides={"paths": {"data_dir": str(data_dir)}, "llm": {"base_url": llm.url}},
                                       environ={}))
        with LiveServer(app) as server:
            yield server.url, seed_scene(server.url, clock), app, clock


@pytest.fixture(scope="module")
def app_url(scene_app: tuple[str, Scene, Any, Any]) -> str:
    return scene_app[0]


@pytest.fixture
def scene(scene_app: tuple[str, Scene, Any, Any]) -> Scene:
    return scene_app[1]


@pytest.fixture(autouse=True)
def _fresh_fake(fake: FakeLLM) -> Iterator[None]:
    yield
    fake.replies.clear()
    fake.clear_faults()


def at_1366(open_page: Any) -> Page:
    page: Page = open_page(WIDE, timezone_id="UTC", locale="en-US")
    page.clock.set_fixed_time(BROWSER_NOW)
    return page


def replies(page: Page) -> Locator:
    return page.locator(".msg[data-role=assistant]")


def png(color: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 60), color).save(out, format="PNG")
    return out.getvalue()


def api(url: str, path: str) -> Any:
    resp = httpx.get(f"{url}{path}", timeout=10)
    resp.raise_for_status()
    return resp.json()


def boxes_overlap(a: Any, b: Any) -> bool:
    return not (a["x"] + a["width"] <= b["x"] or b["x"] + b["width"] <= a["x"]
                or a["y"] + a["height"] <= b["y"] or b["y"] + b["height"] <= a["y"])


# ---- avatars


def test_avatars_in_messages_chat_list_new_chat_and_cast(open_page: Any, scene: Scene, page_log: PageLog) -> None:
    page = at_1366(open_page)
    page.goto(f"/#/chat/{scene.glade_chat}")
    picture = f"/api/characters/{scene.seraphina}/avatar"
    expect(replies(page).first.locator("img.avatar-img")).to_have_attribute("src", re.compile(re.escape(picture)))
    expect(page.locator(".msg[data-role=user] .avatar-tile")).to_have_text("A")  # the persona: its initial
    rows = page.locator(".chat-item")
    expect(rows.filter(has_text="Seraphina").locator("img.avatar-img")).to_have_count(1)
    expect(rows.filter(has_text="Market day").locator(".avatar-tile")).to_have_text("M")  # Bran has no art yet

    page.get_by_role("button", name="Cast").click()
    cast = page.get_by_role("dialog", name="Cast")
    expect(cast.locator(f"[data-character-id='{scene.seraphina}'] img.avatar-img")).to_have_count(1)
    cast.get_by_role("button", name="Done").click()

    page.get_by_role("button", name="New chat").click()
    dialog = page.get_by_role("dialog", name="New chat")
    expect(dialog.locator(".pick", has_text="Seraphina").locator("img.avatar-img")).to_have_count(1)
    expect(dialog.locator(".pick", has_text="Bran").locator(".avatar-tile")).to_have_text("B")
    dialog.get_by_role("button", name="Cancel").click()
    page_log.assert_clean()


def test_change_a_cards_picture(open_page: Any, scene: Scene, app_url: str, page_log: PageLog,
                                tmp_path: Path) -> None:
    page = at_1366(open_page)
    page.goto(f"/#/library/character/{scene.bran}")
    before = page.locator(".lib-editor-avatar img").get_attribute("src")
    picture = tmp_path / "bran.png"
    picture.write_bytes(png((30, 160, 90)))
    page.locator(".lib-picture-tools input[type=file]").set_input_files(str(picture))
    expect(page.get_by_text("New picture for Bran.")).to_be_visible()
    expect(page.locator(".lib-editor-avatar img")).not_to_have_attribute("src", before or "")
    stored = api(app_url, f"/api/characters/{scene.bran}")
    assert stored["has_avatar"] is True
    served = httpx.get(f"{app_url}/api/characters/{scene.bran}/avatar", timeout=10).content
    assert Image.open(io.BytesIO(served)).size == (40, 60)

    bad = tmp_path / "notes.png"
    bad.write_text("not a picture", encoding="utf-8")
    page.locator(".lib-picture-tools input[type=file]").set_input_files(str(bad))
    expect(page.get_by_role("alert").filter(has_text="notes.png: not a picture")).to_be_visible()
    assert api(app_url, f"/api/characters/{scene.bran}")["updated_at"] == stored["updated_at"]  # nothing changed

    page.goto(f"/#/chat/{scene.market_chat}")  # Bran speaks there: his message shows the new picture
    expect(replies(page).first.locator("img.avatar-img")).to_have_count(1)
    page_log.console_errors[:] = [e for e in page_log.console_errors if "status of 422" not in e]
    page_log.assert_clean()


# ---- lists


def test_chat_list_search_sort_and_per_character(open_page: Any, scene: Scene, app_url: str,
                                                 page_log: PageLog) -> None:
    page = at_1366(open_page)
    solo = httpx.post(f"{app_url}/api/chats", json={"character_ids": [scene.bran], "title": "Ferry"}, timeout=10)
    page.goto("/#/chat")
    expect(page.locator(".chat-item", has_text="Ferry")).to_contain_text("1 message")  # one greeting
    expect(page.locator(".chat-item", has_text="Ferry")).not_to_contain_text("1 messages")
    httpx.delete(f"{app_url}/api/chats/{solo.json()['id']}", timeout=10)
    page.reload()
    names = page.locator(".chat-item-name")
    expect(names).to_have_text(["Seraphina", "Market day"])  # recent activity first

    page.get_by_label("Sort chats").select_option("name")
    expect(names).to_have_text(["Market day", "Seraphina"])
    page.get_by_label("Sort chats").select_option("created")
    expect(names).to_have_text(["Seraphina", "Market day"])
    page.get_by_label("Search chats").fill("market")
    expect(names).to_have_text(["Market day"])
    page.get_by_label("Search chats").fill("")
    page.get_by_label("Chats with").select_option(label="Bran")
    expect(names).to_have_text(["Market day"])
    page.get_by_label("Chats with").select_option(label="All characters")
    expect(names).to_have_count(2)

    page.goto(f"/#/library/character/{scene.seraphina}")  # the character's own chat list
    chats = page.get_by_role("region", name="Chats")
    expect(chats.locator(".lib-chat-name")).to_have_text(["Seraphina", "Market day"])
    chats.get_by_role("link", name="All 2 chats with Seraphina").click()
    expect(page).to_have_url(re.compile(rf"#/chat\?character={scene.seraphina}$"))
    expect(page.get_by_label("Chats with")).to_have_value(str(scene.seraphina))
    expect(names).to_have_count(2)
    page.get_by_label("Chats with").select_option("")  # the filter outlives the page: leave it clean
    page_log.assert_clean()


def test_library_sorts_by_name_recent_and_created(open_page: Any, scene_app: tuple[str, Scene, Any, Any],
                                                  page_log: PageLog) -> None:
    url, scene, _, clock = scene_app
    clock.at(T0 + timedelta(hours=4))  # the glade chat moves on: Seraphina is the one chatted with last
    sent = httpx.post(f"{url}/api/chats/{scene.glade_chat}/messages", json={"content": "Thank you.", "stream": False},
                      timeout=30)
    assert sent.status_code in (200, 201), sent.text
    page = at_1366(open_page)
    page.goto("/#/library")
    cards = page.locator(".lib-card-name")
    expect(cards).to_have_text(["Bran", "Seraphina"])
    page.get_by_label("Sort characters").select_option("recent")
    expect(cards).to_have_text(["Seraphina", "Bran"])  # Seraphina's glade chat is the newest activity
    expect(page).to_have_url(re.compile(r"sort=recent"))
    page.reload()
    expect(page.get_by_label("Sort characters")).to_have_value("recent")
    expect(cards).to_have_text(["Seraphina", "Bran"])
    page.get_by_label("Sort characters").select_option("created")
    expect(cards).to_have_text(["Bran", "Seraphina"])  # Bran was added a minute after Seraphina
    page_log.assert_clean()


# ---- swipes, shortcuts, copy


def test_swipe_arrows_are_always_on_the_newest_reply(open_page: Any, fake: FakeLLM, app_url: str, scene: Scene,
                                                      page_log: PageLog) -> None:
    chat = httpx.post(f"{app_url}/api/chats", json={"character_ids": [scene.seraphina]}, timeout=10).json()
    page = at_1366(open_page)
    page.goto(f"/#/chat/{chat['id']}")
    swipes = replies(page).last.locator(".swipes")
    expect(swipes.locator(".swipe-count")).to_have_text("1/1")
    expect(swipes.get_by_role("button", name="Previous version")).to_be_disabled()
    greeting = replies(page).last.locator(".msg-text").text_content()
    swipes.get_by_role("button", name="Write a new version").click()
    expect(swipes.locator(".swipe-count")).to_have_text("2/2", timeout=20_000)
    expect(replies(page).last.locator(".msg-text")).not_to_have_text(greeting or "")
    swipes.get_by_role("button", name="Previous version").click()
    expect(swipes.locator(".swipe-count")).to_have_text("1/2")
    expect(replies(page).last.locator(".msg-text")).to_have_text(greeting or "")
    expect(replies(page)).to_have_count(1)

    page.get_by_label("Message", exact=True).fill("Hi")
    page.get_by_role("button", name="Send", exact=True).click()
    expect(replies(page)).to_have_count(2, timeout=20_000)
    expect(page.get_by_role("button", name="Send", exact=True)).to_be_visible(timeout=20_000)
    expect(page.locator(".swipes")).to_have_count(1)  # only on the newest reply
    expect(replies(page).last.locator(".swipe-count")).to_have_text("1/1")
    page_log.assert_clean()


def test_keyboard_shortcuts_swipe_edit_and_stop(open_page: Any, fake: FakeLLM, app_url: str, scene: Scene,
                                                 page_log: PageLog) -> None:
    chat = httpx.post(f"{app_url}/api/chats", json={"character_ids": [scene.seraphina], "persona": {"name": "Ari"}},
                      timeout=10).json()
    page = at_1366(open_page)
    page.goto(f"/#/chat/{chat['id']}")
    box = page.get_by_label("Message", exact=True)
    box.fill("Tell me a story")
    box.press("Enter")
    expect(replies(page)).to_have_count(2, timeout=20_000)
    send = page.get_by_role("button", name="Send", exact=True)
    expect(send).to_be_visible(timeout=20_000)
    last = replies(page).last
    first_answer = last.locator(".msg-text").text_content() or ""

    box.focus()  # empty message box: the arrows belong to the chat
    fake.set_fault("slow", between=0.3)
    box.press("ArrowRight")  # past the newest version: write a new one
    expect(page.get_by_role("button", name="Stop")).to_be_visible(timeout=20_000)
    expect(last.locator(".swipe-count")).to_have_count(0)  # the new version is being written
    page.keyboard.press("Escape")
    expect(page.get_by_role("button", name="Stop")).to_be_hidden()
    wait_until(lambda: fake.in_flight == 0, what="the backend generation to end after Esc")
    stopped = api(app_url, f"/api/chats/{chat['id']}/messages")["messages"][-1]
    assert stopped["swipe_count"] == 2 and stopped["status"] in ("complete", "incomplete")
    fake.clear_faults()

    expect(last.locator(".swipe-count")).to_have_text("2/2")
    box.press("ArrowLeft")
    expect(last.locator(".swipe-count")).to_have_text("1/2")
    expect(last.locator(".msg-text")).to_have_text(first_answer)

    box.fill("typing")  # with text in the box the arrows move the cursor instead
    box.press("ArrowLeft")
    expect(last.locator(".swipe-count")).to_have_text("1/2")
    box.fill("")
    box.press("ArrowUp")  # edit your last message
    editor = page.get_by_label("Edit message")
    expect(editor).to_have_value("Tell me a story")
    editor.press("Escape")
    expect(editor).to_be_hidden()
    page_log.assert_clean()


def test_copy_message(open_page: Any, scene: Scene, page_log: PageLog) -> None:
    page = at_1366(open_page)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.goto(f"/#/chat/{scene.glade_chat}")
    user = page.locator(".msg[data-role=user]").first
    user.hover()
    user.get_by_role("button", name="Copy").click()
    expect(page.get_by_text("Message copied.")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == \
        "Where am I? The last thing I remember is the storm over the ridge."
    page_log.assert_clean()


# ---- layout and dialogs


def test_header_tools_fit_at_1366_and_the_mode_is_explained(open_page: Any, scene: Scene,
                                                            page_log: PageLog) -> None:
    page = at_1366(open_page)
    page.goto(f"/#/chat/{scene.glade_chat}")
    head = page.locator(".chat-head").bounding_box()
    assert head is not None
    tools = page.locator(".chat-tool")
    expect(tools.first).to_be_visible()
    for i in range(tools.count()):
        box = tools.nth(i).bounding_box()
        assert box is not None and box["x"] >= head["x"] and box["x"] + box["width"] <= head["x"] + head["width"], \
            f"tool {i} sticks out of the header"
    expect(page.get_by_role("button", name="Image panel")).to_be_visible()
    expect(page.get_by_role("button", name="Image panel")).to_have_attribute("title", "Image panel")
    assert page.evaluate("document.documentElement.scrollWidth") <= WIDE["width"]
    expect(page.locator(".chat-meta-mode")).to_have_text(re.compile(r"^Narrator: .*any cast member may speak"))
    page.get_by_role("radio", name="Focus").check()
    expect(page.locator(".chat-meta-mode")).to_have_text(re.compile(r"^Focus: only Seraphina"))
    page.get_by_role("radio", name="Narrator").check()
    expect(page.locator(".chat-meta-mode")).to_have_text(re.compile(r"^Narrator: "))
    page_log.assert_clean()


def test_cast_dialog_rows_and_labels(open_page: Any, scene: Scene, app_url: str, page_log: PageLog) -> None:
    npc = httpx.post(f"{app_url}/api/chats/{scene.market_chat}/npcs", json={"name": "Innkeeper Hal"}, timeout=10)
    assert npc.status_code == 201, npc.text
    try:
        page = at_1366(open_page)
        page.goto(f"/#/chat/{scene.market_chat}")
        page.get_by_role("button", name="Cast").click()
        cast = page.get_by_role("dialog", name="Cast")
        row = cast.locator(f"[data-character-id='{npc.json()['id']}']")
        expect(row.locator(".cast-kind")).to_have_text("NPC")
        buttons = row.locator(".cast-actions button")
        expect(buttons.first).to_be_visible()
        still(page)
        found = [buttons.nth(i).bounding_box() for i in range(buttons.count())]
        assert all(found) and not any(boxes_overlap(a, b) for i, a in enumerate(found) for b in found[i + 1:]), \
            "the NPC row's buttons overlap"
        expect(row.get_by_role("button", name="Card from chat: Innkeeper Hal")).to_be_visible()
        library = cast.locator(f"[data-character-id='{scene.bran}']")
        expect(library.locator(".cast-kind")).to_have_text("Library")
        update = library.get_by_role("button", name="Update card from chat: Bran")
        expect(update).to_have_attribute("title", re.compile("review it before it replaces the library card"))
        library.get_by_role("link", name="Open the card of Bran").click()
        expect(page).to_have_url(re.compile(rf"#/library/character/{scene.bran}$"))
    finally:
        httpx.delete(f"{app_url}/api/npcs/{npc.json()['id']}", timeout=10)
    page_log.assert_clean()


def test_fork_search_and_export_names(open_page: Any, scene: Scene, app_url: str, page_log: PageLog) -> None:
    page = at_1366(open_page)
    page.goto(f"/#/chat/{scene.glade_chat}")
    with page.expect_download() as download:
        page.get_by_role("button", name="Export").click()
        page.get_by_role("menuitem", name=re.compile("SillyTavern")).click()
    assert download.value.suggested_filename == "Seraphina - 2025-06-01@09h31m00s.jsonl"

    page.goto("/#/search?q=glade")
    expect(page.locator(".search-chat a")).to_have_text(["Seraphina"])  # as the chat list names it

    page.goto(f"/#/chat/{scene.glade_chat}")
    first = replies(page).first
    first.hover()
    first.get_by_role("button", name="Fork from here").click()
    dialog = page.get_by_role("dialog", name="Fork from here")
    expect(dialog.get_by_label("Title of the new chat")).to_have_attribute("placeholder", "Seraphina (fork)")
    dialog.get_by_role("button", name="Fork").click()
    expect(page.get_by_role("heading", level=1, name="Seraphina (fork)")).to_be_visible()
    fork_id = int(page.url.rsplit("/", 1)[1])
    assert api(app_url, f"/api/chats/{fork_id}")["title"] == "Seraphina (fork)"
    httpx.delete(f"{app_url}/api/chats/{fork_id}", timeout=10)
    page_log.assert_clean()


def test_card_editor_regenerate_buttons_and_one_save(open_page: Any, scene: Scene, app_url: str,
                                                     page_log: PageLog) -> None:
    page = at_1366(open_page)
    page.goto(f"/#/library/character/{scene.bran}")
    description = page.locator(".lib-field", has=page.locator("textarea[name=description]"))
    button = description.get_by_role("button", name="Regenerate Description")
    label = description.locator(".lib-label")
    b, lab, box = button.bounding_box(), label.bounding_box(), description.locator("textarea").bounding_box()
    assert b and lab and box
    assert abs((b["y"] + b["height"] / 2) - (lab["y"] + lab["height"] / 2)) < 6  # on the label's row
    assert b["y"] + b["height"] <= box["y"] and b["x"] + b["width"] <= box["x"] + box["width"] + 1
    expect(page.get_by_role("button", name="Generate Personality")).to_be_visible()  # empty: "Generate"
    expect(page.get_by_role("button", name="Save appearance")).to_have_count(0)

    section = page.get_by_role("region", name="Appearance for images")
    section.get_by_label("Visual tags").fill("1boy, beard, straw_hat")
    expect(page.get_by_text("Unsaved changes")).to_be_visible()
    page.locator("input[name=creator]").fill("river folk")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_text("All changes saved")).to_be_visible()
    stored = api(app_url, f"/api/characters/{scene.bran}")
    assert stored["visual_tags"] == "1boy, beard, straw_hat" and stored["card"]["data"]["creator"] == "river folk"
    assert stored["card"]["data"]["extensions"]["neuralrp"]["visual_tags"] == "1boy, beard, straw_hat"
    page_log.assert_clean()


def test_status_page_backup_lines_agree(open_page: Any, page_log: PageLog) -> None:
    page = at_1366(open_page)
    page.goto("/#/status")
    jobs = page.locator(".jobs-card")
    expect(jobs.locator(".fact", has_text="Last backup")).to_contain_text("None yet")
    backup = jobs.locator(".job[data-job=backup]")
    expect(backup).to_contain_text("Not run yet")
    expect(backup).to_contain_text("first run")
    expect(jobs).not_to_contain_text("scheduled")
    expect(page.get_by_text("No backups yet")).to_be_visible()
    page.get_by_role("button", name="Back up now").click()
    expect(page.locator(".backup-row")).to_have_count(1)
    page.get_by_role("button", name="Refresh").click()
    expect(jobs.locator(".fact", has_text="Last backup")).not_to_contain_text("None yet")
    page_log.assert_clean()


def test_settings_name_the_built_in_model(open_page: Any, scene_app: tuple[str, Scene, Any, Any],
                                          page_log: PageLog) -> None:
    runtime = scene_app[2].state.services.llm_runtime
    runtime.local = SimpleNamespace(model_path=Path("/models/tiny-roleplay.Q4_K_M.gguf"),
                                    base_url="http://127.0.0.1:8123/v1", stop=lambda: None)
    runtime.label = ""
    try:
        page = at_1366(open_page)
        page.goto("/#/settings")
        note = page.get_by_role("note")
        expect(note).to_contain_text("The built-in model is in use: tiny-roleplay.Q4_K_M.gguf")
        expect(note.locator("code")).to_have_text("http://127.0.0.1:8123/v1")
        expect(page.get_by_label("Base URL")).to_have_attribute("placeholder", re.compile("127.0.0.1:8123"))
    finally:
        runtime.local = None
    page_log.assert_clean()


def test_opening_a_chat_by_address_keeps_the_last_line_in_view(open_page: Any, scene: Scene,
                                                                tmp_path: Path, page_log: PageLog) -> None:
    """No LLM configured: a notice appears over the composer after the log was scrolled; the end stays in view."""
    app = create_app(load_settings(overrides={"paths": {"data_dir": str(tmp_path / "data")}}, environ={}))
    with LiveServer(app) as server:
        lines: list[dict[str, Any]] = [{"user_name": "Ari", "character_name": "Mira",
                                        "create_date": "2025-06-01@09h00m00s"}]
        lines += [{"name": "Ari" if i % 2 else "Mira", "is_user": bool(i % 2), "send_date": "2025-06-01T09:00:00Z",
                   "mes": f"Line {i}: " + "words " * 40} for i in range(30)]
        body = "\n".join(json.dumps(x) for x in lines).encode()
        done = httpx.post(f"{server.url}/api/library/import", files=[("files", ("Mira.jsonl", body))], timeout=20)
        chat_id = done.json()["results"][0]["id"]
        page = open_page(WIDE)
        held: list[Any] = []  # the status answer (it brings the notice) waits until the log has scrolled down
        page.route("**/api/system/status", lambda route: held.append(route))
        page.goto(f"{server.url}/#/chat/{chat_id}")
        last = page.locator(".msg").last
        expect(last).to_contain_text("Line 29")
        log = page.locator(".messages")
        wait_until(lambda: page.evaluate("() => document.activeElement?.classList.contains('composer-input')"),
                   what="the chat to finish opening")
        wait_until(lambda: held, what="the status request")
        held[0].continue_()
        expect(page.locator(".composer-notice")).to_be_visible()
        wait_until(lambda: page.evaluate(
            "() => { const m = document.querySelector('.messages');"
            " return m.scrollHeight - m.scrollTop - m.clientHeight; }") <= 2,
            what="the log to stay scrolled to its end")
        end, frame = last.bounding_box(), log.bounding_box()
        assert end and frame and end["y"] + end["height"] <= frame["y"] + frame["height"] + 1
    page_log.console_errors[:] = [e for e in page_log.console_errors if "status of 4" not in e]
    page_log.assert_clean()
