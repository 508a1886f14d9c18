"""Issue 20: Chromium saves an export under its Unicode name (RFC 6266 `filename*`), not `__________.json`."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING

import httpx
import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.playwright

NAMES = ["东方大陆的传说", "Ærøskøbing — «légendes» ✨"]


@pytest.mark.parametrize("name", NAMES)
def test_world_export_keeps_its_unicode_name(open_page: Callable[..., Page], app_url: str, name: str) -> None:
    book = {"name": name, "entries": {"0": {"uid": 0, "key": ["k"], "content": "c"}}}
    imported = httpx.post(f"{app_url}/api/worlds/import", files={"file": ("w.json", json.dumps(book).encode())})
    assert imported.status_code == 201, imported.text
    wid = next(w["id"] for w in httpx.get(f"{app_url}/api/worlds").json() if w["name"] == name)
    page = open_page(accept_downloads=True)
    page.goto("/login.html")
    with page.expect_download() as info:
        page.evaluate("""(href) => { const a = document.createElement('a'); a.href = href;
                                     document.body.append(a); a.click(); }""", f"/api/worlds/{wid}/export")
    download = info.value
    assert download.suggested_filename == f"{name}.json"
    saved = json.loads(download.path().read_text(encoding="utf-8"))
    assert saved.get("name", name) == name
