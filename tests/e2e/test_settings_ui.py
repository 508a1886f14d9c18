"""The settings view in a real browser: save only what changed, refusals name the key, reset, test connection."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.e2e.conftest import DESKTOP, PHONE, PageLog, expect, serve_with_llm
from tests.fakes import FakeLLM

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page, Request

pytestmark = pytest.mark.playwright

HTTP_ERROR_LOG = re.compile(r"Failed to load resource: the server responded with a status of (4|5)\d\d ")


def assert_clean(page_log: PageLog) -> None:
    """No script errors; Chromium's own "Failed to load resource" lines for expected 4xx/5xx answers are fine."""
    page_log.console_errors[:] = [e for e in page_log.console_errors if not HTTP_ERROR_LOG.match(e)]
    page_log.assert_clean()


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """NeuralRP on a real port with a fake llama.cpp server as its LLM."""
    fake = FakeLLM("llamacpp")
    with serve_with_llm(fake, tmp_path_factory.mktemp("settings-ui")) as url:
        yield url


@pytest.fixture
def open_settings_page(open_page: Callable[..., Page]) -> Callable[..., Page]:
    """Factory: a fresh page on this module's app, showing the settings view."""

    def factory(viewport: dict[str, int] | None = None, **options: Any) -> Page:
        page = open_page(viewport, **options)
        page.goto("/#/settings")
        expect(page.get_by_label("Temperature")).to_be_visible()
        return page

    return factory


@pytest.fixture
def page(open_settings_page: Callable[..., Page]) -> Page:
    return open_settings_page()


def reset_button(page: Page, key: str) -> Locator:
    """The Reset button of the field for `section.key`."""
    return page.locator(f'.field[data-key="{key}"]').get_by_role("button", name="Reset", include_hidden=True)


def current(app_url: str) -> dict[str, Any]:
    return httpx.get(f"{app_url}/api/settings", timeout=10).json()  # type: ignore[no-any-return]


def test_every_input_has_a_label(page: Page, page_log: PageLog, app_url: str) -> None:
    doc = current(app_url)
    for name in ("Base URL", "API key", "Backend", "Model", "API mode", "Prompt template", "Keep incomplete replies",
                 "Temperature", "Top P", "Top K", "Min P", "Repetition penalty", "Max tokens per reply",
                 "Stop strings", "Context size (tokens)", "Canon law every N turns"):
        expect(page.get_by_label(name, exact=True)).to_be_visible()
    assert page.locator("input:not([type=file]), select, textarea").evaluate_all(
        "nodes => nodes.filter(n => !n.labels || n.labels.length === 0).map(n => n.id)") == []
    expect(page.get_by_label("Base URL", exact=True)).to_have_value(doc["values"]["llm"]["base_url"])
    expect(page.get_by_label("API key", exact=True)).to_have_attribute("type", "password")
    expect(page.get_by_label("Backend", exact=True)).to_have_value("auto")
    expect(page.get_by_label("Keep incomplete replies", exact=True)).to_be_checked()
    expect(page.get_by_label("Temperature", exact=True)).to_have_value(str(doc["values"]["sampling"]["temperature"]))
    assert_clean(page_log)


def test_save_sends_only_changes_and_values_persist(page: Page, page_log: PageLog, app_url: str) -> None:
    page.get_by_label("Temperature", exact=True).fill("0.7")
    page.get_by_label("Max tokens per reply", exact=True).fill("512")
    page.get_by_label("Stop strings", exact=True).fill("</s>\n\\nUser:")
    with page.expect_request(lambda r: r.method == "PUT" and r.url.endswith("/api/settings")) as put:
        page.get_by_role("button", name="Save").click()
    request: Request = put.value
    assert request.post_data_json == {"sampling": {"temperature": 0.7, "max_tokens": 512, "stop": ["</s>", "\nUser:"]}}
    expect(page.get_by_role("status").filter(has_text="Saved")).to_be_visible()

    doc = current(app_url)
    assert doc["values"]["sampling"]["temperature"] == 0.7 and doc["values"]["sampling"]["max_tokens"] == 512
    assert {"sampling.temperature", "sampling.max_tokens", "sampling.stop"} <= set(doc["overridden"])

    page.reload()
    expect(page.get_by_label("Temperature", exact=True)).to_have_value("0.7")
    expect(page.get_by_label("Max tokens per reply", exact=True)).to_have_value("512")
    expect(page.get_by_label("Stop strings", exact=True)).to_have_value("</s>\n\\nUser:")

    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Nothing to save.")).to_be_visible()
    assert_clean(page_log)


