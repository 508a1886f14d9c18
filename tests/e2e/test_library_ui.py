"""The library UI in a real browser: import (picker and drag and drop), grid, search, tags, card and world editors.

The tests share one live app with its own data dir (module scope) and run in file order: the first one imports the
fixture cards through the file picker; later ones call `seeded` so they also work when run alone.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from neuralrp.app import create_app
from neuralrp.config import load_settings
from neuralrp.library.cardfile import parse_card
from tests.conftest import FIXTURES
from tests.e2e.conftest import PHONE, PageLog, expect
from tests.fakes.live import LiveServer

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

pytestmark = pytest.mark.playwright

CARDS = Path(FIXTURES) / "cards"
CARD_FILES = sorted(CARDS.iterdir())
NAMES = {"Seraphina", "Aqua", "Sakana", "Chiharu Yamada", "爱"}
BROKEN = b"\x89PNG\r\n\x1a\nbroken"
TAGS = {
    "Seraphina": ["fantasy", "healer", "forest"],
    "Sakana": ["fantasy", "healer"],
    "Aqua": ["fantasy", "comedy"],
    "Chiharu Yamada": ["slice of life", "comedy"],
}


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """This module's own app and data dir (overrides the session-wide server of conftest)."""
    data_dir = tmp_path_factory.mktemp("library-ui")
    app = create_app(load_settings(overrides={"paths": {"data_dir": str(data_dir)}}, environ={}))
    with LiveServer(app) as server:
        yield server.url


