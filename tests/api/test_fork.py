"""Fork (Save As) and rename through the API."""

from __future__ import annotations

from typing import Any

from tests.api.chat_helpers import chat_client, messages, new_chat, send_streamed
from tests.fakes import FakeLLM


def test_fork_from_a_message(make_settings: Any) -> None:
    settings = make_settings(llm={"base_url": "http://llm.test/v1"})
    fake = FakeLLM("llamacpp")
    fake.enqueue("First reply.")
    fake.enqueue("Second reply.")
    with chat_client(settings, fake) as client:
        chat = new_chat(client)
        send_streamed(client, chat["id"], "One")
        send_streamed(client, chat["id"], "Two")
        before = messages(client, chat["id"])
        resp = client.post(f"/api/chats/{chat['id']}/fork", json={"message_id": before[2]["id"]})
        assert resp.status_code == 201, resp.text
        fork = resp.json()
        assert fork["id"] != chat["id"] and fork["title"] == "Seraphina (fork)"  # as the chat list names it
        assert fork["forked_from_chat_id"] == chat["id"] and fork["forked_from_message_id"] == before[2]["id"]
        assert [c["name"] for c in fork["cast"]] == [c["name"] for c in chat["cast"]]
        copied = messages(client, fork["id"])
        assert [(m["seq"], m["content"]) for m in copied] == [(m["seq"], m["content"]) for m in before[:3]]
        assert messages(client, chat["id"]) == before
        renamed = client.patch(f"/api/chats/{fork['id']}", json={"title": "Branch"})
        assert renamed.json()["title"] == "Branch"
        assert client.patch(f"/api/chats/{fork['id']}", json={"title": ""}).json()["title"] is None
        named = client.post(f"/api/chats/{chat['id']}/fork", json={"message_id": before[0]["id"], "title": "B2"})
        assert named.json()["title"] == "B2" and len(messages(client, named.json()["id"])) == 1
        assert client.post(f"/api/chats/{fork['id']}/fork", json={"message_id": before[3]["id"]}).status_code == 404
        assert client.post("/api/chats/999/fork", json={"message_id": 1}).status_code == 404
