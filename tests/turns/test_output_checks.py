"""Background output is checked before it is stored: junk capsules and summaries are rejected, kept out, retried."""

from __future__ import annotations

from typing import Any

import pytest

from neuralrp.library.characters import get_character
from neuralrp.llm.types import Completion
from neuralrp.turns.capsule_writer import read_capsule
from neuralrp.turns.output_checks import Rejections, summary_problem
from neuralrp.turns.summarizer import MIN_SUMMARY_WORDS, clean_summary
from tests.api.chat_helpers import CARD, chat_client
from tests.fakes import FakeLLM
from tests.turns.test_capsule_writer import CAPSULE, capsule_requests
from tests.waiting import wait_until

JUNK = "[Seraphina - a gentle healer of the glade, kind of gal. {END}]"


@pytest.mark.parametrize(("answer", "why"), [
    (JUNK, "template junk '{END}'"),
    ("[Seraphina — healer. Traits: kind, calm.]<|im_end|>", "template junk '<|im_end|>'"),
    ("[[Seraphina — healer. Traits: kind, calm. Speech: soft.]]", "brackets"),
    ("[Seraphina — healer. Traits: [kind], calm. Speech: soft.]", "brackets"),
    ("[Amy — a pirate who sails the sky. Traits: bold, loud.]", "not about Seraphina"),
    ("[Seraphina — healer of the glade.\nSeraphina — healer of the glade.\nSeraphina — healer of the glade.]",
     "repeats itself"),
    ("[Seraphina — healer. She heals the wounded. She heals the wounded. She heals the wounded.]",
     "repeats itself"),
    ("[Seraphina — kind]", "too short"),
    ("[Seraphina — " + "very " * 100 + "kind.]", "too long"),
])
def test_junk_capsules_are_rejected_with_a_reason(answer: str, why: str) -> None:
    capsule, problem = read_capsule(answer, "Seraphina")
    assert capsule is None and problem is not None and why in problem


@pytest.mark.parametrize("answer", [
    CAPSULE,
    '"Guardian of the glade. Traits: gentle, fierce. Speech: soft and warm."',
    "[Seraphina: guardian of the glade. Traits: gentle, fierce. Speech: warm to {{user}}.]",
    "[{{char}} — guardian of the glade. Traits: gentle, fierce. Speech: soft.]",
])
def test_good_capsules_pass(answer: str) -> None:
    capsule, problem = read_capsule(answer, "Seraphina")
    assert problem is None and capsule is not None and capsule.startswith("[Seraphina")


@pytest.mark.parametrize(("text", "why"), [
    ("Ari met Seraphina at the glade and they talked about the lantern. {END}", "template junk"),
    ("Ari met Seraphina at the glade. Ari met Seraphina at the glade. They left.", "repeats itself"),
    ("[Ari met Seraphina at the glade and they talked.]", "wrapped in [ ]"),
    ("### Summary\nAri met Seraphina at the glade.", "template junk"),
])
def test_junk_summaries_are_rejected(text: str, why: str) -> None:
    cleaned = clean_summary(Completion(text, "stop"))
    assert cleaned is not None
    problem = summary_problem(cleaned, min_words=MIN_SUMMARY_WORDS, max_words=250)
    assert problem is not None and why in problem


def test_rejections_back_off_and_a_new_card_version_starts_over() -> None:
    rejections = Rejections(base_s=60)
    first = rejections.reject(7, "junk", "x", key="v1")
    assert first.failures == 1 and not rejections.may_try(7, "v1")
    assert rejections.reject(7, "junk", "x", key="v1").failures == 2
    assert rejections.may_try(7, "v2"), "an edited card is tried at once"
    assert rejections.reject(7, "junk", "x", key="v2").failures == 1
    rejections.accept(7)
    assert rejections.may_try(7, "v2") and rejections.get(7) is None


def stored_capsule(client: Any, character_id: int) -> str | None:
    with client.app.state.services.db.session() as conn:
        return get_character(conn, character_id).capsule  # type: ignore[no-any-return]


def prompt_doc(client: Any, chat_id: int) -> dict[str, Any]:
    return client.get(f"/api/chats/{chat_id}/prompt").json()  # type: ignore[no-any-return]


def test_a_junk_capsule_is_not_stored_shows_in_the_inspector_and_is_retried_later(make_settings: Any) -> None:
    fake = FakeLLM("llamacpp")
    with chat_client(make_settings(llm={"base_url": "http://llm.test"}), fake) as client:
        chat = client.post("/api/chats", json={"card": CARD, "persona": {"name": "Ari"}}).json()
        cid = chat["cast"][0]["character_id"]
        for turn in (1, 2):
            client.post(f"/api/chats/{chat['id']}/messages", json={"content": f"Hi {turn}", "stream": False})
        fake.enqueue("Turn three reply.", JUNK)
        client.post(f"/api/chats/{chat['id']}/messages", json={"content": "Hi 3", "stream": False})
        wait_until(lambda: prompt_doc(client, chat["id"])["background"], what="the rejection in the inspector")
        (note,) = prompt_doc(client, chat["id"])["background"]
        assert note["kind"] == "capsule" and note["character_id"] == cid and "{END}" in note["reason"]
        assert note["answer"] == JUNK and note["retry_in_s"] > 0
        assert stored_capsule(client, cid) is None, "the junk was not stored"
        fake.enqueue("Turn four reply.")
        client.post(f"/api/chats/{chat['id']}/messages", json={"content": "Hi 4", "stream": False})
        assert len(capsule_requests(fake)) == 1, "not asked again before its retry time"
        capsule = next(s for s in prompt_doc(client, chat["id"])["sections"] if s["kind"] == "capsule")
        assert capsule["source"]["origin"] == "rules" and "{END}" not in capsule["text"], "the rule capsule stays"
        client.app.state.services.capsules.rejections.items[cid].retry_at = 0.0  # the retry time has come
        fake.enqueue("Turn five reply.", CAPSULE)
        client.post(f"/api/chats/{chat['id']}/messages", json={"content": "Hi 5", "stream": False})
        wait_until(lambda: not prompt_doc(client, chat["id"])["background"], what="the retried capsule stored")
        capsule = next(s for s in prompt_doc(client, chat["id"])["sections"] if s["kind"] == "capsule")
        stored = stored_capsule(client, cid)
    assert stored == CAPSULE, "the retried capsule is stored"
    assert capsule["source"]["origin"] == "rules", "the prompt takes it at its next planned break (issue 17)"
    assert len(capsule_requests(fake)) == 2
