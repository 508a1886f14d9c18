"""Backups on the Status page in a real browser: create, restore with confirmation, delete."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import httpx
import pytest

from neuralrp.app import create_app
from neuralrp.config import load_settings
from tests.api.chat_helpers import CARD
from tests.e2e.conftest import PageLog, expect
from tests.fakes import LiveServer

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.playwright


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """NeuralRP with its own data dir (no LLM configured)."""
    settings = load_settings(overrides={"paths": {"data_dir": str(tmp_path_factory.mktemp("backups-ui"))}},
                             environ={})
    with LiveServer(create_app(settings)) as server:
        yield server.url


def test_create_restore_delete_backup(page: Page, page_log: PageLog, app_url: str) -> None:
    page.goto("/#/status")
    section = page.locator("section.backups")
    expect(section.get_by_text("No backups yet")).to_be_visible()
    section.get_by_role("button", name="Back up now").click()
    rows = section.locator(".backup-row")
    expect(rows).to_have_count(1)
    name = rows.first.get_attribute("data-name")
    assert name and name.endswith("-manual.db.gz")

    chat = httpx.post(f"{app_url}/api/chats", json={"card": CARD, "title": "made after the backup"}, timeout=10)
    assert chat.status_code in (200, 201), chat.text

    section.get_by_role("button", name=f"Restore {name}").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("pre-restore")
    dialog.get_by_role("button", name="Cancel").click()
    expect(rows).to_have_count(1)  # cancel changed nothing

    section.get_by_role("button", name=f"Restore {name}").click()
    page.get_by_role("dialog").get_by_role("button", name="Restore").click()
    expect(page.get_by_text(f"Restored {name}")).to_be_visible()
    expect(rows).to_have_count(2)
    expect(section.locator(".backup-row", has_text="pre-restore")).to_have_count(1)
    assert httpx.get(f"{app_url}/api/chats/{chat.json()['id']}", timeout=10).status_code == 404

    section.get_by_role("button", name=f"Delete {name}").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    expect(rows).to_have_count(1)
    expect(page.locator(".job[data-job='backup']")).to_be_visible()
    page_log.assert_clean()
