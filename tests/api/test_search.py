"""Search through the API: ranked hits, archived ones, one chat, hostile syntax never 500s."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.chat_helpers import messages, new_chat
from tests.api.test_editing import craft_client
from tests.fakes import FakeLLM


@pytest.mark.parametrize("query", ['"unbalanced', "AND", "NEAR(x", "a:b", "*", "it's", "OR OR", "森林"])
def test_search_never_500s(settings: Any, query: str) -> None:
    with craft_client(settings, FakeLLM("llamacpp")) as client:
        new_chat(client)
        resp = client.get("/api/search", params={"q": query})
        assert resp.status_code == 200, resp.text
        assert isinstance(resp.json()["results"], list)


def test_search_hits_and_limits(settings: Any) -> None:
    with craft_client(settings, FakeLLM("llamacpp")) as client:
        first = new_chat(client)
        second = new_chat(client)
        client.patch(f"/api/chats/{first['id']}", json={"title": "Glade"})
        everything = client.get("/api/search", params={"q": "awake"}).json()["results"]
        assert {h["chat_id"] for h in everything} == {first["id"], second["id"]}
        only = client.get("/api/search", params={"q": "awake", "chat_id": first["id"]}).json()["results"]
        assert len(only) == 1
        hit = only[0]
        assert hit["chat_title"] == "Glade" and hit["seq"] == 1 and hit["turn"] == 0
        assert hit["role"] == "assistant" and hit["speaker_name"] == "Seraphina"
        assert hit["message_id"] == messages(client, first["id"])[0]["id"]
        s, e = hit["highlights"][0]
        assert hit["snippet"][s:e] == "awake"
        assert len(client.get("/api/search", params={"q": "awake", "limit": 1}).json()["results"]) == 1
        assert client.get("/api/search", params={"q": "  "}).status_code == 422
        assert client.get("/api/search", params={"q": "awake", "chat_id": 999}).status_code == 404
        assert client.get("/api/search").status_code == 422
