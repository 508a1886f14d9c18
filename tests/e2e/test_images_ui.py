"""Images in a real browser: snapshot, image panel with [Name], inpainting mask, gallery, setup notice.

The app runs on a real port with a FakeLLM (snapshot keywords) and a FakeA1111 (the image server) on two more.
"""

from __future__ import annotations

import base64
import io
import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from PIL import Image

from tests.e2e.conftest import PHONE, PageLog, expect, serve_with_llm
from tests.e2e.visual import still
from tests.fakes import FakeA1111, FakeLLM, LiveServer

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

pytestmark = pytest.mark.playwright
MIRA_TAGS = "1girl, red_hair, long_hair, green_eyes, leather_apron"
KEYWORDS = {"location": "harbour tea stall", "action": "pouring tea", "activity": "serving",
            "dress": "leather apron", "expression": "smile"}
CARD = {"spec": "chara_card_v2", "spec_version": "2.0",
        "data": {"name": "Mira", "description": "A tea seller with red hair.", "first_mes": "*Mira pours tea.* Sit."}}


@pytest.fixture(scope="module")
def sd() -> FakeA1111:
    return FakeA1111()


@contextmanager
def serve_with_images(fake: FakeLLM, sd: FakeA1111, data_dir: Any) -> Iterator[str]:
    """NeuralRP with the fake LLM and the fake image server, each on its own port; yields the app's URL."""
    with LiveServer(sd.app) as sd_server, serve_with_llm(fake, data_dir, images={"base_url": sd_server.url}) as url:
        yield url


