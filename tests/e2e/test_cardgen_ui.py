"""Card generation in a real browser: description -> draft in the editor -> regenerate a field -> save; errors."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.cardgen.helpers import ANSWER, DESCRIPTION, WORLD_ANSWER, answer
from tests.e2e.conftest import PageLog, expect, serve_with_llm
from tests.fakes import FakeLLM
from tests.waiting import wait_until

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.playwright
HTTP_ERROR_LOG = re.compile(r"Failed to load resource: the server responded with a status of 502 ")


@pytest.fixture(scope="module")
def app_url(fake: FakeLLM, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """NeuralRP on a real port, its LLM the fake on another."""
    with serve_with_llm(fake, tmp_path_factory.mktemp("cardgen-ui")) as url:
        yield url


@pytest.fixture(autouse=True)
def _fresh_fake(fake: FakeLLM) -> None:
    fake.reset()
    fake.replies.clear()


def _names(app_url: str) -> list[str]:
    return [c["name"] for c in httpx.get(f"{app_url}/api/characters", timeout=10).json()]


def test_generate_character_edit_regenerate_and_save(page: Page, fake: FakeLLM, app_url: str,
                                                     page_log: PageLog) -> None:
    fake.enqueue(answer(), json.dumps({"scenario": "You meet Mira on the docks at dawn."}))
    page.goto("/#/library")
    page.get_by_role("button", name="Generate character").click()
    dialog = page.get_by_role("dialog", name="Generate character")
    dialog.get_by_label("Description").fill(DESCRIPTION)
    dialog.get_by_role("button", name="Generate").click()
    expect(page).to_have_url(re.compile(r"#/library/draft$"))
    expect(page.get_by_role("heading", name="Draft: Mira")).to_be_visible()
    description = page.locator("textarea[name=description]")
    expect(description).to_have_value(ANSWER["description"])
    assert _names(app_url) == [], "the draft is not stored before saving"
    page.locator("input[name=creator]").fill("me")
    page.get_by_role("button", name="Regenerate scenario").click()
    expect(page.locator("textarea[name=scenario]")).to_have_value("You meet Mira on the docks at dawn.")
    page.get_by_role("button", name="Save to library").click()
    expect(page).to_have_url(re.compile(r"#/library/character/\d+$"))
    cid = int(page.url.rsplit("/", 1)[1])
    card = httpx.get(f"{app_url}/api/characters/{cid}", timeout=10).json()["card"]
    assert card["spec"] == "chara_card_v2" and card["data"]["description"] == ANSWER["description"]
    assert card["data"]["scenario"] == "You meet Mira on the docks at dawn." and card["data"]["creator"] == "me"
    assert card["data"]["extensions"]["neuralrp"]["visual_tags"].startswith("1girl, red_hair")
    expect(page.get_by_role("button", name="Regenerate description")).to_be_visible()
    page_log.assert_clean()


def test_malformed_answer_shows_clear_error_and_stores_nothing(page: Page, fake: FakeLLM, app_url: str,
                                                               page_log: PageLog) -> None:
    before = _names(app_url)
    fake.enqueue("Sure, Mira is a pirate!", "Still no JSON, sorry.")
    page.goto("/#/library")
    page.get_by_role("button", name="Generate character").click()
    dialog = page.get_by_role("dialog", name="Generate character")
    dialog.get_by_label("Description").fill(DESCRIPTION)
    dialog.get_by_role("button", name="Generate").click()
    expect(dialog.get_by_role("alert")).to_contain_text("did not give a usable character card")
    expect(dialog.get_by_role("alert")).to_contain_text("Nothing was changed")
    assert _names(app_url) == before and len(fake.chat_requests()) == 2
    assert all(HTTP_ERROR_LOG.search(e) for e in page_log.console_errors), page_log.console_errors
    assert page_log.page_errors == []


def test_generate_world_and_save(page: Page, fake: FakeLLM, app_url: str, page_log: PageLog) -> None:
    fake.enqueue(json.dumps(WORLD_ANSWER))
    page.goto("/#/library/worlds")
    page.get_by_role("button", name="Generate world").click()
    dialog = page.get_by_role("dialog", name="Generate world")
    dialog.get_by_label("Setting").fill("Floating islands held up by skystone.")
    dialog.get_by_label("Name").fill("The Drift")
    dialog.get_by_role("button", name="Generate").click()
    expect(dialog.get_by_label("Content of entry 2")).to_have_value(WORLD_ANSWER["entries"][1]["content"])
    dialog.get_by_label("Keys of entry 1").fill("Aerith, the Drift")
    dialog.get_by_role("button", name="Save world").click()
    expect(page).to_have_url(re.compile(r"#/library/world/\d+$"))
    wid = int(page.url.rsplit("/", 1)[1])
    world = httpx.get(f"{app_url}/api/worlds/{wid}", timeout=10).json()
    assert world["name"] == "The Drift"
    assert [(e["keys"], e["canon_law"]) for e in world["entries"]] == [(["Aerith", "the Drift"], False),
                                                                      (["skystone"], True)]
    page_log.assert_clean()


def test_make_card_from_chat_in_cast_panel(page: Page, fake: FakeLLM, app_url: str, page_log: PageLog) -> None:
    card = {"spec": "chara_card_v2", "spec_version": "2.0",
            "data": {"name": "Mira", "description": "A tea seller.", "first_mes": "*Mira pours tea.* Sit."}}
    chat = httpx.post(f"{app_url}/api/chats", json={"card": card, "persona": {"name": "Ari"}}, timeout=10).json()
    mira = next(c for c in chat["cast"] if c["name"] == "Mira")
    fake.enqueue(answer())
    page.goto(f"/#/chat/{chat['id']}")
    page.get_by_role("button", name=re.compile("^Cast")).click()
    page.get_by_role("button", name="Update card from chat: Mira").click()  # a library character: an update
    expect(page).to_have_url(re.compile(r"#/library/draft$"))
    expect(page.locator("textarea[name=personality]")).to_have_value(ANSWER["personality"])
    sent = fake.last_chat_request().json["messages"][1]["content"]
    assert "Mira: *Mira pours tea.* Sit." in sent
    page.get_by_role("button", name="Save to library").click()
    expect(page).to_have_url(re.compile(rf"#/library/character/{mira['character_id']}$"))
    stored = httpx.get(f"{app_url}/api/characters/{mira['character_id']}", timeout=10).json()["card"]["data"]
    assert stored["description"] == ANSWER["description"]
    page_log.assert_clean()


def test_generation_shows_tokens_so_far_and_cancel_stops_it(page: Page, fake: FakeLLM, app_url: str,
                                                            page_log: PageLog) -> None:
    before, cut = _names(app_url), fake.disconnects
    fake.enqueue(answer())
    fake.fault("slow", between=0.1)  # about 15 s for the whole card: long enough to watch and cancel
    page.goto("/#/library")
    page.get_by_role("button", name="Generate character").click()
    dialog = page.get_by_role("dialog", name="Generate character")
    dialog.get_by_label("Description").fill(DESCRIPTION)
    dialog.get_by_role("button", name="Generate").click()
    strip = dialog.locator(".llm-tasks")
    expect(strip).to_contain_text(re.compile(r"Card generation\s*writing · ([3-9]|\d\d+) tokens so far"))
    dialog.get_by_role("button", name="Cancel Card generation").click()
    expect(dialog.get_by_role("alert")).to_contain_text("Card generation was cancelled")
    expect(strip).to_be_hidden()
    wait_until(lambda: fake.disconnects > cut, what="the model to stop writing")
    assert _names(app_url) == before
    assert all(re.search(r"status of 499 ", e) for e in page_log.console_errors), page_log.console_errors
