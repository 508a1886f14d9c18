"""Message editing, delete/undo, history and restore through the API."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient

from neuralrp.api.routes import messages as message_routes
from neuralrp.api.routes import search as search_routes
from tests.api import chat_helpers
from tests.api.chat_helpers import messages, new_chat, send_streamed
from tests.fakes import FakeLLM


def _with_craft_routes(app: FastAPI) -> FastAPI:
    """Include the messages and search routers unless app.py already does."""
    paths = {getattr(r, "path", "") for r in app.routes}
    extra = APIRouter()
    if "/api/search" not in paths:
        extra.include_router(search_routes.router)
    if "/api/messages/{message_id}" not in paths:
        extra.include_router(message_routes.router)
    app.router.routes[0:0] = extra.routes  # ahead of the web UI's catch-all mount
    return app


@contextmanager
def craft_client(settings: Any, fake: FakeLLM | None = None) -> Iterator[TestClient]:
    """chat_client with the chat-craft routers present."""
    original = chat_helpers.create_app

    def create(*args: Any, **kwargs: Any) -> FastAPI:
        return _with_craft_routes(original(*args, **kwargs))

    chat_helpers.create_app = create  # type: ignore[assignment]
    try:
        with chat_helpers.chat_client(settings, fake) as client:
            yield client
    finally:
        chat_helpers.create_app = original  # type: ignore[assignment]


@pytest.fixture
def llm_settings(make_settings: Any) -> Any:
    return make_settings(llm={"base_url": "http://llm.test/v1"}, sampling={"max_tokens": 120})


def test_edit_history_restore_round_trip(llm_settings: Any) -> None:
    fake = FakeLLM("llamacpp")
    fake.enqueue("The glade is quiet.")
    with craft_client(llm_settings, fake) as client:
        chat = new_chat(client)
        send_streamed(client, chat["id"], "Where am I?")
        reply = messages(client, chat["id"])[-1]
        resp = client.put(f"/api/messages/{reply['id']}", json={"content": "The glade hums softly."})
        assert resp.status_code == 200 and resp.json()["content"] == "The glade hums softly."
        history = client.get(f"/api/messages/{reply['id']}/history").json()["changes"]
        assert history[0]["old"] == {"content": "The glade is quiet."}
        assert client.get(f"/api/chats/{chat['id']}/history").json()["changes"][0]["id"] == history[0]["id"]
        back = client.post(f"/api/history/{history[0]['id']}/restore")
        assert back.status_code == 200 and back.json()["content"] == "The glade is quiet."
        assert messages(client, chat["id"])[-1]["content"] == "The glade is quiet."
        ops = [c["operation"] for c in client.get(f"/api/messages/{reply['id']}/history").json()["changes"]]
        assert ops == ["restore", "update"]
        assert client.put(f"/api/messages/{reply['id']}", json={"content": " "}).status_code == 422
        assert client.put("/api/messages/9999", json={"content": "x"}).status_code == 404
        assert client.post("/api/history/9999/restore").status_code == 404


def test_deleted_message_leaves_prompt_but_stays_searchable(llm_settings: Any) -> None:
    with craft_client(llm_settings, FakeLLM("llamacpp")) as client:
        chat = new_chat(client)
        greeting = messages(client, chat["id"])[0]
        client.put(f"/api/messages/{greeting['id']}", json={"content": "The zanzibar lantern flickers."})
        assert "zanzibar lantern" in client.get(f"/api/chats/{chat['id']}/prompt").text
        resp = client.delete(f"/api/messages/{greeting['id']}")
        assert resp.status_code == 200 and resp.json()["archived"] is True
        assert messages(client, chat["id"]) == []
        assert "zanzibar" not in client.get(f"/api/chats/{chat['id']}/prompt").text
        hits = client.get("/api/search", params={"q": "zanzibar"}).json()["results"]
        assert [(h["message_id"], h["archived"]) for h in hits] == [(greeting["id"], True)]
        assert client.delete(f"/api/messages/{greeting['id']}").status_code == 409
        undo = client.post(f"/api/messages/{greeting['id']}/restore")
        assert undo.status_code == 200 and undo.json()["archived"] is False
        assert "zanzibar lantern" in client.get(f"/api/chats/{chat['id']}/prompt").text
        assert client.post(f"/api/messages/{greeting['id']}/restore").status_code == 409


def test_streaming_message_cannot_be_edited(llm_settings: Any) -> None:
    with craft_client(llm_settings, FakeLLM("llamacpp")) as client:
        chat = new_chat(client)
        greeting = messages(client, chat["id"])[0]
        with client.app.state.services.db.session() as conn:  # type: ignore[attr-defined]
            conn.execute("UPDATE messages SET status = 'streaming' WHERE id = ?", (greeting["id"],))
        assert client.put(f"/api/messages/{greeting['id']}", json={"content": "x"}).status_code == 409
        assert client.delete(f"/api/messages/{greeting['id']}").status_code == 409
