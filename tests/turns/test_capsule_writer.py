"""LLM capsules: written in the background when a reset window ends, cached per card version."""

from __future__ import annotations

from typing import Any

from neuralrp.cardgen.prompts import CAPSULE_INSTRUCTIONS
from neuralrp.context.sections import Prompt
from neuralrp.turns.capsule_writer import RETRY_TURNS, clean_capsule
from tests.api.chat_helpers import CARD, chat_client
from tests.fakes import FakeLLM
from tests.waiting import wait_until

CAPSULE = '[Seraphina — guardian of the glade. Traits: gentle, fierce, protective. Speech: soft. Example: "Rest."]'


def capsule_requests(fake: FakeLLM) -> list[Any]:
    return [r for r in fake.chat_requests()
            if r.json["messages"][0]["content"].startswith(CAPSULE_INSTRUCTIONS[:40])]


def test_capsule_written_once_when_window_ends_and_used(make_settings: Any) -> None:
    fake = FakeLLM("llamacpp")
    with chat_client(make_settings(llm={"base_url": "http://llm.test"}), fake) as client:
        chat = client.post("/api/chats", json={"card": CARD, "persona": {"name": "Ari"}}).json()
        for turn in (1, 2):
            client.post(f"/api/chats/{chat['id']}/messages", json={"content": f"Hi {turn}", "stream": False})
        assert capsule_requests(fake) == [], "no capsule needed while the full card is in use"
        fake.enqueue("Turn three reply.", CAPSULE)
        client.post(f"/api/chats/{chat['id']}/messages", json={"content": "Hi 3", "stream": False})
        wait_until(lambda: capsule_requests(fake), until=lambda found: len(found) == 1,
                   what="one capsule request to the LLM")
        (request,) = capsule_requests(fake)
        assert "Description: Guardian of the glade who heals {{user}}." in request.json["messages"][1]["content"]
        assert request.json["stream"] is True  # streamed, so a reply that arrives can pause it at once
        client.post(f"/api/chats/{chat['id']}/messages", json={"content": "Hi 4", "stream": False})
        wait_until(lambda: any(s["kind"] == "capsule" and s["source"]["origin"] == "llm"
                               for s in client.get(f"/api/chats/{chat['id']}/prompt").json()["sections"]),
                   what="the LLM capsule in the prompt")
        doc = client.get(f"/api/chats/{chat['id']}/prompt").json()
        capsule = next(s for s in doc["sections"] if s["kind"] == "capsule")
        assert capsule["text"] == CAPSULE
        assert len(capsule_requests(fake)) == 1, "cached: not written again"
        cid = chat["cast"][0]["character_id"]
        card = client.get(f"/api/characters/{cid}").json()["card"]
        card["data"]["personality"] = "now grim and silent"
        client.put(f"/api/characters/{cid}", json={"card": card})
        doc = client.get(f"/api/chats/{chat['id']}/prompt").json()
        assert next(s for s in doc["sections"] if s["kind"] == "capsule")["source"]["origin"] == "rules"


def test_unusable_answers_are_not_stored() -> None:
    assert clean_capsule("ok", "X") is None
    assert clean_capsule("word " * 200, "X") is None
    assert clean_capsule('"Calm healer. Traits: kind, wise. Speech: slow and warm."', "Mira") == (
        "[Mira — Calm healer. Traits: kind, wise. Speech: slow and warm.]")


def test_a_rejected_capsule_waits_turns_as_well_as_its_delay(make_settings: Any) -> None:
    junk = "[Seraphina - a gentle healer of the glade, kind of gal. {END}]"
    fake = FakeLLM("llamacpp")
    with chat_client(make_settings(llm={"base_url": "http://llm.test"}), fake) as client:
        chat = client.post("/api/chats", json={"card": CARD, "persona": {"name": "Ari"}}).json()
        writer = client.app.state.services.capsules
        for turn in (1, 2):
            client.post(f"/api/chats/{chat['id']}/messages", json={"content": f"Hi {turn}", "stream": False})
        fake.enqueue("Turn three reply.", junk)
        client.post(f"/api/chats/{chat['id']}/messages", json={"content": "Hi 3", "stream": False})
        cid = chat["cast"][0]["character_id"]
        wait_until(lambda: writer.rejections.get(cid), what="the junk capsule rejected")
        writer.rejections.items[cid].retry_at = 0.0  # its delay is over at once: only the turn schedule holds it
        due = {turn: writer.stale(Prompt(0, [], decisions={cid: {"reset_turn": 1}}, turn=turn), chat["id"])
               for turn in (3 + RETRY_TURNS - 1, 3 + RETRY_TURNS)}
        assert [[c.id for c in chars] for chars in due.values()] == [[], [cid]], "tried again turns later"
        assert len(capsule_requests(fake)) == 1
        for turn, answers in ((4, ("Turn 4 reply.",)), (5, ("Turn 5 reply.", CAPSULE))):
            fake.enqueue(*answers)
            client.post(f"/api/chats/{chat['id']}/messages", json={"content": f"Hi {turn}", "stream": False})
        wait_until(lambda: capsule_requests(fake), until=lambda found: len(found) == 2, what="the retry")
