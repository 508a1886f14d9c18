"""Group chats that stay in character (issue 14): speaker hygiene (own-name labels removed, other speakers' lines
stopped: the stop list goes with every request, per server dialect) and group turns (Auto lets several addressed
characters answer in turn, "speak next", every member's greeting)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.chat_helpers import chat_client, messages, reply_requests, send_streamed
from tests.fakes import FakeLLM


def card(name: str, greeting: str = "") -> dict[str, Any]:
    return {"name": name, "description": f"{name} travels with the party.", "first_mes": greeting}


def group(client: TestClient, *names: str, greetings: str | None = None) -> dict[str, Any]:
    ids = [client.post("/api/characters", json=card(n, f"{n} waves at {{{{user}}}}.")).json()["id"] for n in names]
    body: dict[str, Any] = {"character_ids": ids, "persona": {"name": "Kai"}}
    if greetings:
        body["greetings"] = greetings
    chat = client.post("/api/chats", json=body).json()
    return chat  # type: ignore[no-any-return]


@pytest.fixture
def env(make_settings: Any) -> Iterator[tuple[TestClient, FakeLLM]]:
    fake = FakeLLM("llamacpp")
    with chat_client(make_settings(llm={"base_url": "http://llm.test"}), fake) as client:
        yield client, fake


def test_a_group_reply_keeps_neither_its_own_label_nor_the_users_line(env: tuple[TestClient, FakeLLM]) -> None:
    client, fake = env
    chat = group(client, "Seraphina", "Bran")
    seraphina = chat["cast"][0]["character_id"]
    client.patch(f"/api/chats/{chat['id']}", json={"mode": "focus", "focus_character_id": seraphina})
    fake.enqueue("Seraphina: *She smiles.* Welcome back.\nKai: I sit down.\nBran: Ho!")
    status, events = send_streamed(client, chat["id"], "Hello, everyone.")
    assert events[-1]["type"] == "done"
    stored = messages(client, chat["id"])[-1]
    assert stored["speaker_name"] == "Seraphina" and stored["content"] == "*She smiles.* Welcome back."
    tokens = "".join(e["text"] for e in events if e["type"] == "token")
    assert "Seraphina:" not in tokens and "Kai:" not in tokens, "no label ever reached a listener"
    request = reply_requests(fake)[-1].json
    assert request["stop"] == ["\nKai:", "\nBran:"]


def test_a_leading_user_line_is_dropped_and_a_later_one_ends_the_reply(make_settings: Any) -> None:
    fake = FakeLLM("koboldcpp")  # its OpenAI route honours `stop`; the filter works whatever the server does
    with chat_client(make_settings(llm={"base_url": "http://llm.test"}), fake) as client:
        chat = group(client, "Seraphina", "Bran")
        client.patch(f"/api/chats/{chat['id']}", json={"mode": "narrator"})
        fake.enqueue("Kai: I look around.\nNarrator: The glade is quiet. Bran: Ho!\n**Kai:** I leave.")
        client.post(f"/api/chats/{chat['id']}/messages", json={"content": "I wait.", "stream": False})
        stored = messages(client, chat["id"])[-1]
        assert stored["speaker_name"] == "Narrator"
        assert stored["content"] == "The glade is quiet. Bran: Ho!", "the narrator voices the cast, never Kai"
        assert reply_requests(fake)[-1].json["stop"] == ["\nKai:"]


@pytest.mark.parametrize(("flavour", "mode"), [("llamacpp", "completion"), ("ollama", "chat"),
                                               ("ollama", "completion"), ("tabbyapi", "chat")])
def test_the_stop_list_goes_with_every_dialect(make_settings: Any, flavour: str, mode: str) -> None:
    fake = FakeLLM(flavour)
    settings = make_settings(llm={"base_url": "http://llm.test", "api_mode": mode}, sampling={"stop": ["###"]})
    with chat_client(settings, fake) as client:
        chat = group(client, "Ayla", "Borin")
        fake.enqueue("Ayla: Ready.\nBorin: Me too.")
        client.post(f"/api/chats/{chat['id']}/messages", json={"content": "Ayla, ready?", "stream": False})
        generation = [r for r in fake.requests if r.method == "POST" and r.path in
                      ("/v1/chat/completions", "/v1/completions", "/api/chat", "/api/generate")][-1].json
        stops = generation.get("stop") or generation.get("options", {}).get("stop")
        assert stops[:3] == ["###", "\nKai:", "\nBorin:"]
        if mode == "completion":
            assert "<|im_end|>" in stops, "the template's own stops too"
        assert messages(client, chat["id"])[-1]["content"] == "Ready."


def test_openai_servers_get_at_most_four_stop_strings(make_settings: Any) -> None:
    fake = FakeLLM("openai")
    with chat_client(make_settings(llm={"base_url": "http://llm.test"}), fake) as client:
        chat = group(client, "Ayla", "Borin", "Cyra", "Dane", "Edda")
        fake.enqueue("Ready.\nEdda: and me")
        client.post(f"/api/chats/{chat['id']}/messages", json={"content": "Ayla?", "stream": False})
        assert reply_requests(fake)[-1].json["stop"] == ["\nKai:", "\nBorin:", "\nCyra:", "\nDane:"]
        assert messages(client, chat["id"])[-1]["content"] == "Ready.", "NeuralRP cut the fifth name itself"


def test_auto_lets_each_addressed_character_answer_in_turn(env: tuple[TestClient, FakeLLM]) -> None:
    client, fake = env
    chat = group(client, "Ayla", "Borin", "Cyra")
    fake.enqueue("Cyra: On it.", "Ayla: The stars agree.")
    status, events = send_streamed(client, chat["id"], "Cyra and Ayla, what do you think?")
    kinds = [e["type"] for e in events if e["type"] != "token"]
    assert kinds == ["user", "start", "done", "start", "done"]
    assert [e["more"] for e in events if e["type"] == "done"] == [True, False]
    replies = [m for m in messages(client, chat["id"]) if m["role"] == "assistant" and m["turn"] == 1]
    assert [(m["speaker_name"], m["content"]) for m in replies] == [("Cyra", "On it."), ("Ayla", "The stars agree.")]
    speakers = [r.json["messages"][-1]["content"].rsplit("[", 1)[1].split(" speaks next")[0]
                for r in reply_requests(fake)]
    assert speakers == ["Cyra", "Ayla"], "in the order the message names them"
    body = client.post(f"/api/chats/{chat['id']}/messages", json={"content": "Borin, Ayla, Cyra: go!",
                                                                   "stream": False}).json()
    assert [r["speaker_name"] for r in body["replies"]] == ["Borin", "Ayla", "Cyra"]
    client.put("/api/settings", json={"chats": {"auto_replies": 1}})
    body = client.post(f"/api/chats/{chat['id']}/messages", json={"content": "Ayla and Borin?",
                                                                   "stream": False}).json()
    assert [r["speaker_name"] for r in body["replies"]] == ["Ayla"]


def test_speak_next_lets_a_chosen_member_answer(env: tuple[TestClient, FakeLLM]) -> None:
    client, fake = env
    chat = group(client, "Ayla", "Borin")
    borin = chat["cast"][1]["character_id"]
    fake.enqueue("Borin: Hm.")
    body = client.post(f"/api/chats/{chat['id']}/speak", json={"character_id": borin, "stream": False}).json()
    assert body["reply"]["speaker_name"] == "Borin" and body["reply"]["content"] == "Hm."
    assert "user" not in body, "no message from the user"
    answered = client.post(f"/api/chats/{chat['id']}/messages",
                           json={"content": "Ayla, help!", "stream": False, "speaker_id": borin}).json()
    assert [r["speaker_name"] for r in answered["replies"]] == ["Borin"], "the chosen one, and only them"
    outsider = client.post("/api/characters", json=card("Zed")).json()
    refused = client.post(f"/api/chats/{chat['id']}/speak", json={"character_id": outsider["id"], "stream": False})
    assert refused.status_code == 422 and "not an active member" in refused.json()["detail"]


@pytest.mark.parametrize(("greetings", "expected"), [(None, ["Ayla", "Borin", "Cyra"]), ("first", ["Ayla"])])
def test_every_members_greeting_opens_the_chat_in_cast_order(env: tuple[TestClient, FakeLLM],
                                                             greetings: str | None, expected: list[str]) -> None:
    client, _ = env
    chat = group(client, "Ayla", "Borin", "Cyra", greetings=greetings)
    opening = messages(client, chat["id"])
    assert [m["speaker_name"] for m in opening] == expected
    assert opening[0]["content"] == "Ayla waves at Kai." and {m["turn"] for m in opening} == {0}


def test_a_reply_made_only_of_other_speakers_lines_is_an_error_not_an_empty_bubble(
        env: tuple[TestClient, FakeLLM]) -> None:
    client, fake = env
    chat = group(client, "Ayla", "Borin")
    fake.enqueue("Kai: I nod.")
    resp = client.post(f"/api/chats/{chat['id']}/messages", json={"content": "Ayla?", "stream": False})
    assert resp.status_code == 502 and "nothing of Ayla's reply" in resp.json()["detail"]
    assert [m["role"] for m in messages(client, chat["id"])][-1] == "user", "no empty reply was kept"