def characters(base: str, **query: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{base}/api/characters", params=query, timeout=10)
    response.raise_for_status()
    return response.json()  # type: ignore[no-any-return]


def by_name(base: str, name: str) -> dict[str, Any]:
    return next(c for c in characters(base) if c["name"] == name)


@pytest.fixture
def seeded(live_server: str) -> str:
    """The fixture cards are in the library (imported through the API when an earlier test did not)."""
    if not NAMES <= {c["name"] for c in characters(live_server)}:
        files = [("files", (p.name, p.read_bytes())) for p in CARD_FILES]
        httpx.post(f"{live_server}/api/library/import", files=files, timeout=60).raise_for_status()
    return live_server


def assert_clean_but(page_log: PageLog, status: int) -> None:
    """No errors but the browser's own "Failed to load resource" line for the HTTP status the test provoked."""
    expected = f"the server responded with a status of {status}"
    assert [e for e in page_log.console_errors if expected not in e] == []
    assert page_log.page_errors == []


def grid(page: Page) -> Locator:
    return page.get_by_role("list", name="Characters")


def card_names(page: Page) -> Locator:
    return grid(page).locator(".lib-card-name")


def open_library(page: Page) -> None:
    page.goto("/#/library")
    expect(page.get_by_role("heading", level=1, name="Library")).to_be_visible()


def test_import_cards_through_the_file_picker(
    page: Page, page_log: PageLog, live_server: str, tmp_path: Path, screenshot_dir: Path
) -> None:
    broken = tmp_path / "broken.png"
    broken.write_bytes(BROKEN)
    open_library(page)
    expect(page.get_by_text("Your library is empty")).to_be_visible()

    with page.expect_file_chooser() as chooser:
        page.get_by_role("button", name="Import", exact=True).click()
    assert chooser.value.is_multiple()
    chooser.value.set_files([*CARD_FILES, broken])

    results = page.get_by_role("region", name="Import results")
    expect(results.locator(".lib-result")).to_have_count(len(CARD_FILES) + 1)
    expect(results).to_contain_text(f"Imported {len(CARD_FILES)} of {len(CARD_FILES) + 1} files.")
    for path in CARD_FILES:
        expect(results.locator(f'.lib-result[data-file="{path.name}"]')).to_have_attribute("data-status", "imported")
    error = results.locator('.lib-result[data-file="broken.png"]')
    expect(error).to_have_attribute("data-status", "error")
    expect(error.locator(".lib-result-detail")).to_have_text(re.compile(r"^broken\.png: \S"))

    expect(card_names(page)).to_have_count(len(NAMES))
    assert set(card_names(page).all_inner_texts()) == NAMES
    expect(page.locator(".lib-count")).to_have_text(f"{len(NAMES)} characters")
    for name in NAMES:
        img = grid(page).get_by_role("img", name=f"Avatar of {name}")
        expect(img).to_have_attribute("loading", "lazy")
        expect(img).to_have_js_property("complete", True)
        assert img.evaluate("i => i.naturalWidth") > 0, f"{name}'s avatar did not load"
    sakana = grid(page).get_by_role("link", name="Sakana")
    expect(sakana).to_contain_text("by bronya_rand")
    page.screenshot(path=str(screenshot_dir / "import-results-desktop.png"))
    page_log.assert_clean()


def test_search_narrows_the_grid(page: Page, page_log: PageLog, seeded: str) -> None:
    open_library(page)
    expect(card_names(page)).to_have_count(len(NAMES))
    search = page.get_by_role("searchbox", name="Search characters")
    search.fill("seraph")
    expect(card_names(page)).to_have_text(["Seraphina"])
    expect(page).to_have_url(re.compile(r"#/library\?q=seraph$"))
    search.fill("BRONYA")  # the creator, any case
    expect(card_names(page)).to_have_text(["Sakana"])
    search.fill("no such character anywhere")
    expect(page.get_by_text("No characters match")).to_be_visible()
    page.get_by_role("button", name="Clear filters").click()
    expect(card_names(page)).to_have_count(len(NAMES))
    expect(search).to_have_value("")
    page_log.assert_clean()


def tag_characters(base: str) -> None:
    for name, tags in TAGS.items():
        char = httpx.get(f"{base}/api/characters/{by_name(base, name)['id']}", timeout=10).json()
        card = char["card"]
        card["data"]["tags"] = tags
        httpx.put(f"{base}/api/characters/{char['id']}", json={"card": card}, timeout=10).raise_for_status()


def test_tag_chips_filter_with_and(page: Page, page_log: PageLog, seeded: str) -> None:
    tag_characters(seeded)
    open_library(page)
    chips = page.get_by_role("group", name="Filter by tag")
    expect(chips.get_by_role("button")).to_have_count(5)  # the five most used tags, most used first
    expect(chips.get_by_role("button").first).to_have_attribute("data-tag", "fantasy")
    expect(chips.get_by_role("button", name=re.compile("^fantasy"))).to_contain_text("3")

    fantasy = chips.get_by_role("button", name=re.compile("^fantasy"))
    fantasy.click()
    expect(fantasy).to_have_attribute("aria-pressed", "true")
    expect(card_names(page)).to_have_count(3)
    chips.get_by_role("button", name=re.compile("^healer")).click()
    expect(card_names(page)).to_have_count(2)
    assert set(card_names(page).all_inner_texts()) == {"Seraphina", "Sakana"}
    expect(page).to_have_url(re.compile(r"tags=fantasy%2Chealer$"))
    expect(grid(page).get_by_role("link", name="Seraphina").locator(".lib-tag")).to_have_text(
        ["fantasy", "healer", "forest"]
    )

    box = page.get_by_role("combobox", name="Filter by tag")
    box.fill("for")
    option = page.get_by_role("option", name=re.compile("^forest"))
    expect(option).to_be_visible()
    box.press("ArrowDown")
    expect(option).to_have_attribute("aria-selected", "true")
    box.press("Enter")
    expect(card_names(page)).to_have_text(["Seraphina"])

    page.get_by_role("button", name="Clear tags").click()
    expect(card_names(page)).to_have_count(len(NAMES))
    page_log.assert_clean()


def open_editor(page: Page, name: str) -> None:
    open_library(page)
    grid(page).get_by_role("link", name=name).click()
    expect(page).to_have_url(re.compile(r"#/library/character/\d+$"))
    expect(page.get_by_role("heading", level=1, name=name)).to_be_visible()


def test_card_editor_saves_every_field_and_keeps_extensions(page: Page, page_log: PageLog, seeded: str) -> None:
    original = parse_card((CARDS / "st_default_Seraphina.png").read_bytes(), "st_default_Seraphina.png")
    open_editor(page, "Seraphina")
    for label in [
        "Name",
        "Creator",
        "Version",
        "Description",
        "Personality",
        "Scenario",
        "First message",
        "Example dialogue",
        "System prompt",
        "Post-history instructions",
        "Creator notes",
    ]:
        expect(page.get_by_role("textbox", name=label, exact=True)).to_be_visible()
    expect(page.get_by_role("textbox", name="Creator", exact=True)).to_have_value(original.data["creator"])
    lore = page.get_by_role("region", name="Lorebook")
    expect(lore.get_by_role("listitem")).to_have_count(4)
    expect(lore.get_by_role("link", name="Open in world editor")).to_have_attribute(
        "href", re.compile(r"^#/library/world/\d+$")
    )

    page.get_by_role("textbox", name="Personality").fill("Gentle, fierce when the forest is threatened.")
    page.get_by_role("button", name="Add greeting").click()
    page.get_by_label("Alternate greeting 1").fill("A second hello.")
    page.get_by_role("button", name="Add greeting").click()
    page.get_by_label("Alternate greeting 2").fill("A first hello.")
    page.get_by_role("button", name="Move greeting 2 up").click()
    expect(page.get_by_label("Alternate greeting 1")).to_have_value("A first hello.")
    tag_box = page.get_by_role("combobox", name="Add a tag")
    tag_box.fill("brave")
    tag_box.press("Enter")
    expect(page.get_by_role("list", name="Tags").get_by_role("listitem")).to_have_text(
        ["fantasy", "healer", "forest", "brave"]
    )
    page.get_by_role("button", name="Remove tag forest").click()
    expect(page.get_by_text("Unsaved changes")).to_be_visible()

    with page.expect_response(lambda r: r.request.method == "PUT") as saved:
        page.get_by_role("button", name="Save", exact=True).click()
    assert saved.value.status == 200
    expect(page.get_by_text("All changes saved")).to_be_visible()

    page.reload()
    expect(page.get_by_role("textbox", name="Personality")).to_have_value(
        "Gentle, fierce when the forest is threatened."
    )
    expect(page.get_by_label("Alternate greeting 1")).to_have_value("A first hello.")
    expect(page.get_by_label("Alternate greeting 2")).to_have_value("A second hello.")
    expect(page.get_by_role("list", name="Tags").get_by_role("listitem")).to_have_text(["fantasy", "healer", "brave"])

    link = page.get_by_role("link", name="Export JSON")
    expect(link).to_have_attribute("download", "")
    exported = httpx.get(seeded + str(link.get_attribute("href")), timeout=10)
    exported.raise_for_status()
    card = parse_card(exported.content, "export.json")
    assert card.data["extensions"] == original.data["extensions"]
    assert card.data["personality"] == "Gentle, fierce when the forest is threatened."
    assert card.data["alternate_greetings"] == ["A first hello.", "A second hello."]
    assert card.data["description"] == original.data["description"]
    assert len(card.data["character_book"]["entries"]) == 4, "the lorebook is still embedded on export"
    png = httpx.get(seeded + str(page.get_by_role("link", name="Export PNG").get_attribute("href")), timeout=10)
    assert png.headers["content-type"] == "image/png"
    page_log.assert_clean()


def test_card_editor_shows_a_refused_field_inline(page: Page, page_log: PageLog, seeded: str) -> None:
    open_editor(page, "Aqua")
    name = page.get_by_role("textbox", name="Name", exact=True)
    name.fill("")
    page.get_by_role("button", name="Save", exact=True).click()
    error = page.locator(".lib-savebar").get_by_role("alert")
    expect(error).to_contain_text("name")
    expect(name).to_have_attribute("aria-invalid", "true")
    expect(name).to_be_focused()
    name.fill("Aqua")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(error).to_be_hidden()
    expect(name).not_to_have_attribute("aria-invalid", "true")
    assert_clean_but(page_log, 422)


def test_worlds_tab_and_entry_edit_persists(page: Page, page_log: PageLog, seeded: str) -> None:
    page.goto("/#/library")
    page.get_by_role("navigation", name="Library sections").get_by_role("link", name="Worlds").click()
    expect(page).to_have_url(re.compile(r"#/library/worlds$"))
    row = page.locator(".lib-world", has=page.get_by_role("link", name="Sakana", exact=True))
    expect(row.locator(".lib-world-count")).to_have_text("14 entries")
    row.locator(".lib-world-name").click()
    expect(page).to_have_url(re.compile(r"#/library/world/\d+$"))
    world_id = int(page.url.rsplit("/", 1)[1])
    entries = page.get_by_role("list", name="Entries").get_by_role("listitem")
    expect(entries).to_have_count(14)

    first = entries.first
    first.locator("summary").click()
    first.get_by_label("Content", exact=True).fill("Edited by the browser test.")
    first.get_by_label("Keys", exact=True).fill('harbor, "Old Pier"')
    first.get_by_label("Canon law").check()
    expect(first.locator(".lib-entry-flags")).to_contain_text("Canon law")
    page.get_by_role("button", name="Add entry").click()
    expect(entries).to_have_count(15)
    new = entries.last
    new.get_by_label("Keys", exact=True).fill("moonwell")
    new.get_by_label("Content", exact=True).fill("A well that shows the moon at noon.")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_text("All changes saved")).to_be_visible()
    expect(page.locator(".lib-world-total")).to_have_text("15 entries")

    page.reload()
    expect(entries).to_have_count(15)
    entries.first.locator("summary").click()
    expect(entries.first.get_by_label("Content", exact=True)).to_have_value("Edited by the browser test.")
    expect(entries.first.get_by_label("Keys", exact=True)).to_have_value('harbor, "Old Pier"')
    expect(entries.first.get_by_label("Canon law")).to_be_checked()
    stored = httpx.get(f"{seeded}/api/worlds/{world_id}", timeout=10).json()
    assert stored["entries"][0]["keys"] == ["harbor", '"Old Pier"']
    assert stored["entries"][0]["canon_law"] is True
    assert stored["entries"][-1]["keys"] == ["moonwell"]

    page.get_by_role("searchbox", name="Search entries").fill("moonwell")
    expect(entries.locator("visible=true")).to_have_count(1)
    entries.last.locator("summary").click()
    entries.last.get_by_role("button", name="Delete entry").click()
    page.keyboard.press("Control+s")  # the editors' save shortcut
    expect(page.locator(".lib-world-total")).to_have_text("14 entries")

    export = page.get_by_role("link", name="Export")
    data = httpx.get(seeded + str(export.get_attribute("href")), timeout=10).json()
    assert len(data["entries"]) == 14
    assert any(e["content"] == "Edited by the browser test." for e in data["entries"].values())

    page.goto("/#/library/worlds")
    expect(page.get_by_role("button", name="Import", exact=True)).to_be_visible()
    page.get_by_role("button", name="New world").click()
    page.get_by_role("textbox", name="World name").fill("Test Realm")
    page.get_by_role("button", name="Create").click()
    expect(page.get_by_role("heading", level=1, name="Test Realm")).to_be_visible()
    expect(page.locator(".lib-world-total")).to_have_text("0 entries")
    page_log.assert_clean()


