"""SillyTavern chat import: one transaction of bulk inserts; search indexing and token counts come afterwards
from chats/backfill.py (the app's worker, or run_pending)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from neuralrp.app import create_app
from neuralrp.chats import editing
from neuralrp.chats.backfill import run_pending
from neuralrp.chats.importer import import_bytes
from neuralrp.chats.search import search_messages
from neuralrp.db.connection import Database, driver, transaction
from neuralrp.db.migrations import migrate
from neuralrp.library.service import Library
from neuralrp.llm.tokens import LOCAL_COUNTER, estimate_tokens
from tests.waiting import wait_until


@pytest.fixture
def library(tmp_path: Path) -> Library:
    db = Database(tmp_path / "data" / "neuralrp.db")
    with db.session() as conn:
        migrate(conn)
    return Library(db, tmp_path / "data")


def chat_file(count: int) -> bytes:
    lines = [{"user_name": "You", "character_name": "Lyra", "create_date": "2024-09-28@01h02m36s",
              "chat_metadata": {}}]
    for i in range(count):
        user = i % 2 == 0
        line: dict[str, Any] = {"name": "You" if user else "Lyra", "is_user": user, "is_system": False,
                                "send_date": 1727485356000 + i, "mes": f"line {i} mark{i}z harbour"}
        if not user:
            line.update(swipes=[line["mes"], f"swipe {i}"], swipe_id=0, swipe_info=[{}, {}])
        lines.append(line)
    return "\n".join(json.dumps(line) for line in lines).encode()


def counts(library: Library) -> dict[str, int]:
    with library.db.session() as conn:
        return {table: conn.execute(f"SELECT count(*) AS n FROM {table}").fetchone()["n"]
                for table in ("chats", "messages", "message_swipes", "characters", "change_history")}


def fts_is_sound(library: Library) -> None:
    with library.db.session() as conn:
        conn.execute("INSERT INTO messages_fts (messages_fts) VALUES ('integrity-check')")
        conn.execute("INSERT INTO messages_words (messages_words) VALUES ('integrity-check')")


def test_a_failure_half_way_leaves_nothing(library: Library) -> None:
    with library.db.session() as conn:  # the swipes go in after the messages: make that step fail
        conn.execute("CREATE TRIGGER no_swipes BEFORE INSERT ON message_swipes BEGIN"
                     " SELECT RAISE(ABORT, 'disk full'); END")
    before = counts(library)
    with pytest.raises(driver().Error, match="disk full"):
        import_bytes(library, chat_file(40), "Lyra.jsonl")
    assert counts(library) == before, "no chat, message, placeholder card or history row is left"


def test_search_and_token_counts_follow_in_the_background(library: Library) -> None:
    result = import_bytes(library, chat_file(300), "Lyra.jsonl")
    assert result.status == "imported" and result.detail.startswith("300 messages")
    with library.db.session() as conn:
        waiting = conn.execute("SELECT count(*) AS n FROM messages WHERE search_indexed = 0").fetchone()["n"]
        assert waiting == 300
        assert search_messages(conn, "mark7z") == [], "not indexed during the import"
        assert run_pending(conn) == 300
        hits = search_messages(conn, "mark7z")
        assert [h["seq"] for h in hits] == [8]
        rows = conn.execute("SELECT content, token_count, token_counter FROM messages ORDER BY seq").fetchall()
        assert all(r["token_count"] == estimate_tokens(r["content"]) and r["token_counter"] == LOCAL_COUNTER
                   for r in rows)
        assert run_pending(conn) == 0
        assert conn.execute("SELECT count(*) AS n FROM message_swipes").fetchone()["n"] == 300
    fts_is_sound(library)


def test_editing_or_deleting_a_waiting_message_keeps_the_indexes_sound(library: Library) -> None:
    result = import_bytes(library, chat_file(6), "Lyra.jsonl")
    with library.db.session() as conn:
        ids = [r["id"] for r in conn.execute("SELECT id FROM messages WHERE chat_id = ? ORDER BY seq", (result.id,))]
        editing.edit_message(conn, ids[0], "rewritten before indexing: moonwell")
        with transaction(conn):
            conn.execute("DELETE FROM messages WHERE id = ?", (ids[1],))
        run_pending(conn)
        assert [h["message_id"] for h in search_messages(conn, "moonwell")] == [ids[0]]
        assert search_messages(conn, "mark0z") == []
    fts_is_sound(library)


def test_the_running_app_indexes_an_imported_chat_by_itself(make_settings: Any) -> None:
    with TestClient(create_app(make_settings())) as client:
        files = [("files", ("Lyra.jsonl", chat_file(50)))]
        (result,) = client.post("/api/library/import", files=files).json()["results"]
        assert result["status"] == "imported"
        hits = wait_until(lambda: client.get("/api/search", params={"q": "mark49z"}).json()["results"],
                          what="the backfill worker to index the imported chat")
        assert hits[0]["chat_id"] == result["id"]
        backfill = client.app.state.services.backfill  # type: ignore[attr-defined]
        wait_until(lambda: backfill.handled >= 50, what="every imported message to be handled")
