"""The system prompt (issue 14), in SillyTavern's override order: a one-character chat's card system_prompt
({{original}} = what it replaces) > the chats.system_prompt setting > the built-in, POV-neutral prompt; a card's
post_history_instructions with {{original}} take the reply instruction's place. The head stays the same for every
speaker of a group chat, and the inspector says where the system prompt came from."""

from __future__ import annotations

from typing import Any

import pytest

from neuralrp.context.builder import build_prompt
from neuralrp.context.state import CastState
from neuralrp.context.text import DEFAULT_SYSTEM_PROMPT, system_prompt
from neuralrp.llm.tokens import estimate_tokens
from tests.api.chat_helpers import chat_client, last_reply_request
from tests.context.factories import char, conversation, state
from tests.fakes import FakeLLM

CUSTOM = "You narrate a story with {{char}} for {{user}}."


def section(prompt: Any, kind: str) -> Any:
    return next(s for s in prompt.sections if s.kind == kind)


def test_the_built_in_prompt_names_no_point_of_view() -> None:
    assert "first person" not in DEFAULT_SYSTEM_PROMPT and "third person" not in DEFAULT_SYSTEM_PROMPT
    ayla = char(1, "Ayla")
    prompt = build_prompt(state(2, [CastState(ayla)], conversation(2)), budget=4000, count=estimate_tokens)
    assert section(prompt, "system").text.startswith("This is an ongoing roleplay between Ari and the characters")
    assert section(prompt, "system").source["origin"] == "default"
    assert "first person" not in section(prompt, "instruction").text


@pytest.mark.parametrize(("card_prompt", "custom", "expected", "origin"), [
    ("", "", DEFAULT_SYSTEM_PROMPT.replace("{{user}}", "Ari"), "default"),
    ("", CUSTOM, "You narrate a story with Ayla for Ari.", "setting"),
    ("{{char}} answers {{user}} in verse.", CUSTOM, "Ayla answers Ari in verse.", "card"),
    ("{{original}} Keep {{char}} terse.", CUSTOM, "You narrate a story with Ayla for Ari. Keep Ayla terse.", "card"),
    ("{{ORIGINAL}}\nTerse.", "", DEFAULT_SYSTEM_PROMPT.replace("{{user}}", "Ari") + "\nTerse.", "card"),
])
def test_the_override_order(card_prompt: str, custom: str, expected: str, origin: str) -> None:
    ayla = char(1, "Ayla", system_prompt=card_prompt)
    chat = state(2, [CastState(ayla)], conversation(2), system_prompt=custom)
    text, source = system_prompt(chat)
    assert (text, source["origin"]) == (expected, origin)
    prompt = build_prompt(chat, budget=4000, count=estimate_tokens)
    assert section(prompt, "system").text == expected
    card = section(prompt, "card_full").text
    assert ("Instructions:" in card) is False, "the card's prompt is not sent twice"


def test_a_group_keeps_the_cards_prompts_in_their_cards_and_one_head_for_every_speaker() -> None:
    ayla, borin = char(1, "Ayla", system_prompt="Ayla speaks in riddles."), char(2, "Borin")
    cast = [CastState(ayla), CastState(borin)]
    heads = []
    for speaker in (ayla, borin, None):
        chat = state(2, cast, conversation(2), system_prompt=CUSTOM, speaker=speaker,
                     mode="narrator" if speaker is None else "auto")
        prompt = build_prompt(chat, budget=6000, count=estimate_tokens)
        heads.append(prompt.messages()[0].content)
        assert section(prompt, "system").source["origin"] == "setting"
        assert "Instructions: Ayla speaks in riddles." in prompt.messages()[0].content
    assert len(set(heads)) == 1


def test_post_history_instructions_with_original_take_the_reply_instructions_place() -> None:
    plain = char(1, "Ayla", post_history_instructions="Stay terse.")
    prompt = build_prompt(state(2, [CastState(plain)], conversation(2)), budget=4000, count=estimate_tokens)
    tail = [s.text for s in prompt.sections if s.placement == "tail"]
    assert tail[0].startswith("[Ayla speaks next.") and tail[1] == "Stay terse."
    wrapped = char(1, "Ayla", post_history_instructions="{{original}}\n{{char}} stays terse with {{user}}.")
    prompt = build_prompt(state(2, [CastState(wrapped)], conversation(2)), budget=4000, count=estimate_tokens)
    tail = [s for s in prompt.sections if s.placement == "tail"]
    assert len(tail) == 1 and tail[0].source["field"] == "post_history_instructions"
    assert tail[0].text.startswith("[Ayla speaks next.") and tail[0].text.endswith("\nAyla stays terse with Ari.")


def test_the_setting_and_a_cards_prompt_reach_the_server_and_the_inspector(make_settings: Any) -> None:
    fake = FakeLLM("llamacpp")
    with chat_client(make_settings(llm={"base_url": "http://llm.test"}), fake) as client:
        client.put("/api/settings", json={"chats": {"system_prompt": CUSTOM}})
        plain = client.post("/api/chats", json={"card": {"name": "Ayla", "first_mes": "Hi."},
                                                 "persona": {"name": "Ari"}}).json()
        client.post(f"/api/chats/{plain['id']}/messages", json={"content": "Hello.", "stream": False})
        assert last_reply_request(fake).json["messages"][0]["content"].startswith("You narrate a story with Ayla "
                                                                                   "for Ari.")
        card = {"name": "Borin", "first_mes": "Ho.", "system_prompt": "{{original}} Borin never lies."}
        own = client.post("/api/chats", json={"card": card, "persona": {"name": "Ari"}}).json()
        doc = client.get(f"/api/chats/{own['id']}/prompt").json()
        system = doc["sections"][0]
        assert system["text"] == "You narrate a story with Borin for Ari. Borin never lies."
        assert system["source"]["origin"] == "card" and system["source"]["name"] == "Borin"
        assert client.get("/api/settings").json()["default_system_prompt"] == DEFAULT_SYSTEM_PROMPT
        client.delete("/api/settings/chats/system_prompt")
        doc = client.get(f"/api/chats/{plain['id']}/prompt").json()
        assert doc["sections"][0]["source"]["origin"] == "default"