def drop_files(page: Page, target: Locator, paths: list[Path], shot: Path | None = None) -> None:
    """Drag files over `target` and drop them, the way a file manager does."""
    files = [{"name": p.name, "data": base64.b64encode(p.read_bytes()).decode()} for p in paths]
    handle = page.evaluate_handle(
        """files => {
          const dt = new DataTransfer();
          for (const f of files) {
            const bytes = Uint8Array.from(atob(f.data), (c) => c.charCodeAt(0));
            dt.items.add(new File([bytes], f.name));
          }
          return dt;
        }""",
        files,
    )
    target.dispatch_event("dragenter", {"dataTransfer": handle})
    target.dispatch_event("dragover", {"dataTransfer": handle})
    expect(page.locator(".lib-dropzone.is-dragging .lib-drop")).to_be_visible()
    expect(page.get_by_text("Drop to import")).to_be_visible()
    if shot:
        page.screenshot(path=str(shot))
    target.dispatch_event("drop", {"dataTransfer": handle})
    expect(page.locator(".lib-dropzone.is-dragging")).to_have_count(0)


def test_drag_and_drop_imports_worlds_and_chats(
    page: Page, page_log: PageLog, seeded: str, screenshot_dir: Path
) -> None:
    open_library(page)
    world = Path(FIXTURES) / "worlds" / "st_Eldoria_release.json"
    chat = next((Path(FIXTURES) / "chats").iterdir())
    unchanged = CARDS / "lide_ai_v3_zh.json"  # already imported and never edited: skipped
    drop_files(page, grid(page), [world, chat, unchanged], screenshot_dir / "dragging-desktop.png")
    results = page.get_by_role("region", name="Import results")
    expect(results.locator(".lib-result")).to_have_count(3)
    skipped = results.locator(f'.lib-result[data-file="{unchanged.name}"]')
    expect(skipped).to_have_attribute("data-status", "skipped")
    expect(skipped.locator(".lib-result-detail")).not_to_be_empty()
    expect(results.locator(f'.lib-result[data-file="{world.name}"]')).to_have_attribute("data-status", "imported")
    expect(results.locator(f'.lib-result[data-file="{chat.name}"]')).to_have_attribute("data-status", "imported")
    expect(results.locator(f'.lib-result[data-file="{chat.name}"] .lib-result-open')).to_have_attribute(
        "href", re.compile(r"^#/chat/\d+$")
    )

    world_href = results.locator(f'.lib-result[data-file="{world.name}"] .lib-result-open').get_attribute("href")
    assert world_href and re.match(r"^#/library/world/\d+$", world_href)
    page.get_by_role("navigation", name="Library sections").get_by_role("link", name="Worlds").click()
    expect(page.locator(f'.lib-world-name[href="{world_href}"]')).to_be_visible()
    drop_files(page, page.get_by_role("list", name="Worlds"), [world])
    expect(results.locator(".lib-result")).to_have_count(1)
    expect(page.get_by_role("list", name="Worlds").get_by_role("listitem")).to_have_count(
        len(httpx.get(f"{seeded}/api/worlds", timeout=10).json())
    )
    page_log.assert_clean()


