"""NPCs: created mid-chat, in the prompt like any character, promoted into the library."""

from __future__ import annotations

from typing import Any

from neuralrp.library.cardfile import parse_card
from tests.api.chat_helpers import chat_client, new_chat, send_streamed
from tests.fakes import FakeLLM

MIRA = {"name": "Mira", "gender": "female", "description": "A one-eyed innkeeper who knows every rumour.",
        "personality": "shrewd, warm", "visual_tags": "1girl, eyepatch, apron, brown hair"}


def test_npc_lifecycle_and_promotion(make_settings: Any) -> None:
    settings = make_settings(llm={"base_url": "http://llm.test"})
    fake = FakeLLM("llamacpp")
    with chat_client(settings, fake) as client:
        chat = new_chat(client)
        npc = client.post(f"/api/chats/{chat['id']}/npcs", json=MIRA)
        assert npc.status_code == 201
        npc_id = npc.json()["id"]
        assert npc.json()["scope_chat_id"] == chat["id"] and npc.json()["visual_tags"] == MIRA["visual_tags"]
        cast = client.get(f"/api/chats/{chat['id']}").json()["cast"]
        assert {"name": "Mira", "is_npc": True}.items() <= next(c for c in cast if c["name"] == "Mira").items()
        assert "Mira" not in [c["name"] for c in client.get("/api/characters").json()], "NPCs are chat-scoped"
        send_streamed(client, chat["id"], "Mira, any news?")
        doc = client.get(f"/api/chats/{chat['id']}/prompt").json()
        card = next(s for s in doc["sections"] if s["source"].get("name") == "Mira")
        assert card["kind"] == "card_full" and "one-eyed innkeeper" in card["text"], "full parity in the prompt"
        dup = client.post(f"/api/chats/{chat['id']}/npcs", json={"name": "mira"})
        assert dup.status_code == 409
        bad = client.post(f"/api/chats/{chat['id']}/npcs", json={"name": "X", "gender": "robot"})
        assert bad.status_code == 422 and "field 'gender'" in bad.json()["detail"]
        edited = client.patch(f"/api/npcs/{npc_id}", json={"personality": "shrewd, warm, nosy"}).json()
        assert edited["card"]["data"]["personality"] == "shrewd, warm, nosy"
        promoted = client.post(f"/api/npcs/{npc_id}/promote").json()
        assert promoted["scope_chat_id"] is None
        library = {c["name"]: c for c in client.get("/api/characters").json()}
        assert library["Mira"]["description"] == MIRA["description"]
        stored = client.get(f"/api/characters/{npc_id}").json()
        assert stored["card"]["data"]["personality"] == "shrewd, warm, nosy" and stored["visual_tags"]
        mirror = settings.data_dir / "characters" / stored["source_file"]
        assert parse_card(mirror.read_bytes(), "m.png").data["name"] == "Mira"
        assert client.post(f"/api/npcs/{npc_id}/promote").status_code == 404, "already global"


def test_delete_npc_keeps_messages(make_settings: Any) -> None:
    fake = FakeLLM("llamacpp")
    with chat_client(make_settings(llm={"base_url": "http://llm.test"}), fake) as client:
        chat = new_chat(client)
        npc_id = client.post(f"/api/chats/{chat['id']}/npcs", json={"name": "Tomas"}).json()["id"]
        client.patch(f"/api/chats/{chat['id']}", json={"mode": "focus", "focus_character_id": npc_id})
        fake.enqueue("Tomas grunts.")
        send_streamed(client, chat["id"], "Hello Tomas")
        assert client.delete(f"/api/npcs/{npc_id}").json() == {"deleted": True}
        messages = client.get(f"/api/chats/{chat['id']}/messages").json()["messages"]
        assert messages[-1]["speaker_name"] == "Tomas" and messages[-1]["content"] == "Tomas grunts."
        assert [c["name"] for c in client.get(f"/api/chats/{chat['id']}").json()["cast"]] == ["Seraphina"]
