"""Personas (issue 14): a library of who the user plays; chosen per chat (else the default), changeable later;
{{user}} and the description reach the prompt as SillyTavern puts them there."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tests.api.chat_helpers import CARD, chat_client, last_reply_request
from tests.fakes import FakeLLM


@pytest.fixture
def env(make_settings: Any) -> Iterator[tuple[TestClient, FakeLLM]]:
    fake = FakeLLM("llamacpp")
    with chat_client(make_settings(llm={"base_url": "http://llm.test"}), fake) as c:
        yield c, fake


def persona_section(client: TestClient, chat_id: int) -> dict[str, Any] | None:
    doc = client.get(f"/api/chats/{chat_id}/prompt").json()
    return next((s for s in doc["sections"] if s["kind"] == "persona"), None)


def test_a_personas_description_goes_into_the_prompt(env: tuple[TestClient, FakeLLM]) -> None:
    client, fake = env
    kai = client.post("/api/personas", json={"name": "Kai", "description": "{{user}} is a lost cartographer "
                                              "who owes {{char}} a favour."}).json()
    assert kai["is_default"], "the first persona becomes the default"
    chat = client.post("/api/chats", json={"card": CARD}).json()  # no persona given: the default one
    assert chat["persona"] == {"persona_id": kai["id"], "name": "Kai", "description": kai["description"]}
    greeting = client.get(f"/api/chats/{chat['id']}/messages").json()["messages"][0]
    assert greeting["content"] == "You're awake, Kai."
    section = persona_section(client, chat["id"])
    assert section is not None
    assert section["text"] == "[Kai, the user's character] Kai is a lost cartographer who owes Seraphina a favour."
    client.post(f"/api/chats/{chat['id']}/messages", json={"content": "Where am I?", "stream": False})
    system = last_reply_request(fake).json["messages"][0]["content"]
    assert "Kai is a lost cartographer who owes Seraphina a favour." in system
    assert "\nKai:" in last_reply_request(fake).json["stop"]


def test_editing_a_persona_reaches_the_chats_playing_it(env: tuple[TestClient, FakeLLM]) -> None:
    client, _ = env
    kai = client.post("/api/personas", json={"name": "Kai", "description": "A cartographer."}).json()
    chat = client.post("/api/chats", json={"card": CARD, "persona_id": kai["id"]}).json()
    other = client.post("/api/chats", json={"card": CARD, "persona": {"name": "Ari"}}).json()
    edited = client.patch(f"/api/personas/{kai['id']}", json={"name": "Kai Vale", "description": "A sailor."}).json()
    assert edited["chats_updated"] == 1
    assert client.get(f"/api/chats/{chat['id']}").json()["persona"]["name"] == "Kai Vale"
    assert persona_section(client, chat["id"])["text"] == "[Kai Vale, the user's character] A sailor."
    assert client.get(f"/api/chats/{other['id']}").json()["persona"] == {"name": "Ari"}
    assert client.patch(f"/api/personas/{kai['id']}", json={"name": "  "}).status_code == 422


def test_a_chat_can_change_its_persona_later(env: tuple[TestClient, FakeLLM]) -> None:
    client, _ = env
    first = client.post("/api/personas", json={"name": "Kai"}).json()
    second = client.post("/api/personas", json={"name": "Rhea", "description": "A knight."}).json()
    chat = client.post("/api/chats", json={"card": CARD, "persona_id": first["id"]}).json()
    client.post(f"/api/chats/{chat['id']}/messages", json={"content": "Hi.", "stream": False})
    changed = client.patch(f"/api/chats/{chat['id']}", json={"persona_id": second["id"]}).json()
    assert changed["persona"]["name"] == "Rhea"
    client.post(f"/api/chats/{chat['id']}/messages", json={"content": "Hello again.", "stream": False})
    users = [m["speaker_name"] for m in client.get(f"/api/chats/{chat['id']}/messages").json()["messages"]
             if m["role"] == "user"]
    assert users == ["Kai", "Rhea"], "earlier messages keep the name they were written under"
    assert persona_section(client, chat["id"])["text"] == "[Rhea, the user's character] A knight."
    assert client.patch(f"/api/chats/{chat['id']}", json={"persona_id": 999}).status_code == 404
    assert client.patch(f"/api/chats/{chat['id']}", json={"persona": {"name": ""}}).status_code == 422


def test_default_persona_avatar_and_delete(env: tuple[TestClient, FakeLLM]) -> None:
    client, _ = env
    kai = client.post("/api/personas", json={"name": "Kai"}).json()
    rhea = client.post("/api/personas", json={"name": "Rhea", "is_default": True}).json()
    assert [p["name"] for p in client.get("/api/personas").json()] == ["Rhea", "Kai"], "the default first"
    assert not client.get(f"/api/personas/{kai['id']}").json()["is_default"]
    png = io.BytesIO()
    Image.new("RGB", (8, 8), "teal").save(png, format="PNG")
    pictured = client.post(f"/api/personas/{rhea['id']}/avatar", files={"file": ("r.png", png.getvalue())}).json()
    assert pictured["has_avatar"]
    got = client.get(f"/api/personas/{rhea['id']}/avatar")
    assert got.status_code == 200 and got.headers["content-type"] == "image/png"
    bad = client.post(f"/api/personas/{rhea['id']}/avatar", files={"file": ("x.png", b"not an image")})
    assert bad.status_code == 422 and client.get(f"/api/personas/{rhea['id']}").json()["has_avatar"]
    chat = client.post("/api/chats", json={"card": CARD}).json()
    assert client.delete(f"/api/personas/{rhea['id']}").json() == {"deleted": True}
    assert client.get(f"/api/chats/{chat['id']}").json()["persona"]["name"] == "Rhea", "the chat keeps it"
    assert client.post("/api/chats", json={"card": CARD}).json()["persona"]["name"] == "User", "no default now"
    assert client.post("/api/personas", json={"name": "x" * 101}).status_code == 422