def test_start_chat_and_delete(page: Page, page_log: PageLog, seeded: str) -> None:
    open_editor(page, "Seraphina")
    with page.expect_response(lambda r: r.url.endswith("/api/chats") and r.request.method == "POST") as created:
        page.get_by_role("button", name="Start chat").click()
    chat_id = created.value.json()["id"]
    expect(page).to_have_url(re.compile(f"#/chat/{chat_id}$"))

    open_editor(page, "Seraphina")
    page.get_by_role("button", name="Delete", exact=True).click()
    dialog = page.get_by_role("dialog", name="Delete Seraphina?")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
    expect(dialog.get_by_role("group", name="Seraphina is in 1 chat")).to_be_visible()  # what to do with it
    expect(dialog.get_by_role("radio", name=re.compile("Keep the 1 chat"))).to_be_checked()
    dialog.get_by_role("button", name="Cancel").click()
    expect(page).to_have_url(re.compile(r"#/library/character/\d+$"))

    spare = {"spec": "chara_card_v2", "spec_version": "2.0", "data": {"name": "Spare Sam", "first_mes": "Hi."}}
    httpx.post(f"{seeded}/api/characters", json=spare, timeout=10).raise_for_status()
    open_editor(page, "Spare Sam")
    page.get_by_role("button", name="Delete", exact=True).click()
    page.get_by_role("dialog").get_by_role("button", name="Cancel").click()
    expect(page.get_by_role("dialog")).to_have_count(0)
    page.get_by_role("button", name="Delete", exact=True).click()
    page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    expect(page).to_have_url(re.compile(r"#/library$"))
    expect(card_names(page)).to_have_count(len(characters(seeded)))
    assert "Spare Sam" not in {c["name"] for c in characters(seeded)}
    assert "Spare Sam" not in card_names(page).all_inner_texts()


