"""Chat service on a real SQLite file: turns, order, greetings, swipes, bad input."""

from __future__ import annotations

from typing import Any

import pytest

from neuralrp.chats import service, store
from neuralrp.context.builder import build_prompt
from neuralrp.context.loader import load_chat_state
from neuralrp.context.state import Limits
from neuralrp.db.connection import transaction
from neuralrp.errors import Conflict, InvalidInput, NotFound
from neuralrp.library.characters import insert_character
from neuralrp.llm.tokens import estimate_tokens

SERAPHINA = {
    "spec": "chara_card_v2", "spec_version": "2.0",
    "data": {"name": "Seraphina", "description": "A guardian of the forest glade, {{char}} heals {{user}}.",
             "personality": "kind, protective", "scenario": "A glade at dusk.",
             "first_mes": "*Seraphina smiles at {{user}}.* You're awake.", "mes_example": "<START>\n{{char}}: Rest.",
             "post_history_instructions": "Stay gentle.", "tags": ["fantasy"],
             "extensions": {"talkativeness": "0.7", "custom": {"keep": [1, 2]}}},
}


def test_create_chat_from_card_greets_at_turn_zero(conn: Any) -> None:
    chat_id = service.create_chat(conn, character_ids=[], card=SERAPHINA, persona={"name": "Ari"})
    chat = service.chat_public(conn, chat_id)
    assert chat["turn"] == 0
    assert [c["name"] for c in chat["cast"]] == ["Seraphina"]
    (greeting,) = store.list_messages(conn, chat_id)
    assert greeting.turn == 0 and greeting.role == "assistant"
    assert greeting.content == "*Seraphina smiles at Ari.* You're awake."
    assert greeting.token_count == estimate_tokens(greeting.content)


def test_v1_flat_card_is_accepted_and_kept(conn: Any) -> None:
    chat_id = service.create_chat(conn, character_ids=[], card={"name": "Aqua", "description": "A goddess."})
    char = service.active_cast(conn, chat_id)[0]
    assert char.card["data"]["description"] == "A goddess."
    assert char.card["spec"] == "chara_card_v2"


@pytest.mark.parametrize(
    ("card", "message"),
    [
        ({"data": {"description": "no name"}}, "card has no name"),
        ({"name": "X", "description": 5}, "field 'description' must be a string, got int"),
        ({"name": "X", "tags": "a,b"}, "field 'tags' must be a list of strings"),
        (["not", "an", "object"], "must be an object"),
    ],
)
def test_bad_cards_are_refused_and_nothing_is_stored(conn: Any, card: Any, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        service.create_chat(conn, character_ids=[], card=card)
    assert conn.execute("SELECT count(*) AS n FROM chats").fetchone()["n"] == 0
    assert conn.execute("SELECT count(*) AS n FROM characters").fetchone()["n"] == 0


def test_user_messages_advance_the_absolute_turn(conn: Any) -> None:
    chat_id = service.create_chat(conn, character_ids=[], card=SERAPHINA)
    first = service.post_user_message(conn, chat_id, "  Hello  ")
    second = service.post_user_message(conn, chat_id, "Again")
    assert (first.turn, second.turn) == (1, 2)
    assert first.content == "Hello"
    seqs = [m.seq for m in store.list_messages(conn, chat_id)]
    assert seqs == sorted(seqs) == [1, 2, 3]


@pytest.mark.parametrize(("text", "message"), [("   ", "the message is empty"), ("x" * 100_001, "the limit is")])
def test_bad_user_messages(conn: Any, text: str, message: str) -> None:
    chat_id = service.create_chat(conn, character_ids=[], card=SERAPHINA)
    with pytest.raises(InvalidInput, match=message):
        service.post_user_message(conn, chat_id, text)
    assert service.chat_public(conn, chat_id)["turn"] == 0


def test_missing_things_are_not_found(conn: Any) -> None:
    with pytest.raises(NotFound, match="chat 99 does not exist"):
        service.post_user_message(conn, 99, "hi")
    with pytest.raises(NotFound, match="character 5 does not exist"):
        service.create_chat(conn, character_ids=[5])
    with pytest.raises(InvalidInput, match="at least one character"):
        service.create_chat(conn, character_ids=[])


def test_regenerate_needs_a_reply_last(conn: Any) -> None:
    chat_id = service.create_chat(conn, character_ids=[], card=SERAPHINA)
    service.post_user_message(conn, chat_id, "hi")
    with pytest.raises(Conflict, match="not a reply"):
        service.last_reply(conn, chat_id)


def test_select_swipe(conn: Any) -> None:
    chat_id = service.create_chat(conn, character_ids=[], card=SERAPHINA)
    (greeting,) = store.list_messages(conn, chat_id)
    with transaction(conn):
        store.save_swipe(conn, greeting.id, 0, "first")
        store.save_swipe(conn, greeting.id, 1, "second")
    chosen = service.select_swipe(conn, greeting.id, 0)
    assert (chosen.content, chosen.swipe_index, chosen.swipe_count) == ("first", 0, 2)
    with pytest.raises(NotFound, match="has no swipe 7"):
        service.select_swipe(conn, greeting.id, 7)


def test_prompt_is_built_within_budget_newest_history_first(conn: Any) -> None:
    chat_id = service.create_chat(conn, character_ids=[], card=SERAPHINA, persona={"name": "Ari"})
    for i in range(60):
        service.post_user_message(conn, chat_id, f"message number {i} " + "words " * 20)
    speaker = service.pick_speaker(conn, chat_id)
    state = load_chat_state(conn, chat_id, speaker, budget=600, limits=Limits())
    prompt = build_prompt(state, budget=600, count=estimate_tokens)
    assert prompt.total_tokens <= 600
    kinds = [s.kind for s in prompt.sections]
    assert kinds[:2] == ["system", "card_full"]
    history = [s for s in prompt.sections if s.kind == "history"]
    assert history and history[-1].text.startswith("message number 59")
    assert "message number 0 " not in " ".join(s.text for s in history)
    card = next(s for s in prompt.sections if s.kind == "card_full")
    assert "heals Ari" in card.text and "{{" not in card.text
    messages = prompt.messages()
    assert messages[0].role == "system" and "Stay gentle." not in messages[0].content
    # post-history instructions come after the newest message (the per-turn tail, so the prefix stays cached)
    last = messages[-1]
    assert last.role == "user" and last.content.endswith("Stay gentle.")
    assert last.content.index("message number 59") < last.content.index("Stay gentle.")


def test_npc_scope_column_and_list(conn: Any) -> None:
    with transaction(conn):
        insert_character(conn, {"name": "Global"})
    chat_id = service.create_chat(conn, character_ids=[], card={"name": "Other"})
    with transaction(conn):
        insert_character(conn, {"name": "Npc"}, scope_chat_id=chat_id)
    from neuralrp.library.characters import list_characters

    assert [c.name for c in list_characters(conn)] == ["Global", "Other"]
    assert "Npc" in [c.name for c in list_characters(conn, include_npcs=True)]
