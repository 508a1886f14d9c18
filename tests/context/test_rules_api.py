"""The inspector on a real 3-character chat: reset points at turns 1-4 and after a 25-turn absence."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.chat_helpers import chat_client, last_reply_request, send_streamed
from tests.fakes import FakeLLM


def card(name: str, job: str) -> dict[str, Any]:
    return {"name": name, "description": f"{name} is a {job}.", "personality": "proud, quick, warm",
            "mes_example": f"{{{{char}}}}: I'm {name}.", "first_mes": ""}


def kinds(doc: dict[str, Any], name: str) -> set[str]:
    return {s["kind"] for s in doc["sections"] if s["source"].get("name") == name and s["kind"] in
            ("card_full", "capsule")}


@pytest.fixture
def three(make_settings: Any) -> Any:
    fake = FakeLLM("llamacpp")
    settings = make_settings(llm={"base_url": "http://llm.test"}, context={"absence_turns": 20})
    with chat_client(settings, fake) as client:
        ids = [client.post("/api/characters", json=card(n, j)).json()["id"]
               for n, j in (("Ayla", "ranger"), ("Borin", "smith"), ("Cyra", "seer"))]
        chat = client.post("/api/chats", json={"character_ids": ids, "persona": {"name": "Ari"}}).json()
        client.patch(f"/api/chats/{chat['id']}", json={"mode": "focus", "focus_character_id": ids[0]})
        yield client, fake, chat["id"]


def test_turns_one_to_four_and_return_after_absence(three: Any) -> None:
    client, fake, chat_id = three
    seen: dict[int, dict[str, Any]] = {}
    for t in range(1, 31):
        text = "Ayla, Borin and Cyra, gather round." if t == 1 else "Ayla and Borin, onward."
        if t == 30:
            text = "Cyra! You came back."
        client.post(f"/api/chats/{chat_id}/messages", json={"content": text, "stream": False})
        # the inspector shows what the *next* reply would get; record it for the turn just answered
        seen[t] = client.get(f"/api/chats/{chat_id}/prompt").json()
        if t in (1, 2, 3, 4, 30):
            assert seen[t]["turn"] == t
    for t in (1, 2, 3):
        assert kinds(seen[t], "Ayla") == kinds(seen[t], "Borin") == kinds(seen[t], "Cyra") == {"card_full"}, t
    assert kinds(seen[4], "Ayla") == kinds(seen[4], "Borin") == kinds(seen[4], "Cyra") == {"capsule"}
    # Cyra unseen from turn 2 to 29 (28 turns > 20): named at turn 30 -> full card again
    assert kinds(seen[30], "Cyra") == {"card_full"}
    assert kinds(seen[30], "Ayla") == kinds(seen[30], "Borin") == {"capsule"}
    assert any(s["kind"] == "reminder" and "Cyra is back" in s["text"] for s in seen[30]["sections"])
    doc = seen[30]
    assert set(doc) >= {"budget", "total_tokens", "sections"} and doc["total_tokens"] <= doc["budget"]
    assert all(set(s) >= {"kind", "source", "tokens", "text"} for s in doc["sections"])


def test_narrator_mode_does_not_make_everyone_absent(three: Any) -> None:
    client, fake, chat_id = three
    client.patch(f"/api/chats/{chat_id}", json={"mode": "narrator"})
    for t in range(1, 26):
        fake.enqueue("Ayla draws her bow while Borin and Cyra watch the road.")
        client.post(f"/api/chats/{chat_id}/messages", json={"content": f"We walk on ({t}).", "stream": False})
    doc = client.get(f"/api/chats/{chat_id}/prompt").json()
    assert doc["speaker"] is None
    for name in ("Ayla", "Borin", "Cyra"):
        assert kinds(doc, name) == {"capsule"}, f"{name} was named by the narrator, so never absent"
    assert "Narrate" in doc["sections"][-1]["text"] and doc["sections"][-1]["placement"] == "tail"


def test_auto_mode_answers_with_the_addressed_character(three: Any) -> None:
    client, fake, chat_id = three
    client.patch(f"/api/chats/{chat_id}", json={"mode": "auto"})
    fake.enqueue("Hm?")
    status, events = send_streamed(client, chat_id, "Borin, can you fix my sword?")
    assert events[-1]["message"]["speaker_name"] == "Borin"
    assert "[Borin speaks next." in last_reply_request(fake).json["messages"][-1]["content"]
    doc = client.get(f"/api/chats/{chat_id}/prompt").json()
    assert doc["speaker"]["name"] == "Borin"


def test_turn_counter_is_absolute(three: Any) -> None:
    client, fake, chat_id = three
    for _ in range(3):
        client.post(f"/api/chats/{chat_id}/messages", json={"content": "Onward.", "stream": False})
    stored = client.get(f"/api/chats/{chat_id}/messages").json()["messages"]
    assert [m["turn"] for m in stored] == [1, 1, 2, 2, 3, 3]
    assert client.get(f"/api/chats/{chat_id}").json()["turn"] == 3