@pytest.fixture(scope="module")
def app_url(fake: FakeLLM, sd: FakeA1111, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serve_with_images(fake, sd, tmp_path_factory.mktemp("images-ui")) as url:
        yield url


@pytest.fixture(autouse=True)
def _fresh_fakes(fake: FakeLLM, sd: FakeA1111) -> None:
    fake.reset()
    fake.replies.clear()
    sd.reset()


def _chat(app_url: str, name: str = "Mira") -> dict[str, Any]:
    """A new chat with Mira (greeting included) whose visual tags are set; returns the chat JSON."""
    card = json.loads(json.dumps(CARD).replace("Mira", name))
    chat = httpx.post(f"{app_url}/api/chats", json={"card": card, "persona": {"name": "Ari"}}, timeout=10).json()
    member = next(c for c in chat["cast"] if c["name"] == name)
    stored = httpx.put(f"{app_url}/api/characters/{member['character_id']}/visual",
                       json={"gender": "female", "visual_tags": MIRA_TAGS}, timeout=10)
    assert stored.status_code == 200, stored.text
    return chat


def _last_message(app_url: str, chat_id: int) -> dict[str, Any]:
    return httpx.get(f"{app_url}/api/chats/{chat_id}/messages", timeout=10).json()["messages"][-1]


def _generate(app_url: str, **body: Any) -> dict[str, Any]:
    made = httpx.post(f"{app_url}/api/images/generate", json={"prompt": "a red apple", "width": 512, "height": 512,
                                                             **body}, timeout=30)
    assert made.status_code == 201, made.text
    return made.json()  # type: ignore[no-any-return]


def _card(page: Page, image_id: int) -> Locator:
    return page.locator(f'.img-card[data-image-id="{image_id}"]')


def _mask(request_json: dict[str, Any]) -> Image.Image:
    value = request_json["mask"]
    data = base64.b64decode(value.partition(",")[2] if value.startswith("data:") else value)
    return Image.open(io.BytesIO(data)).convert("L")


def _stroke(page: Page, canvas: Locator, points: list[tuple[float, float]]) -> None:
    """Drag the mouse through `points` (fractions of the canvas box)."""
    still(page)  # the dialog scales in: its box moves until the animation ends
    box = canvas.bounding_box()
    assert box is not None
    at = [(box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in points]
    page.mouse.move(*at[0])
    page.mouse.down()
    for x, y in at[1:]:
        page.mouse.move(x, y, steps=6)
    page.mouse.up()


def test_snapshot_shows_under_last_message_and_in_gallery(page: Page, fake: FakeLLM, sd: FakeA1111, app_url: str,
                                                           page_log: PageLog) -> None:
    chat = _chat(app_url)
    last = _last_message(app_url, chat["id"])
    fake.enqueue(json.dumps(KEYWORDS))
    page.goto(f"/#/chat/{chat['id']}")
    snapshot = page.get_by_role("button", name="Snapshot")
    expect(snapshot).to_be_enabled()
    snapshot.click()
    thumb = page.locator(f'.msg[data-id="{last["id"]}"] .msg-thumb')
    expect(thumb).to_have_count(1)
    expect(thumb.locator("img")).to_have_js_property("complete", True)
    assert len(sd.txt2img_requests()) == 1
    image_id = int(thumb.get_attribute("data-image-id") or 0)
    stored = httpx.get(f"{app_url}/api/images/{image_id}", timeout=10).json()
    assert stored["source"] == "snapshot" and stored["message_id"] == last["id"]
    assert sd.last_txt2img_request().json["prompt"] == stored["request"]["prompt"]
    thumb.click()
    lightbox = page.get_by_role("dialog", name="Image")
    expect(lightbox.get_by_role("button", name="Recreate")).to_be_visible()
    expect(lightbox.get_by_role("button", name="Inpaint")).to_be_visible()
    lightbox.get_by_role("button", name="Close").click()
    page.goto("/#/images")
    expect(_card(page, image_id)).to_be_visible()
    expect(_card(page, image_id).get_by_text("Snapshot", exact=True)).to_be_visible()
    page_log.assert_clean()


def test_image_panel_name_chip_puts_visual_tags_in_prompt(page: Page, sd: FakeA1111, app_url: str,
                                                          page_log: PageLog) -> None:
    chat = _chat(app_url)
    last = _last_message(app_url, chat["id"])
    page.goto(f"/#/chat/{chat['id']}")
    page.get_by_role("button", name="Image panel").click()
    panel = page.get_by_role("dialog", name="Image panel")
    expect(panel.get_by_label("Size")).to_contain_text("512")  # options loaded
    prompt = panel.get_by_label("Prompt", exact=True)
    prompt.fill("")
    panel.get_by_role("button", name="Insert [Mira]").click()
    expect(prompt).to_have_value("[Mira]")
    prompt.press("End")
    prompt.type(" reading a book")
    panel.get_by_label("Steps").fill("12")
    panel.get_by_label("Seed").fill("77")
    panel.get_by_role("button", name="Generate").click()
    expect(panel.get_by_role("button", name="Open the new image")).to_be_visible()
    sent = sd.last_txt2img_request().json
    assert MIRA_TAGS in sent["prompt"] and "[Mira]" not in sent["prompt"] and "reading a book" in sent["prompt"]
    assert sent["steps"] == 12 and sent["seed"] == 77
    expect(page.locator(f'.msg[data-id="{last["id"]}"] .msg-thumb')).to_have_count(1)
    remembered = httpx.get(f"{app_url}/api/images/manual-prompt", timeout=10).json()
    assert remembered["prompt"] == "[Mira] reading a book"
    page_log.assert_clean()


def test_inpaint_mask_undo_and_payload(page: Page, sd: FakeA1111, app_url: str, page_log: PageLog) -> None:
    image = _generate(app_url)
    page.goto("/#/images")
    _card(page, image["id"]).get_by_role("button", name="Inpaint").click()
    dialog = page.get_by_role("dialog", name="Inpaint")
    expect(dialog.get_by_label("Denoising strength")).to_have_value("0.75")
    canvas = dialog.get_by_role("img", name=re.compile("^Mask"))
    expect(canvas).to_have_attribute("width", "512")
    _stroke(page, canvas, [(0.6, 0.75), (0.85, 0.75)])
    expect(dialog.get_by_role("button", name="Undo")).to_be_enabled()
    page.keyboard.press("Control+z")
    expect(dialog.get_by_role("button", name="Undo")).to_be_disabled()
    dialog.get_by_role("button", name="Inpaint", exact=True).click()
    expect(dialog.get_by_role("alert")).to_contain_text("Paint over the area to repaint first")
    assert sd.img2img_requests() == []
    _stroke(page, canvas, [(0.2, 0.3), (0.45, 0.3)])
    dialog.get_by_label("Denoising strength").fill("0.5")
    dialog.get_by_role("button", name="Inpaint", exact=True).click()
    expect(dialog.get_by_role("button", name="Continue from result")).to_be_visible()
    sent = sd.last_img2img_request().json
    assert sent["denoising_strength"] == 0.5 and sent["inpainting_fill"] == 1
    mask = _mask(sent)
    assert mask.size == (512, 512)
    assert mask.getpixel((int(0.32 * 512), int(0.3 * 512))) == 255  # painted
    assert mask.getpixel((int(0.72 * 512), int(0.75 * 512))) == 0  # the undone stroke
    assert mask.getpixel((int(0.5 * 512), int(0.9 * 512))) == 0  # never painted
    assert set(mask.getdata()) <= set(range(256)) and mask.getextrema() == (0, 255)
    dialog.get_by_role("button", name="Close", exact=True).first.click()
    expect(dialog).to_be_hidden()
    # reopening on the same image shows the same mask: sending at once repaints the same area
    _card(page, image["id"]).get_by_role("button", name="Inpaint").click()
    dialog = page.get_by_role("dialog", name="Inpaint")
    expect(dialog.get_by_role("button", name="Undo")).to_be_enabled()
    expect(dialog.get_by_label("Denoising strength")).to_have_value("0.5")
    dialog.get_by_role("button", name="Inpaint", exact=True).click()
    expect(dialog.get_by_role("button", name="Continue from result")).to_be_visible()
    assert list(_mask(sd.last_img2img_request().json).getdata()) == list(mask.getdata())
    results = [i for i in httpx.get(f"{app_url}/api/images", timeout=10).json()["images"] if i["source"] == "inpaint"]
    assert len(results) == 2 and {r["message_id"] for r in results} == {image["message_id"]}
    dialog.get_by_role("button", name="Close", exact=True).first.click()
    # the result carries the mask too
    _card(page, results[0]["id"]).get_by_role("button", name="Inpaint").click()
    expect(page.get_by_role("dialog", name="Inpaint").get_by_role("button", name="Undo")).to_be_enabled()
    page_log.assert_clean()


def test_inpaint_by_touch_on_a_phone(open_page: Callable[..., Page], sd: FakeA1111, app_url: str,
                                     page_log: PageLog) -> None:
    image = _generate(app_url, prompt="a teapot", width=512, height=768)
    page = open_page(PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)
    page.goto("/#/images")
    _card(page, image["id"]).get_by_role("button", name="Inpaint").click()
    dialog = page.get_by_role("dialog", name="Inpaint")
    canvas = dialog.get_by_role("img", name=re.compile("^Mask"))
    expect(canvas).to_have_attribute("height", "768")
    canvas.tap()  # a touch in the middle paints a dot
    dialog.get_by_role("button", name="Inpaint", exact=True).click()
    expect(dialog.get_by_role("button", name="Continue from result")).to_be_visible()
    mask = _mask(sd.last_img2img_request().json)
    assert mask.size == (512, 768)
    assert mask.getpixel((256, 384)) == 255 and mask.getpixel((20, 20)) == 0 and mask.getpixel((256, 700)) == 0
    page_log.assert_clean()


def test_gallery_favourite_persists_and_open_chat_jumps(page: Page, app_url: str, page_log: PageLog) -> None:
    chat = _chat(app_url, "Nell")
    target = _last_message(app_url, chat["id"])
    image = _generate(app_url, chat_id=chat["id"], message_id=target["id"], prompt="tea on a counter")
    other = _generate(app_url, prompt="an empty street")
    page.goto("/#/images")
    card = _card(page, image["id"])
    star = card.get_by_role("button", name="Favourite")
    expect(star).to_have_attribute("aria-pressed", "false")
    star.click()
    expect(star).to_have_attribute("aria-pressed", "true")
    assert httpx.get(f"{app_url}/api/images/{image['id']}", timeout=10).json()["favorite"] is True
    page.reload()
    expect(_card(page, image["id"]).get_by_role("button", name="Favourite")).to_have_attribute("aria-pressed", "true")
    page.get_by_role("button", name="Favourites").click()
    expect(_card(page, other["id"])).to_have_count(0)
    expect(_card(page, image["id"])).to_be_visible()
    _card(page, image["id"]).get_by_role("link", name="Open chat").click()
    expect(page).to_have_url(re.compile(rf"#/chat/{chat['id']}\?seq={target['seq']}&message={target['id']}$"))
    expect(page.locator(f'.msg[data-id="{target["id"]}"]')).to_have_attribute("data-flash", "true")
    expect(page.locator(f'.msg[data-id="{target["id"]}"] .msg-thumb')).to_have_count(1)
    page_log.assert_clean()


def test_gallery_tags_recreate_and_delete(page: Page, sd: FakeA1111, app_url: str, page_log: PageLog) -> None:
    image = _generate(app_url, prompt="a lighthouse at dusk", seed=4242)
    page.goto("/#/images")
    card = _card(page, image["id"])
    card.get_by_role("button", name=f"Edit tags of image {image['id']}").click()
    card.get_by_label(f"Tags of image {image['id']}, comma separated").fill("coast, dusk")
    card.get_by_role("button", name="Save tags").click()
    expect(card.locator(".img-tag")).to_have_text(["coast", "dusk"])
    assert httpx.get(f"{app_url}/api/images/{image['id']}", timeout=10).json()["tags"] == ["coast", "dusk"]
    page.locator('.img-tag-filter [data-tag="coast"]').click()
    expect(page.locator(".img-card")).to_have_count(1)
    before = len(sd.txt2img_requests())
    card.get_by_role("button", name="Recreate").click()
    expect(page.locator(".img-card")).to_have_count(1)  # the copy has no tags: the filter hides it
    page.locator('.img-tag-filter [data-tag="coast"]').click()
    expect(page.locator(".img-card").first.get_by_text("Recreated", exact=True)).to_be_visible()
    assert len(sd.txt2img_requests()) == before + 1 and sd.last_txt2img_request().json["seed"] == 4242
    card.get_by_role("button", name="Delete").click()
    page.get_by_role("dialog", name="Delete this image?").get_by_role("button", name="Delete").click()
    expect(card).to_have_count(0)
    assert httpx.get(f"{app_url}/api/images/{image['id']}", timeout=10).status_code == 404
    page_log.assert_clean()


def test_progress_bar_and_stop(page: Page, fake: FakeLLM, sd: FakeA1111, app_url: str, page_log: PageLog) -> None:
    chat = _chat(app_url, "Oona")
    fake.enqueue(json.dumps(KEYWORDS))
    sd.fault("slow", seconds=6, path="/sdapi/v1/txt2img")
    interrupts = sd.interrupts
    page.goto(f"/#/chat/{chat['id']}")
    page.get_by_role("button", name="Snapshot").click()
    bar = page.get_by_role("progressbar", name="Taking a snapshot")
    expect(bar).to_be_visible()
    expect(bar).not_to_have_attribute("aria-valuenow", "0", timeout=5000)
    page.get_by_role("button", name="Stop").click()
    expect(bar).to_be_hidden(timeout=5000)
    assert sd.interrupts == interrupts + 1
    page_log.assert_clean()


def test_character_editor_visual_tags(page: Page, app_url: str, page_log: PageLog) -> None:
    chat = _chat(app_url, "Pia")
    cid = next(c["character_id"] for c in chat["cast"] if c["name"] == "Pia")
    page.goto(f"/#/library/character/{cid}")
    section = page.get_by_role("region", name="Appearance for images")
    tags = section.get_by_label("Visual tags")
    expect(tags).to_have_value(MIRA_TAGS)
    section.get_by_role("button", name="Make Danbooru tags").click()
    expect(tags).not_to_have_value(MIRA_TAGS)
    expect(tags).to_have_value(re.compile(r"red_hair"))
    expect(page.get_by_text("Unsaved changes")).to_be_visible()  # the suggestion waits for the one Save
    section.get_by_label("Gender").select_option("other")
    tags.fill("1girl, short_hair, freckles")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_text("All changes saved")).to_be_visible()
    stored = httpx.get(f"{app_url}/api/characters/{cid}", timeout=10).json()
    assert stored["gender"] == "other" and stored["visual_tags"] == "1girl, short_hair, freckles"
    assert stored["card"]["data"]["extensions"]["neuralrp"]["visual_tags"] == "1girl, short_hair, freckles"
    page_log.assert_clean()


@pytest.fixture
def live_server(fake: FakeLLM, tmp_path: Path) -> Iterator[str]:
    """An app of its own with no image server (the shared one must stay empty for the shell tests)."""
    with serve_with_llm(fake, tmp_path / "no-images") as url:
        yield url


def test_unconfigured_app_says_how_to_enable(page: Page, live_server: str, page_log: PageLog) -> None:
    status = httpx.get(f"{live_server}/api/images/status", timeout=10).json()
    assert status["configured"] is False and status["how_to_enable"]
    page.goto(f"{live_server}/#/images")
    notice = page.get_by_role("status", name="Image server")
    expect(notice).to_contain_text("Image generation is not set up")
    expect(notice).to_contain_text(status["how_to_enable"])
    expect(page.get_by_text("No images yet")).to_be_visible()
    chat = httpx.post(f"{live_server}/api/chats", json={"card": CARD, "persona": {"name": "Ari"}}, timeout=10).json()
    page.goto(f"{live_server}/#/chat/{chat['id']}")
    snapshot = page.get_by_role("button", name="Snapshot")
    expect(snapshot).to_have_attribute("aria-disabled", "true")
    expect(snapshot).to_have_attribute("title", re.compile(re.escape(status["how_to_enable"][:40])))
    page.get_by_role("button", name="Image panel").click()
    panel = page.get_by_role("dialog", name="Image panel")
    expect(panel.get_by_text(status["how_to_enable"][:40])).to_be_visible()
    expect(panel.get_by_role("button", name="Generate")).to_be_disabled()
    page_log.assert_clean()


def test_gallery_load_more(page: Page, app_url: str, page_log: PageLog) -> None:
    total = len(httpx.get(f"{app_url}/api/images", params={"limit": 200}, timeout=10).json()["images"])
    for n in range(max(0, 50 - total)):
        _generate(app_url, prompt=f"filler {n}", width=64, height=64)
    total = len(httpx.get(f"{app_url}/api/images", params={"limit": 200}, timeout=10).json()["images"])
    page.goto("/#/images")
    expect(page.locator(".img-card")).to_have_count(48)
    page.get_by_role("button", name="Load more").click()
    expect(page.locator(".img-card")).to_have_count(total)
    expect(page.get_by_role("button", name="Load more")).to_be_hidden()
    cards = page.locator(".img-card")
    ids = [int(cards.nth(i).get_attribute("data-image-id") or 0) for i in range(total)]
    assert ids == sorted(ids, reverse=True)  # newest first
    page_log.assert_clean()
