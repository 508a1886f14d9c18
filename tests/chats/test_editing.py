"""Message editing, soft delete, change history, restore and pruning on a real SQLite file."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from neuralrp.chats import editing, service, store
from neuralrp.clock import iso, utcnow
from neuralrp.errors import Conflict, InvalidInput, NotFound
from neuralrp.library.characters import insert_character

CARD = {"spec": "chara_card_v2", "spec_version": "2.0",
        "data": {"name": "Mira", "description": "A ranger.", "first_mes": "Hello, {{user}}."}}


def make_chat(conn: Any) -> int:
    cid = insert_character(conn, CARD)
    return service.create_chat(conn, character_ids=[cid], title="Woods", persona={"name": "Ari"})


def test_edit_keeps_old_text_and_restore_round_trips(conn: Any) -> None:
    chat_id = make_chat(conn)
    msg = service.post_user_message(conn, chat_id, "I walk north.")
    edited = editing.edit_message(conn, msg.id, "I walk south.")
    assert edited.content == "I walk south." and edited.id == msg.id
    editing.edit_message(conn, msg.id, "I run south.")
    changes = editing.message_history(conn, msg.id)
    assert [c["operation"] for c in changes] == ["update", "update"]
    assert changes[0]["old"] == {"content": "I walk south."} and changes[0]["new"] == {"content": "I run south."}
    assert changes[1]["old"] == {"content": "I walk north."}
    restored = editing.restore_change(conn, changes[1]["id"])
    assert restored.content == "I walk north."
    newest = editing.message_history(conn, msg.id)[0]
    assert newest["operation"] == "restore" and newest["new"] == {"content": "I walk north."}
    assert editing.restore_change(conn, newest["id"]).content == "I run south."
    assert [c["message_id"] for c in editing.chat_history(conn, chat_id)] == [msg.id] * 4


def test_edit_same_text_records_nothing_and_updates_current_swipe(conn: Any) -> None:
    chat_id = make_chat(conn)
    greeting = store.list_messages(conn, chat_id)[0]
    store.save_swipe(conn, greeting.id, 0, greeting.content)
    store.save_swipe(conn, greeting.id, 1, "Other swipe.")
    editing.edit_message(conn, greeting.id, greeting.content)
    assert editing.message_history(conn, greeting.id) == []
    editing.edit_message(conn, greeting.id, "Hello again, Ari.")
    assert [s.content for s in store.swipes(conn, greeting.id)] == ["Hello again, Ari.", "Other swipe."]


def test_bad_edits_are_refused(conn: Any) -> None:
    chat_id = make_chat(conn)
    msg = service.post_user_message(conn, chat_id, "Hi")
    with pytest.raises(InvalidInput):
        editing.edit_message(conn, msg.id, "   ")
    with pytest.raises(NotFound):
        editing.edit_message(conn, 9999, "x")
    with pytest.raises(NotFound):
        editing.restore_change(conn, 9999)
    conn.execute("UPDATE messages SET status = 'streaming' WHERE id = ?", (msg.id,))
    with pytest.raises(Conflict, match="still being written"):
        editing.edit_message(conn, msg.id, "changed")
    with pytest.raises(Conflict):
        editing.delete_message(conn, msg.id)


def test_delete_archives_and_undo_brings_back(conn: Any) -> None:
    chat_id = make_chat(conn)
    msg = service.post_user_message(conn, chat_id, "Delete me")
    deleted = editing.delete_message(conn, msg.id)
    assert deleted.archived
    assert msg.id not in [m.id for m in store.list_messages(conn, chat_id)]
    reason = conn.execute("SELECT archived_reason FROM messages WHERE id = ?", (msg.id,)).fetchone()
    assert reason["archived_reason"] == "deleted"
    with pytest.raises(Conflict, match="already archived"):
        editing.delete_message(conn, msg.id)
    assert not editing.undelete_message(conn, msg.id).archived
    with pytest.raises(Conflict, match="not deleted"):
        editing.undelete_message(conn, msg.id)
    editing.delete_message(conn, msg.id)
    delete_change = editing.message_history(conn, msg.id)[0]
    assert delete_change["operation"] == "delete"
    assert not editing.restore_change(conn, delete_change["id"]).archived
    ops = [c["operation"] for c in editing.message_history(conn, msg.id)]
    assert ops == ["restore", "delete", "restore", "delete"]


def test_summarized_messages_are_not_undeletable(conn: Any) -> None:
    chat_id = make_chat(conn)
    msg = service.post_user_message(conn, chat_id, "Folded")
    store.archive_message(conn, msg.id, "summarized")
    with pytest.raises(Conflict, match="summarized"):
        editing.undelete_message(conn, msg.id)


def test_prune_drops_only_old_message_history(conn: Any) -> None:
    chat_id = make_chat(conn)
    msg = service.post_user_message(conn, chat_id, "one")
    editing.edit_message(conn, msg.id, "two")
    editing.edit_message(conn, msg.id, "three")
    old = iso(utcnow() - timedelta(days=40))
    first = editing.message_history(conn, msg.id)[-1]["id"]
    conn.execute("UPDATE change_history SET created_at = ? WHERE id = ?", (old, first))
    conn.execute("INSERT INTO change_history (entity_type, entity_id, operation, created_at)"
                 " VALUES ('character', 1, 'update', ?)", (old,))
    assert editing.prune_history(conn, 30) == 1
    assert len(editing.message_history(conn, msg.id)) == 1
    assert store.get_message(conn, msg.id).content == "three"
    assert conn.execute("SELECT count(*) AS n FROM change_history WHERE entity_type = 'character'"
                        ).fetchone()["n"] == 1
    with pytest.raises(InvalidInput):
        editing.prune_history(conn, 0)
