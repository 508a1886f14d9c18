"""Every way a reply can fail ends it: an `error` event, a final row state, a free chat, a working Stop and shutdown.

Failures: each malformed chunk shape from the LLM server (OpenAI chat SSE, text completion SSE, Ollama NDJSON),
a database error while the prompt is built (an injected prompt engine), a bug there, and a real SQLite error
while the reply's text is written (a trigger refuses the write).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient

from neuralrp.db.connection import Database, driver
from neuralrp.errors import DatabaseError
from tests.api.chat_helpers import chat_client, messages, new_chat, send_streamed
from tests.fakes import FakeLLM
from tests.fakes.llm_malformed import CHAT, OLLAMA, TEXT, BadChunk

REPLY = "one two three four five six"
PROMPT_LIMIT_S = 1.0  # a failed reply must have its final event and row state within this

DIALECTS: dict[str, tuple[str, dict[str, Any]]] = {
    "chat": ("tabbyapi", {}),
    "text": ("llamacpp", {"api_mode": "completion", "template": "chatml"}),
    "ollama": ("ollama", {"model": "llama3.2"}),
}
CASES = [pytest.param(dialect, chunk, id=f"{dialect}-{chunk.id}")
         for dialect, chunks in (("chat", CHAT), ("text", TEXT), ("ollama", OLLAMA)) for chunk in chunks]


@contextmanager
def timed(limit: float, what: str) -> Iterator[None]:
    """Fail when the block takes longer than `limit` seconds."""
    started = time.monotonic()
    yield
    elapsed = time.monotonic() - started
    assert elapsed < limit, f"{what} took {elapsed:.2f} s (limit {limit} s)"


def post_message(client: TestClient, chat_id: int, text: str, *, stream: bool) -> tuple[int, dict[str, Any]]:
    """Send a message; the status and the JSON answer (a reply that failed before its first token)."""
    if stream:
        status, events = send_streamed(client, chat_id, text)
        assert len(events) == 1, "a reply that failed before any text answers JSON, not a stream"
        return status, events[0]
    resp = client.post(f"/api/chats/{chat_id}/messages", json={"content": text, "stream": False})
    return resp.status_code, resp.json()


def generating(client: TestClient, chat_id: int) -> bool:
    return bool(client.get(f"/api/chats/{chat_id}/messages").json()["generating"])


def assert_chat_is_free(client: TestClient, fake: FakeLLM, chat_id: int) -> None:
    """Stop answers at once with nothing to stop, and the next message gets a whole reply."""
    assert not generating(client, chat_id)
    with timed(PROMPT_LIMIT_S, "Stop after the failure"):
        assert client.post(f"/api/chats/{chat_id}/stop").json() == {"stopped": False}
    fake.enqueue("All is well again.")
    status, events = send_streamed(client, chat_id, "Still there?")
    assert status == 200 and events[-1]["type"] == "done", events[-1]
    assert events[-1]["message"]["content"] == "All is well again."


@pytest.mark.parametrize(("dialect", "chunk"), CASES)
def test_malformed_chunk_ends_the_reply_with_an_error(make_settings: Any, dialect: str, chunk: BadChunk) -> None:
    flavour, llm = DIALECTS[dialect]
    settings = make_settings(llm={"base_url": "http://llm.test/v1", **llm})
    fake = FakeLLM(flavour)
    client_cm = chat_client(settings, fake)
    client = client_cm.__enter__()
    try:
        chat = new_chat(client)
        fake.enqueue(REPLY)
        fake.fault("malformed", after=3, text=chunk.text)
        with timed(PROMPT_LIMIT_S, "the streamed reply"):
            status, events = send_streamed(client, chat["id"], "Count for me")
        assert status == 200 and [e["type"] for e in events[:2]] == ["user", "start"]
        last = events[-1]
        assert last["type"] == "error" and chunk.error in last["detail"], last
        assert (last["status"], last["error"]) == (502, "BackendBadResponse")
        assert "".join(e["text"] for e in events if e["type"] == "token") == "one two three"
        assert (last["message"]["content"], last["message"]["status"]) == ("one two three", "incomplete")

        fake.enqueue(REPLY)
        fake.fault("malformed", after=3, text=chunk.text)
        with timed(PROMPT_LIMIT_S, "the reply with stream=false"):
            resp = client.post(f"/api/chats/{chat['id']}/messages", json={"content": "Again", "stream": False})
        body = resp.json()
        assert resp.status_code == 502 and body["type"] == "error" and chunk.error in body["detail"]
        assert body["user"]["content"] == "Again"
        assert (body["message"]["content"], body["message"]["status"]) == ("one two three", "incomplete")

        stored = messages(client, chat["id"])
        assert [(m["role"], m["status"]) for m in stored[1:]] == [
            ("user", "complete"), ("assistant", "incomplete"), ("user", "complete"), ("assistant", "incomplete")]
        assert_chat_is_free(client, fake, chat["id"])
    finally:
        with timed(2.0, "app shutdown"):
            client_cm.__exit__(None, None, None)


@pytest.mark.parametrize("keep", [True, False])
def test_malformed_chunk_during_regenerate_keeps_every_text(make_settings: Any, keep: bool) -> None:
    settings = make_settings(llm={"base_url": "http://llm.test/v1", "keep_incomplete": keep})
    fake = FakeLLM("tabbyapi")
    fake.enqueue("First answer stands.")
    with chat_client(settings, fake) as client:
        chat = new_chat(client)
        send_streamed(client, chat["id"], "Hello")
        fake.enqueue(REPLY)
        fake.fault("malformed", after=3, text='{"choices": 5}')
        status, events = send_streamed(client, chat["id"], "", path="regenerate")
        assert status == 200 and events[-1]["type"] == "error"
        last = messages(client, chat["id"])[-1]
        swipes = client.get(f"/api/chats/{chat['id']}/messages/{last['id']}/swipes").json()["swipes"]
        history = client.get(f"/api/messages/{last['id']}/history").json()
    if keep:
        assert (last["content"], last["status"]) == ("one two three", "incomplete")
        assert [s["content"] for s in swipes] == ["First answer stands.", "one two three"]
    else:
        assert (last["content"], last["status"]) == ("First answer stands.", "complete")
        assert [s["content"] for s in swipes] == ["First answer stands."]
        kept = [h for h in history["changes"] if h["old"] == {"content": "one two three"}]
        assert kept, "the dropped partial text is kept in change history"


class BrokenEngine:
    """A prompt engine whose build raises `error` (after hanging until cancelled, with hang=True)."""

    def __init__(self, error: Exception, *, hang: bool = False) -> None:
        self.error = error
        self.hang = hang
        self.entered = threading.Event()

    async def build(self, chat_id: int, speaker: Any, **kwargs: Any) -> Any:
        self.entered.set()
        if self.hang:
            await asyncio.Event().wait()  # until Stop or shutdown cancels the reply
        raise self.error


def _driver_error() -> Exception:
    return driver().OperationalError("disk I/O error")  # type: ignore[no-any-return]


BUILD_ERRORS = [
    pytest.param(lambda: DatabaseError("database disk image is malformed"), 500, "DatabaseError",
                 "database disk image is malformed", False, id="DatabaseError"),
    pytest.param(_driver_error, 500, "DatabaseError",
                 "The database failed while the reply was being written: disk I/O error", True, id="sqlite-error"),
    pytest.param(lambda: RuntimeError("a bug"), 500, "InternalError",
                 "internal error (RuntimeError); the server log has the details", True, id="bug"),
]


@pytest.fixture
def llm_settings(make_settings: Any) -> Any:
    return make_settings(llm={"base_url": "http://llm.test/v1"})


@pytest.mark.parametrize("stream", [True, False])
@pytest.mark.parametrize(("make_error", "status", "name", "detail", "traced"), BUILD_ERRORS)
def test_prompt_build_error_ends_the_reply(llm_settings: Any, caplog: pytest.LogCaptureFixture, stream: bool,
                                           make_error: Any, status: int, name: str, detail: str,
                                           traced: bool) -> None:
    fake = FakeLLM("llamacpp")
    with chat_client(llm_settings, fake) as client:
        chat = new_chat(client)
        manager = client.app.state.services.generations  # type: ignore[attr-defined]
        real, manager.engine = manager.engine, BrokenEngine(make_error())
        with caplog.at_level(logging.WARNING, logger="neuralrp.turns.generation"), \
                timed(PROMPT_LIMIT_S, "the failed reply"):
            code, body = post_message(client, chat["id"], "Hello", stream=stream)
        assert code == status and body["type"] == "error" and body["error"] == name and detail in body["detail"]
        assert body["user"]["content"] == "Hello" and body["message"] is None  # the empty reply row is gone
        stored = messages(client, chat["id"])
        assert [(m["role"], m["status"]) for m in stored] == [("assistant", "complete"), ("user", "complete")]
        logged = [r for r in caplog.records if f"chat {chat['id']}" in r.getMessage()]
        assert logged, "the failure is logged with the chat id"
        assert (logged[0].exc_info is not None) == traced, "a traceback for what NeuralRP did not raise itself"
        manager.engine = real
        assert_chat_is_free(client, fake, chat["id"])


def test_prompt_build_error_during_regenerate_puts_the_reply_back(llm_settings: Any) -> None:
    fake = FakeLLM("llamacpp")
    fake.enqueue("The answer to keep.")
    with chat_client(llm_settings, fake) as client:
        chat = new_chat(client)
        send_streamed(client, chat["id"], "Hello")
        manager = client.app.state.services.generations  # type: ignore[attr-defined]
        manager.engine = BrokenEngine(DatabaseError("database is locked"))
        resp = client.post(f"/api/chats/{chat['id']}/regenerate", json={"stream": False})
        last = messages(client, chat["id"])[-1]
    assert resp.status_code == 500 and resp.json()["detail"] == "database is locked"
    assert (last["content"], last["status"]) == ("The answer to keep.", "complete")


def _post_in_thread(client: TestClient, url: str, body: dict[str, Any]) -> tuple[threading.Thread, list[Any]]:
    out: list[Any] = []
    thread = threading.Thread(target=lambda: out.append(client.post(url, json=body)), daemon=True)
    thread.start()
    return thread, out


@pytest.mark.parametrize("stream", [True, False])
def test_stop_during_a_hanging_prompt_build(llm_settings: Any, stream: bool) -> None:
    fake = FakeLLM("llamacpp")
    with chat_client(llm_settings, fake) as client:
        chat = new_chat(client)
        manager = client.app.state.services.generations  # type: ignore[attr-defined]
        real, manager.engine = manager.engine, BrokenEngine(DatabaseError("never raised"), hang=True)
        engine = manager.engine
        thread, out = _post_in_thread(client, f"/api/chats/{chat['id']}/messages",
                                      {"content": "Hello", "stream": stream})
        assert engine.entered.wait(5), "the reply reached the prompt build"
        with timed(PROMPT_LIMIT_S, "Stop"):
            assert client.post(f"/api/chats/{chat['id']}/stop").json() == {"stopped": True}
        thread.join(5)
        assert out, "the POST answered"
        if stream:
            assert out[0].headers["content-type"].startswith("text/event-stream")
            assert '"type": "done"' in out[0].text and '"stopped": true' in out[0].text
        else:
            assert out[0].status_code == 201 and out[0].json()["stopped"] is True
        assert [m["role"] for m in messages(client, chat["id"])] == ["assistant", "user"]
        manager.engine = real
        assert_chat_is_free(client, fake, chat["id"])


def test_shutdown_during_a_hanging_prompt_build(llm_settings: Any) -> None:
    fake = FakeLLM("llamacpp")
    client_cm = chat_client(llm_settings, fake)
    client = client_cm.__enter__()
    chat = new_chat(client)
    engine = BrokenEngine(DatabaseError("never raised"), hang=True)
    client.app.state.services.generations.engine = engine  # type: ignore[attr-defined]
    thread, out = _post_in_thread(client, f"/api/chats/{chat['id']}/messages", {"content": "Hi", "stream": False})
    assert engine.entered.wait(5)
    with timed(2.0, "app shutdown"):
        client_cm.__exit__(None, None, None)
    thread.join(5)
    assert out and out[0].status_code == 201 and out[0].json()["stopped"] is True
    with Database(llm_settings.db_path).session() as conn:
        rows = conn.execute("SELECT role, status FROM messages WHERE chat_id = ? ORDER BY seq", (chat["id"],))
        assert [(r["role"], r["status"]) for r in rows] == [("assistant", "complete"), ("user", "complete")]


REFUSE_THIRD_WORD = """
CREATE TRIGGER refuse_third_word BEFORE UPDATE OF content ON messages
WHEN NEW.status = 'streaming' AND NEW.content LIKE '%three%'
BEGIN SELECT RAISE(ABORT, 'disk quota exceeded'); END;
"""


@pytest.mark.parametrize("keep", [True, False])
@pytest.mark.parametrize("stream", [True, False])
def test_database_error_while_writing_the_reply(make_settings: Any, keep: bool, stream: bool) -> None:
    settings = make_settings(llm={"base_url": "http://llm.test/v1", "keep_incomplete": keep})
    fake = FakeLLM("tabbyapi")
    with chat_client(settings, fake) as client:
        chat = new_chat(client)
        with Database(settings.db_path).session() as conn:
            conn.executescript(REFUSE_THIRD_WORD)
        fake.enqueue(REPLY)
        with timed(PROMPT_LIMIT_S, "the failed reply"):
            if stream:
                _, events = send_streamed(client, chat["id"], "Count")
            else:
                events = [client.post(f"/api/chats/{chat['id']}/messages",
                                      json={"content": "Count", "stream": False}).json()]
        last = events[-1]
        assert last["type"] == "error" and last["error"] == "DatabaseError"
        assert last["detail"] == "The database failed while the reply was being written: disk quota exceeded"
        with Database(settings.db_path).session() as conn:
            conn.execute("DROP TRIGGER refuse_third_word")
            row = conn.execute("SELECT content, status, archived FROM messages WHERE chat_id = ? ORDER BY seq DESC"
                               " LIMIT 1", (chat["id"],)).fetchone()
        assert (row["content"], row["status"], row["archived"]) == ("one two three", "incomplete", int(not keep))
        assert_chat_is_free(client, fake, chat["id"])
