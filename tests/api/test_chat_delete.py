"""Deleting chats (issue 14): soft, with undo, purged by retention; and a character's delete that says what
happens to its chats."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from neuralrp.clock import utcnow
from neuralrp.config import RetentionSettings
from neuralrp.ops.retention import prune
from tests.api.chat_helpers import CARD, chat_client, new_chat
from tests.fakes import FakeLLM


@pytest.fixture
def client(make_settings: Any) -> Iterator[TestClient]:
    with chat_client(make_settings(llm={"base_url": "http://llm.test"}), FakeLLM("llamacpp")) as c:
        yield c


def listed(client: TestClient, **query: Any) -> list[int]:
    return [c["id"] for c in client.get("/api/chats", params=query).json()]


def test_delete_hides_the_chat_and_undo_brings_it_back(client: TestClient) -> None:
    chat = new_chat(client)
    client.post(f"/api/chats/{chat['id']}/messages", json={"content": "Hello?", "stream": False})
    deleted = client.delete(f"/api/chats/{chat['id']}")
    assert deleted.status_code == 200 and deleted.json()["deleted_at"]
    assert listed(client) == [] and listed(client, deleted="true") == [chat["id"]]
    assert client.get("/api/search", params={"q": "Hello"}).json()["results"] == [], "nor in search"
    refused = client.post(f"/api/chats/{chat['id']}/messages", json={"content": "Still there?", "stream": False})
    assert refused.status_code == 409 and "deleted; restore it first" in refused.json()["detail"]
    assert client.post(f"/api/chats/{chat['id']}/regenerate", json={"stream": False}).status_code == 409
    restored = client.post(f"/api/chats/{chat['id']}/restore").json()
    assert restored["deleted_at"] is None and listed(client) == [chat["id"]]
    assert client.get("/api/search", params={"q": "Hello"}).json()["results"] != []
    messages = client.get(f"/api/chats/{chat['id']}/messages").json()["messages"]
    assert [m["role"] for m in messages] == ["assistant", "user", "assistant"], "nothing was lost"


def test_retention_purges_deleted_chats_after_the_configured_days(client: TestClient) -> None:
    keep, gone = new_chat(client), new_chat(client)
    client.delete(f"/api/chats/{gone['id']}")
    db = client.app.state.services.db
    with db.session() as conn:
        report = prune(conn, RetentionSettings(deleted_chat_days=30), utcnow() + timedelta(days=29))
        assert report.deleted_chats == 0
        report = prune(conn, RetentionSettings(deleted_chat_days=30), utcnow() + timedelta(days=31))
        assert report.deleted_chats == 1
    assert client.get(f"/api/chats/{gone['id']}").status_code == 404
    assert listed(client) == [keep["id"]]


def test_a_chat_being_written_cannot_be_deleted(client: TestClient) -> None:
    chat = new_chat(client)
    manager = client.app.state.services.generations
    manager.active[chat["id"]] = object()  # a reply in progress
    try:
        resp = client.delete(f"/api/chats/{chat['id']}")
    finally:
        del manager.active[chat["id"]]
    assert resp.status_code == 409 and listed(client) == [chat["id"]]


def test_deleting_a_character_in_chats_asks_what_to_do_with_them(client: TestClient) -> None:
    first = new_chat(client)
    seraphina = first["cast"][0]["character_id"]
    other = client.post("/api/characters", json={"name": "Bran", "first_mes": "Ho."}).json()
    group = client.post("/api/chats", json={"character_ids": [seraphina, other["id"]]}).json()
    refused = client.delete(f"/api/characters/{seraphina}")
    assert refused.status_code == 409
    assert "chats=keep" in refused.json()["detail"] and "chats=delete" in refused.json()["detail"]
    assert client.delete(f"/api/characters/{seraphina}", params={"chats": "keep"}).json() == {
        "deleted": True, "chats": "keep"}
    assert sorted(listed(client)) == sorted([first["id"], group["id"]])
    kept = client.get(f"/api/chats/{group['id']}").json()
    assert [c["name"] for c in kept["cast"]] == ["Bran"]
    history = client.get(f"/api/chats/{first['id']}/messages").json()["messages"]
    assert history[0]["speaker_name"] == "Seraphina", "her messages keep her name"


def test_deleting_a_character_with_its_chats_deletes_them_restorably(client: TestClient) -> None:
    chat = new_chat(client, CARD)
    character = chat["cast"][0]["character_id"]
    spare = new_chat(client, {"name": "Bran", "first_mes": "Ho."})
    assert client.delete(f"/api/characters/{character}", params={"chats": "delete"}).status_code == 200
    assert listed(client) == [spare["id"]] and listed(client, deleted="true") == [chat["id"]]
    assert client.get(f"/api/characters/{character}").status_code == 404
    assert client.delete(f"/api/characters/{character}", params={"chats": "maybe"}).status_code == 422
