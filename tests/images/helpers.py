"""Helpers for image tests: the app wired to FakeA1111 and FakeLLM in-process, a two-character chat."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from fastapi.testclient import TestClient
from PIL import Image

from neuralrp.app import create_app
from neuralrp.chats import store
from neuralrp.config import Settings
from tests.fakes import FakeLLM
from tests.fakes.fake_a1111 import FakeA1111

SD_URL = "http://sd.test"
LLM_URL = "http://llm.test/v1"
ALICE_TAGS = "blonde hair, blue eyes, long hair, white dress"
BOB_TAGS = "black hair, glasses, 1boy, scar"
KEYWORDS = {"location": "moonlit greenhouse", "action": "pouring tea", "activity": "tea party",
            "dress": "silk kimono", "expression": "gentle smile"}
SCENE = [
    ("user", None, "Ari", "We finally reached the greenhouse, Alice. Bob, put the kettle down."),
    ("assistant", "Alice", "Alice", "*Alice laughs and sits by the orchids.* It is lovely at night, Ari."),
    ("assistant", "Bob", "Bob", "*Bob pours tea into three cups.* Careful, it is hot."),
]


def card(name: str, gender: str, tags: str) -> dict[str, Any]:
    """A V2 card with gender and visual tags in extensions.neuralrp."""
    return {"spec": "chara_card_v2", "spec_version": "2.0",
            "data": {"name": name, "description": f"{name} is a traveller.", "personality": "calm",
                     "scenario": "", "first_mes": "", "mes_example": "", "tags": [],
                     "extensions": {"neuralrp": {"gender": gender, "visual_tags": tags}}}}


@contextmanager
def image_client(settings: Settings, sd: FakeA1111 | None = None, llm: FakeLLM | None = None,
                 sd_transport: httpx.AsyncBaseTransport | None = None) -> Iterator[TestClient]:
    """A TestClient of the app with the fakes behind in-process transports."""
    image_transport = sd_transport or (httpx.ASGITransport(app=sd.app) if sd is not None else None)
    llm_transport = httpx.ASGITransport(app=llm.app) if llm is not None else None
    app = create_app(settings, llm_transport=llm_transport, image_transport=image_transport)
    with TestClient(app) as client:
        yield client


def add_character(client: TestClient, name: str, gender: str, tags: str) -> int:
    """Store a character card through the API; its id."""
    resp = client.post("/api/characters", json=card(name, gender, tags))
    assert resp.status_code == 201, resp.text
    return int(resp.json()["id"])


def two_character_chat(client: TestClient, mode: str = "auto") -> dict[str, Any]:
    """A chat with Alice (female) and Bob (male) and a few messages written straight into the DB."""
    alice = add_character(client, "Alice", "female", ALICE_TAGS)
    bob = add_character(client, "Bob", "male", BOB_TAGS)
    resp = client.post("/api/chats", json={"character_ids": [alice, bob], "persona": {"name": "Ari"}})
    assert resp.status_code == 201, resp.text
    chat = resp.json()
    if mode != chat["mode"]:
        assert client.patch(f"/api/chats/{chat['id']}", json={"mode": mode}).status_code == 200
    ids = {"Alice": alice, "Bob": bob}
    db = client.app.state.services.db  # type: ignore[attr-defined]
    with db.session() as conn:
        turn = 0
        for role, who, speaker, text in SCENE:
            turn = store.bump_turn(conn, chat["id"]) if role == "user" else turn
            store.insert_message(conn, chat["id"], role=role, content=text, turn=turn,
                                 character_id=ids.get(who or ""), speaker_name=speaker)
    return {**chat, "alice": alice, "bob": bob}


def last_message_id(client: TestClient, chat_id: int) -> int:
    """The id of the chat's newest live message."""
    resp = client.get(f"/api/chats/{chat_id}/messages")
    return int(resp.json()["messages"][-1]["id"])


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height of a PNG."""
    with Image.open(io.BytesIO(data)) as image:
        return image.size


def mask_data_url(width: int, height: int) -> str:
    """A black mask with a white square in the middle, as a PNG data URL."""
    image = Image.new("L", (width, height), 0)
    image.paste(255, (width // 4, height // 4, width * 3 // 4, height * 3 // 4))
    out = io.BytesIO()
    image.save(out, "PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


def keywords_json(**changes: str) -> str:
    """The fake LLM's snapshot answer."""
    return json.dumps({**KEYWORDS, **changes})