def test_screenshots_desktop_and_phone(
    page: Page, phone_page: Page, page_log: PageLog, seeded: str, screenshot_dir: Path
) -> None:
    sakana = by_name(seeded, "Sakana")
    for shot_page, label in ((page, "desktop"), (phone_page, "phone")):
        shot_page.goto("/#/library")
        expect(card_names(shot_page).first).to_be_visible()
        images = shot_page.locator(".lib-card img")
        for index in range(images.count()):  # no wait_for_function: the page's CSP forbids string eval
            expect(images.nth(index)).to_have_js_property("complete", True)
        shot_page.screenshot(path=str(screenshot_dir / f"library-{label}.png"), full_page=True)
        shot_page.goto(f"/#/library/character/{sakana['id']}")
        expect(shot_page.get_by_role("heading", level=1, name="Sakana")).to_be_visible()
        expect(shot_page.get_by_role("region", name="Lorebook").get_by_role("listitem")).to_have_count(14)
        shot_page.screenshot(path=str(screenshot_dir / f"editor-{label}.png"), full_page=False)
        shot_page.goto(f"/#/library/world/{sakana['world_id']}")
        entries = shot_page.get_by_role("list", name="Entries").get_by_role("listitem")
        entries.nth(1).locator("summary").click()
        shot_page.screenshot(path=str(screenshot_dir / f"world-{label}.png"), full_page=False)
        shot_page.goto("/#/library/worlds")
        expect(shot_page.locator(".lib-world").first).to_be_visible()
        shot_page.screenshot(path=str(screenshot_dir / f"worlds-{label}.png"), full_page=False)

    for route in (
        "library",
        f"library/character/{sakana['id']}",
        f"library/world/{sakana['world_id']}",
        "library/worlds",
    ):
        phone_page.goto(f"/#/{route}")
        expect(phone_page.get_by_role("heading", level=1)).to_be_visible()
        assert phone_page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], f"{route} overflows"
    phone_page.goto("/#/library")
    expect(card_names(phone_page).first).to_be_visible()
    boxes = [card.bounding_box() for card in grid(phone_page).locator(".lib-card").all()[:2]]
    assert boxes[0] and boxes[1] and boxes[0]["y"] == boxes[1]["y"], "two cards per row on a phone"
    page_log.assert_clean()
