"""KV-cache reuse through the real chat loop (issue 17): what the server is fed turn after turn in a 3-character
group chat, the inspector's break marker, and background jobs kept off the reply's slot."""

from __future__ import annotations

import os
from typing import Any

import pytest

from tests.api.chat_helpers import chat_client, reply_requests
from tests.context.test_rules_api import card
from tests.fakes import FakeLLM
from tests.turns.test_capsule_writer import capsule_requests
from tests.waiting import wait_until

LINES = ["Ayla, what do you see?", "Borin, can you fix this?", "Cyra, read the stars for us.",
         "Borin, your turn again.", "Ayla, lead the way.", "Cyra, anything else?"]


def group_chat(client: Any) -> int:
    ids = [client.post("/api/characters", json=card(n, j)).json()["id"]
           for n, j in (("Ayla", "ranger"), ("Borin", "smith"), ("Cyra", "seer"))]
    chat = client.post("/api/chats", json={"character_ids": ids, "persona": {"name": "Ari"}}).json()
    client.patch(f"/api/chats/{chat['id']}", json={"mode": "auto"})
    return int(chat["id"])


def shared(before: str, after: str) -> int:
    return len(os.path.commonprefix([before, after]))


def test_what_the_server_reads_keeps_its_prefix_across_speaker_changes(make_settings: Any) -> None:
    fake = FakeLLM("llamacpp_python")
    with chat_client(make_settings(llm={"base_url": "http://llm.test"}), fake) as client:
        chat_id = group_chat(client)
        docs = []
        for line in LINES:
            client.post(f"/api/chats/{chat_id}/messages", json={"content": line, "stream": False})
            docs.append(client.get(f"/api/chats/{chat_id}/prompt").json())
        replies = [r for r in reply_requests(fake)]
        speakers = [r.json["messages"][-1]["content"].rsplit("[", 1)[1].split(" speaks next")[0] for r in replies]
    assert speakers == ["Ayla", "Borin", "Cyra", "Borin", "Ayla", "Cyra"], "the speaker changes every turn"
    prompts = [p for p in fake.prompts if p.startswith("<|im_start|>system\nThis is an ongoing roleplay")]
    assert len(prompts) == len(LINES)
    heads = {r.json["messages"][0]["content"] for r in replies[3:]}
    assert len(heads) == 1, "the system message is the same bytes for every speaker (turns 4-6: capsules)"
    for turn, (before, after) in enumerate(zip(prompts, prompts[1:], strict=False), start=1):
        cut = before.rindex("\n\n[")  # the reply instruction at the end of the last user message
        if turn == 3:  # turn 4: the full cards of the reset window became capsules (a planned break)
            assert shared(before, after) < cut
            continue
        assert after.startswith(before[:cut]), f"turn {turn + 1} does not extend turn {turn}'s prompt"
        assert len(before) - cut < 260, "only the reply instruction is read again"
    for doc in docs[3:]:
        at = doc["prefix"]["index"]
        assert doc["prefix"]["ordinary"], doc["prefix"]
        assert doc["sections"][at]["kind"] == "history" and doc["sections"][at]["role"] == "assistant"
        assert doc["sections"][-1]["kind"] == "instruction" and doc["sections"][-1]["placement"] == "tail"
        assert doc["lore"] == {"tokens": 0, "budget": 800}


@pytest.mark.parametrize(("slots", "reply_slot", "job_slot"), [(2, 0, 1), (4, 0, 3), (1, None, None)])
def test_a_background_job_uses_its_own_slot(make_settings: Any, slots: int, reply_slot: int | None,
                                            job_slot: int | None) -> None:
    fake = FakeLLM("llamacpp", slots=slots)
    with chat_client(make_settings(llm={"base_url": "http://llm.test"}), fake) as client:
        chat_id = group_chat(client)
        for line in LINES[:3]:  # after turn 3 the reset windows end: capsules are written in the background
            client.post(f"/api/chats/{chat_id}/messages", json={"content": line, "stream": False})
        wait_until(lambda: capsule_requests(fake), until=lambda found: len(found) >= 3,
                   what="a capsule request per cast member")
        client.post(f"/api/chats/{chat_id}/messages", json={"content": LINES[3], "stream": False})
        replies = reply_requests(fake)
    jobs = capsule_requests(fake)
    assert all(r.json["cache_prompt"] is True for r in [*replies, *jobs])
    assert {r.json.get("id_slot") for r in replies} == {reply_slot}
    assert {r.json.get("id_slot") for r in jobs} == {job_slot}, "never the reply's slot, never a missing one"
