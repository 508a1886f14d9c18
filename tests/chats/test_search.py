"""Full-text search: ranking, snippets, archived messages, Chinese text and hostile syntax."""

from __future__ import annotations

from typing import Any

import pytest

from neuralrp.chats import editing, search, service, store
from neuralrp.errors import InvalidInput, NotFound
from tests.chats.test_editing import make_chat


def post(conn: Any, chat_id: int, text: str) -> int:
    return service.post_user_message(conn, chat_id, text).id


def test_ranked_hits_carry_jump_data_and_snippet(conn: Any) -> None:
    chat_id = make_chat(conn)
    once = post(conn, chat_id, "The dragon sleeps under the hill, far away from the village.")
    twice = post(conn, chat_id, "Dragon! A dragon flies over the dragon's lair.")
    post(conn, chat_id, "Nothing to see here.")
    hits = search.search_messages(conn, "dragon")
    assert [h["message_id"] for h in hits] == [twice, once]
    hit = hits[1]
    assert hit["chat_title"] == "Woods" and hit["chat_id"] == chat_id
    assert (hit["seq"], hit["turn"], hit["role"], hit["speaker_name"]) == (2, 1, "user", "Ari")
    assert hit["archived"] is False
    start, end = hit["highlights"][0]
    assert hit["snippet"][start:end] == "dragon"
    assert "«dragon»" in hit["snippet_marked"]
    assert len(hits[0]["highlights"]) == 3


def test_all_terms_must_match_and_case_and_accents_fold(conn: Any) -> None:
    chat_id = make_chat(conn)
    both = post(conn, chat_id, "We met at the Café by the river.")
    post(conn, chat_id, "The river is cold.")
    assert [h["message_id"] for h in search.search_messages(conn, "CAFE river")] == [both]
    hit = search.search_messages(conn, "cafe")[0]
    start, end = hit["highlights"][0]
    assert hit["snippet"][start:end] == "Café"


def test_archived_and_deleted_messages_stay_searchable(conn: Any) -> None:
    chat_id = make_chat(conn)
    gone = post(conn, chat_id, "The silver key was hidden.")
    folded = post(conn, chat_id, "The silver coin was spent.")
    editing.delete_message(conn, gone)
    store.archive_message(conn, folded, "summarized")
    hits = {h["message_id"]: h for h in search.search_messages(conn, "silver")}
    assert set(hits) == {gone, folded}
    assert hits[gone]["archived"] and hits[gone]["archived_reason"] == "deleted"
    editing.edit_message(conn, gone, "The golden key was hidden.")
    assert [h["message_id"] for h in search.search_messages(conn, "golden")] == [gone]
    assert [h["message_id"] for h in search.search_messages(conn, "silver")] == [folded]


def test_chinese_text_is_searchable(conn: Any) -> None:
    chat_id = make_chat(conn)
    forest = post(conn, chat_id, "我们走进了森林深处，看见一座古老的寺庙。")
    post(conn, chat_id, "今天天气很好。")
    assert [h["message_id"] for h in search.search_messages(conn, "古老的寺庙")] == [forest]
    hit = search.search_messages(conn, "森林")[0]  # two characters: below the trigram size
    assert hit["message_id"] == forest
    start, end = hit["highlights"][0]
    assert hit["snippet"][start:end] == "森林"


def test_one_chat_and_speaker_name(conn: Any) -> None:
    first = make_chat(conn)
    second = service.create_chat(conn, character_ids=[store.cast_members(conn, first)[0].character_id])
    post(conn, first, "lantern one")
    other = post(conn, second, "lantern two")
    assert [h["message_id"] for h in search.search_messages(conn, "lantern", chat_id=second)] == [other]
    assert search.search_messages(conn, "lantern", chat_id=second)[0]["chat_title"] is None
    greeting = store.list_messages(conn, first)[0]
    assert greeting.id in [h["message_id"] for h in search.search_messages(conn, "Mira")]
    with pytest.raises(NotFound):
        search.search_messages(conn, "x", chat_id=999)


@pytest.mark.parametrize("query", ['"unbalanced', 'AND OR NOT', 'NEAR(a b', 'content:x', 'drag*', '^start',
                                   "it's", "100%", "a_b", "(((", "-", "col:\"x\" OR"])
def test_hostile_syntax_never_fails(conn: Any, query: str) -> None:
    chat_id = make_chat(conn)
    post(conn, chat_id, "AND OR NOT are words too; drag* and 100% and it's fine (((")
    hits = search.search_messages(conn, query)
    assert isinstance(hits, list)


def test_operators_are_plain_text(conn: Any) -> None:
    chat_id = make_chat(conn)
    plain = post(conn, chat_id, "Salt OR pepper?")
    post(conn, chat_id, "Salt only.")
    assert [h["message_id"] for h in search.search_messages(conn, "salt OR pepper")] == [plain]
    assert [h["message_id"] for h in search.search_messages(conn, '"OR pepper"')] == [plain]


def test_empty_or_huge_query_is_invalid(conn: Any) -> None:
    with pytest.raises(InvalidInput):
        search.search_messages(conn, '  "" ')
    with pytest.raises(InvalidInput):
        search.search_messages(conn, "x" * 600)


def test_snippet_window_and_offsets() -> None:
    text = "a" * 300 + " needle " + "b" * 300
    snippet, spans = search.make_snippet(text, ["needle"])
    assert snippet.startswith("…") and snippet.endswith("…")
    assert [snippet[s:e] for s, e in spans] == ["needle"]
    assert search.mark("xx yy", [[3, 5]]) == "xx «yy»"
    assert search.match_spans("Straße strasse", ["STRASSE"]) == [(0, 6), (7, 14)]