def test_images_section_points_neuralrp_at_an_image_server(page: Page, page_log: PageLog, app_url: str) -> None:
    assert httpx.get(f"{app_url}/api/images/status", timeout=10).json()["configured"] is False
    page.get_by_label("Image server URL", exact=True).fill("http://127.0.0.1:7860")
    page.get_by_label("Graphics card memory", exact=True).select_option("12")
    page.get_by_label("Put me in snapshots", exact=True).check()
    page.get_by_label("My gender", exact=True).select_option("female")
    with page.expect_request(lambda r: r.method == "PUT" and r.url.endswith("/api/settings")) as put:
        page.get_by_role("button", name="Save").click()
    assert put.value.post_data_json == {"images": {"base_url": "http://127.0.0.1:7860", "vram_gb": 12,
                                                   "user_in_shot": True, "user_gender": "female"}}
    expect(page.get_by_role("status").filter(has_text="Saved")).to_be_visible()
    images = current(app_url)["values"]["images"]
    assert (images["base_url"], images["vram_gb"], images["user_in_shot"]) == ("http://127.0.0.1:7860", 12, True)
    assert httpx.get(f"{app_url}/api/images/status", timeout=10).json()["configured"] is True
    page.reload()
    expect(page.get_by_label("Graphics card memory", exact=True)).to_have_value("12")
    for key in ("base_url", "vram_gb", "user_in_shot", "user_gender"):
        httpx.delete(f"{app_url}/api/settings/images/{key}", timeout=10).raise_for_status()
    assert_clean(page_log)


def test_reset_goes_back_to_the_config_value(page: Page, page_log: PageLog, app_url: str) -> None:
    httpx.put(f"{app_url}/api/settings", json={"sampling": {"top_k": 77}}, timeout=10).raise_for_status()
    page.reload()
    top_k = page.get_by_label("Top K", exact=True)
    expect(top_k).to_have_value("77")
    reset = reset_button(page, "sampling.top_k")
    expect(reset).to_be_visible()
    expect(reset).to_have_accessible_description("Top K")
    expect(reset_button(page, "sampling.top_p")).to_be_hidden()  # not overridden: no reset
    reset.click()
    expect(top_k).to_have_value("40")
    expect(reset).to_be_hidden()
    assert "sampling.top_k" not in current(app_url)["overridden"]
    assert_clean(page_log)


def test_invalid_value_shows_the_refusal_naming_the_key(page: Page, page_log: PageLog, app_url: str) -> None:
    before = current(app_url)
    page.get_by_label("Top P", exact=True).fill("5")
    page.get_by_role("button", name="Save").click()
    error = page.locator(".settings-actions").get_by_role("alert")
    expect(error).to_contain_text("sampling.top_p")
    expect(page.get_by_label("Top P", exact=True)).to_have_attribute("aria-invalid", "true")
    assert current(app_url) == before, "nothing stored"

    page.get_by_label("Top P", exact=True).fill("0.9")
    page.get_by_role("button", name="Save").click()
    expect(error).to_be_hidden()
    expect(page.get_by_label("Top P", exact=True)).not_to_have_attribute("aria-invalid", "true")
    assert current(app_url)["values"]["sampling"]["top_p"] == 0.9
    assert_clean(page_log)


def test_api_key_is_masked_and_blank_means_unchanged(page: Page, page_log: PageLog, app_url: str) -> None:
    key = page.get_by_label("API key", exact=True)
    expect(key).to_have_attribute("placeholder", "No key set")
    key.fill("sk-secret")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status").filter(has_text="Saved")).to_be_visible()
    expect(key).to_have_value("")
    expect(key).to_have_attribute("placeholder", "A key is saved (hidden)")
    assert current(app_url)["values"]["llm"]["api_key"] == "***"

    page.get_by_label("Model", exact=True).fill("")  # unchanged fields, key left blank: nothing is sent
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Nothing to save.")).to_be_visible()
    reset_button(page, "llm.api_key").click()
    expect(key).to_have_attribute("placeholder", "No key set")
    assert current(app_url)["values"]["llm"]["api_key"] is None
    assert_clean(page_log)


def test_test_connection_shows_the_server_kind(page: Page, page_log: PageLog) -> None:
    page.get_by_role("button", name="Test connection").click()
    result = page.locator(".conn-test")
    expect(result).to_contain_text("The LLM server answered.")
    expect(result.locator("dt", has_text="Kind").locator("xpath=following-sibling::dd[1]")).to_have_text("llamacpp")
    expect(result).to_contain_text("8,192 tokens")
    assert_clean(page_log)


def test_test_connection_shows_the_error_sentence(page: Page, page_log: PageLog) -> None:
    detail = "Cannot reach the LLM server at http://127.0.0.1:9: is it running?"
    page.route("**/api/llm/info", lambda route: route.fulfill(status=503, json={"error": "BackendUnavailable",
                                                                                "detail": detail}))
    page.get_by_role("button", name="Test connection").click()
    expect(page.locator(".conn-test").get_by_role("alert")).to_have_text(detail)
    assert_clean(page_log)


def test_screenshots(open_settings_page: Callable[..., Page], page_log: PageLog, screenshot_dir: Path) -> None:
    for label, viewport, options in (("desktop", DESKTOP, {}),
                                     ("phone", PHONE, {"is_mobile": True, "has_touch": True,
                                                       "device_scale_factor": 2})):
        page = open_settings_page(viewport, **options)
        page.get_by_role("button", name="Test connection").click()
        expect(page.locator(".conn-ok")).to_be_visible()
        page.get_by_label("Top P", exact=True).fill("5")
        page.get_by_role("button", name="Save").click()
        expect(page.locator(".settings-actions").get_by_role("alert")).to_be_visible()
        path = screenshot_dir / f"settings-{label}.png"
        page.screenshot(path=str(path), animations="disabled")
        assert path.stat().st_size > 5_000
        assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"], f"{label} overflows"
    assert_clean(page_log)
