"""Save As / fork: an exact copy up to one message; the original untouched."""

from __future__ import annotations

import json
from typing import Any

import pytest

from neuralrp.chats import service, store
from neuralrp.chats.fork import fork_chat
from neuralrp.clock import iso
from neuralrp.errors import NotFound
from neuralrp.library.characters import insert_character
from tests.chats.test_editing import CARD


def snapshot(conn: Any, chat_id: int) -> dict[str, Any]:
    """Everything about a chat that a fork must leave alone."""
    chat = conn.execute("SELECT * FROM chats WHERE id = ?", (chat_id,)).fetchone()
    rows = conn.execute("SELECT * FROM messages WHERE chat_id = ? ORDER BY seq", (chat_id,)).fetchall()
    swipes = conn.execute("SELECT s.* FROM message_swipes s JOIN messages m ON m.id = s.message_id"
                          " WHERE m.chat_id = ? ORDER BY s.id", (chat_id,)).fetchall()
    summaries = conn.execute("SELECT * FROM summaries WHERE chat_id = ?", (chat_id,)).fetchall()
    return {"chat": chat, "messages": rows, "swipes": swipes, "summaries": summaries,
            "cast": conn.execute("SELECT * FROM chat_cast WHERE chat_id = ? ORDER BY position, id",
                                 (chat_id,)).fetchall()}


def summary(conn: Any, chat_id: int, first: int, last: int, text: str) -> int:
    now = iso()
    sid = conn.execute("INSERT INTO summaries (chat_id, first_message_id, last_message_id, start_turn, end_turn,"
                       " text, created_at, updated_at) VALUES (?, ?, ?, 0, 1, ?, ?, ?)",
                       (chat_id, first, last, text, now, now)).lastrowid
    conn.execute("UPDATE messages SET archived = 1, archived_reason = 'summarized', summary_id = ?"
                 " WHERE id BETWEEN ? AND ?", (sid, first, last))
    return int(sid)


@pytest.fixture
def story(conn: Any) -> dict[str, Any]:
    mira = insert_character(conn, CARD)
    bran = insert_character(conn, {**CARD, "data": {**CARD["data"], "name": "Bran", "first_mes": ""}})
    chat_id = service.create_chat(conn, character_ids=[mira, bran], title="Woods", persona={"name": "Ari"})
    npc = insert_character(conn, {**CARD, "data": {**CARD["data"], "name": "Innkeeper"}}, scope_chat_id=chat_id)
    store.add_cast_member(conn, chat_id, npc, active=False)
    service.update_chat(conn, chat_id, {"mode": "narrator", "focus_character_id": bran})
    ids = [store.list_messages(conn, chat_id)[0].id]
    for text in ("one", "two", "three", "four"):
        ids.append(service.post_user_message(conn, chat_id, text).id)
        reply = store.insert_message(conn, chat_id, role="assistant", content=f"reply {text}",
                                     turn=store.get_chat(conn, chat_id).turn, character_id=npc,
                                     speaker_name="Innkeeper")
        store.save_swipe(conn, reply, 0, f"reply {text}")
        store.save_swipe(conn, reply, 1, f"alt {text}")
        ids.append(reply)
    early = summary(conn, chat_id, ids[0], ids[2], "They met.")
    late = summary(conn, chat_id, ids[3], ids[6], "They talked.")
    return {"chat_id": chat_id, "ids": ids, "npc": npc, "mira": mira, "bran": bran, "early": early, "late": late}


def test_fork_copies_exactly_up_to_the_message(conn: Any, story: dict[str, Any]) -> None:
    chat_id, ids = story["chat_id"], story["ids"]
    before = snapshot(conn, chat_id)
    new_id = fork_chat(conn, chat_id, ids[4])
    assert snapshot(conn, chat_id) == before
    chat = conn.execute("SELECT * FROM chats WHERE id = ?", (new_id,)).fetchone()
    assert chat["title"] == "Woods (fork)" and chat["mode"] == "narrator"
    assert (chat["forked_from_chat_id"], chat["forked_from_message_id"]) == (chat_id, ids[4])
    assert json.loads(chat["persona_json"]) == {"name": "Ari"}
    copied = store.list_messages(conn, new_id, include_archived=True)
    originals = store.list_messages(conn, chat_id, include_archived=True)[:5]
    assert [(m.seq, m.turn, m.role, m.content, m.speaker_name) for m in copied] == [
        (m.seq, m.turn, m.role, m.content, m.speaker_name) for m in originals]
    assert chat["next_seq"] == copied[-1].seq + 1 and chat["turn"] == copied[-1].turn
    assert [s.content for s in store.swipes(conn, copied[4].id)] == ["reply two", "alt two"]
    assert [s.content for s in store.swipes(conn, copied[2].id)] == ["reply one", "alt one"]


def test_fork_cast_npcs_focus_and_summaries(conn: Any, story: dict[str, Any]) -> None:
    chat_id, ids = story["chat_id"], story["ids"]
    new_id = fork_chat(conn, chat_id, ids[4], title="  Branch  ")
    assert store.get_chat(conn, new_id).title == "Branch"
    cast = store.cast_members(conn, new_id)
    assert [(c.name, c.is_active) for c in cast] == [("Mira", True), ("Bran", True), ("Innkeeper", False)]
    new_npc = cast[2].character_id
    assert new_npc != story["npc"]
    scope = conn.execute("SELECT scope_chat_id FROM characters WHERE id = ?", (new_npc,)).fetchone()
    assert scope["scope_chat_id"] == new_id
    assert store.get_chat(conn, new_id).focus_character_id == story["bran"]
    replies = [m for m in store.list_messages(conn, new_id, include_archived=True) if m.role == "assistant"][1:]
    assert {m.character_id for m in replies} == {new_npc}
    sums = conn.execute("SELECT * FROM summaries WHERE chat_id = ?", (new_id,)).fetchall()
    assert [s["text"] for s in sums] == ["They met."]
    live = store.list_messages(conn, new_id)
    # the first three were folded into the copied summary; the late summary was not copied: unfolded
    assert [m.content for m in live] == ["two", "reply two"]
    folded = conn.execute("SELECT summary_id FROM messages WHERE chat_id = ? AND archived = 1", (new_id,)).fetchall()
    assert {r["summary_id"] for r in folded} == {sums[0]["id"]}


def test_fork_of_unnamed_chat_and_bad_message(conn: Any, story: dict[str, Any]) -> None:
    chat_id = story["chat_id"]
    service.update_chat(conn, chat_id, {"title": ""})
    first = store.list_messages(conn, chat_id, include_archived=True)[0]
    new_id = fork_chat(conn, chat_id, first.id)
    assert store.get_chat(conn, new_id).title == "Mira, Bran, Innkeeper (fork)"  # named as the chat list names it
    assert len(store.list_messages(conn, new_id, include_archived=True)) == 1
    other = service.create_chat(conn, character_ids=[story["mira"]])
    with pytest.raises(NotFound):
        fork_chat(conn, other, first.id)
    with pytest.raises(NotFound):
        fork_chat(conn, 999, first.id)
