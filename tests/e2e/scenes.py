"""A small, fixed library and chat history for browser tests that look at the whole UI.

`seed_scene(url)` fills an empty app: Seraphina (the real SillyTavern card, with its picture), Bran (a card
without art), the Eldoria world, an untitled chat with Seraphina (imported from SillyTavern lines with fixed
dates: a user turn, a reply with two versions), and a titled group chat. Every stored time comes from a fixed
clock (`fixed_clock`), so lists and times read the same on every run.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

import neuralrp.clock
from tests.conftest import FIXTURES

T0 = datetime(2025, 6, 1, 9, 30, tzinfo=UTC)
BROWSER_NOW = T0 + timedelta(hours=3)  # what the browser's clock says while the scene is shown
BRAN = {"spec": "chara_card_v2", "spec_version": "2.0", "data": {
    "name": "Bran", "description": "A ferryman who knows every river story.", "creator": "neuralrp tests",
    "first_mes": "*Bran leans on his pole.* Crossing, or just here for the stories?", "tags": ["fantasy"]}}
ST_LINES = [
    {"user_name": "Ari", "character_name": "Seraphina", "create_date": "2025-06-01@09h31m00s", "chat_metadata": {}},
    {"name": "Seraphina", "is_user": False, "send_date": "2025-06-01T09:31:00.000Z",
     "mes": "*Seraphina kneels beside you, her hands glowing softly.* You're awake. **Rest now**; the glade "
            "keeps you safe."},
    {"name": "Ari", "is_user": True, "send_date": "2025-06-01T09:32:00.000Z",
     "mes": "Where am I? The last thing I remember is the storm over the ridge."},
    {"name": "Seraphina", "is_user": False, "send_date": "2025-06-01T09:33:00.000Z",
     "mes": "In the Eldoria glade. I found you by the fallen oak and carried you here. Drink this first.",
     "swipe_id": 1, "swipes": [
         "You are in my glade, traveller. The storm is over.",
         "In the Eldoria glade. I found you by the fallen oak and carried you here. Drink this first."]},
]


@dataclass
class FixedClock:
    """The time neuralrp.clock.iso() stamps while a scene is built; move it with `at`."""

    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now

    def at(self, moment: datetime) -> None:
        """Stamp what follows with this time."""
        self.now = moment


@contextmanager
def fixed_clock() -> Iterator[FixedClock]:
    """Every stored timestamp (neuralrp.clock.iso) reads this clock until the block ends."""
    clock = FixedClock()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(neuralrp.clock, "utcnow", clock)
        yield clock


@dataclass
class Scene:
    """The ids of what seed_scene stored."""

    seraphina: int
    bran: int
    world: int
    glade_chat: int
    market_chat: int


def _ok(resp: httpx.Response, status: int = 200) -> Any:
    assert resp.status_code == status, resp.text
    return resp.json()


def seed_scene(url: str, clock: FixedClock) -> Scene:
    """Fill an empty app at `url` with the scene (see the module docstring); returns the ids."""
    with httpx.Client(base_url=url, timeout=30) as http:
        clock.at(T0)
        card = (FIXTURES / "cards/st_default_Seraphina.png").read_bytes()
        seraphina = _ok(http.post("/api/characters/import", files={"file": ("Seraphina.png", card)}), 201)
        clock.at(T0 + timedelta(minutes=1))
        bran = _ok(http.post("/api/characters", json=BRAN), 201)
        world_file = (FIXTURES / "worlds/st_Eldoria_release.json").read_bytes()
        world = _ok(http.post("/api/worlds/import", files={"file": ("Eldoria.json", world_file)}), 201)
        clock.at(T0 + timedelta(minutes=20))
        market = _ok(http.post("/api/chats", json={"character_ids": [bran["id"], seraphina["id"]],
                                                   "title": "Market day", "persona": {"name": "Ari"}}), 201)
        clock.at(T0 + timedelta(hours=2, minutes=45))
        lines = "\n".join(json.dumps(line) for line in ST_LINES).encode()
        imported = _ok(http.post("/api/library/import", files=[("files", ("Seraphina - glade.jsonl", lines))]))
        glade = imported["results"][0]["id"]
        _ok(http.patch(f"/api/chats/{glade}", json={"title": ""}))
    return Scene(seraphina["id"], bran["id"], world["id"], glade, market["id"])
