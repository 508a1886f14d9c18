"""The chat loop through the API, with a fake LLM following the real contracts."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.chat_helpers import (
    CARD,
    chat_client,
    last_reply_request,
    messages,
    new_chat,
    reply_requests,
    send_streamed,
)
from tests.fakes import FakeLLM

REPLY = "*Seraphina kneels beside you.* Rest now, Ari. The glade will keep you safe."


@pytest.fixture
def llm_settings(make_settings: Any) -> Any:
    return make_settings(llm={"base_url": "http://llm.test/v1"}, sampling={"max_tokens": 120})


def test_send_streams_reply_and_both_messages_persist(llm_settings: Any) -> None:
    fake = FakeLLM("llamacpp")
    fake.enqueue(REPLY)
    with chat_client(llm_settings, fake) as client:
        chat = new_chat(client)
        status, events = send_streamed(client, chat["id"], "Where am I?")
    assert status == 200
    kinds = [e["type"] for e in events]
    assert kinds[:2] == ["user", "start"] and kinds[-1] == "done"
    tokens = [e["text"] for e in events if e["type"] == "token"]
    assert len(tokens) > 5 and "".join(tokens) == REPLY
    assert events[-1]["message"]["content"] == REPLY and events[-1]["message"]["status"] == "complete"
    sent = last_reply_request(fake).json
    assert sent["messages"][0]["role"] == "system"
    assert "Guardian of the glade who heals Ari." in sent["messages"][0]["content"]
    assert sent["messages"][-1]["role"] == "user"
    assert sent["messages"][-1]["content"].startswith("Where am I?\n\n[Seraphina speaks next.")
    assert sent["messages"][-2] == {"role": "assistant", "content": "You're awake, Ari."}
    assert sent["max_tokens"] == 120 and sent["stream"] is True
    # reload: a fresh app on the same data dir still has both messages
    with chat_client(llm_settings, fake) as client:
        stored = messages(client, chat["id"])
    assert [(m["role"], m["content"]) for m in stored] == [
        ("assistant", "You're awake, Ari."), ("user", "Where am I?"), ("assistant", REPLY)]
    assert [m["turn"] for m in stored] == [0, 1, 1]


def test_non_stream_mode_returns_json(llm_settings: Any) -> None:
    fake = FakeLLM("koboldcpp")
    fake.enqueue("Short reply.")
    with chat_client(llm_settings, fake) as client:
        chat = new_chat(client)
        resp = client.post(f"/api/chats/{chat['id']}/messages", json={"content": "Hi", "stream": False})
    assert resp.status_code == 201
    body = resp.json()
    assert body["user"]["content"] == "Hi"
    assert body["reply"]["content"] == "Short reply."


def test_backend_down_gives_503_and_keeps_user_message(llm_settings: Any) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with chat_client(llm_settings, transport=httpx.MockTransport(refuse)) as client:
        chat = new_chat(client)
        status, (body,) = send_streamed(client, chat["id"], "Anyone there?")
        stored = messages(client, chat["id"])
    assert status == 503
    assert body["detail"] == "Cannot reach the LLM server at http://llm.test: is it running?"
    assert body["user"]["content"] == "Anyone there?"
    assert [m["content"] for m in stored] == ["You're awake, Ari.", "Anyone there?"]


def test_no_backend_configured_explains(make_settings: Any) -> None:
    with chat_client(make_settings()) as client:
        chat = new_chat(client)
        status, (body,) = send_streamed(client, chat["id"], "Hello?")
        stored = messages(client, chat["id"])
    assert status == 503
    assert "No LLM server is configured: set llm.base_url" in body["detail"]
    assert stored[-1]["content"] == "Hello?"


@pytest.mark.parametrize(
    ("fault", "params", "status", "text"),
    [
        ("status", {"code": 500}, 502, "HTTP 500"),
        ("status", {"code": 503}, 503, "busy or has no model loaded"),
        ("context_overflow", {}, 502, "longer than the model's context window"),
    ],
)
def test_backend_errors_before_text_give_json_errors(llm_settings: Any, fault: str, params: dict[str, Any],
                                                     status: int, text: str) -> None:
    fake = FakeLLM("tabbyapi")
    with chat_client(llm_settings, fake) as client:
        chat = new_chat(client)
        fake.fault(fault, **params)
        code, (body,) = send_streamed(client, chat["id"], "Hello")
        stored = messages(client, chat["id"])
    assert code == status
    assert text in body["detail"]
    assert [m["role"] for m in stored] == ["assistant", "user"], "no empty reply row is left behind"


@pytest.mark.parametrize("fault", ["cut", "malformed", "error_event"])
@pytest.mark.parametrize("keep", [True, False])
def test_broken_stream_keeps_or_drops_partial_reply(make_settings: Any, fault: str, keep: bool) -> None:
    settings = make_settings(llm={"base_url": "http://llm.test", "keep_incomplete": keep})
    fake = FakeLLM("tabbyapi")
    fake.enqueue("one two three four five six seven eight")
    with chat_client(settings, fake) as client:
        chat = new_chat(client)
        fake.fault(fault, after=3)
        status, events = send_streamed(client, chat["id"], "Count for me")
        stored = messages(client, chat["id"])
    assert status == 200
    assert events[-1]["type"] == "error"
    partial = "".join(e["text"] for e in events if e["type"] == "token")
    assert partial == "one two three"
    if keep:
        assert stored[-1]["content"] == partial and stored[-1]["status"] == "incomplete"
    else:
        assert [m["role"] for m in stored] == ["assistant", "user"]


def test_regenerate_keeps_swipes(llm_settings: Any) -> None:
    fake = FakeLLM("llamacpp")
    fake.enqueue("First answer.", "Second answer.")
    with chat_client(llm_settings, fake) as client:
        chat = new_chat(client)
        send_streamed(client, chat["id"], "Tell me something")
        status, events = send_streamed(client, chat["id"], "", path="regenerate")
        assert status == 200 and events[-1]["type"] == "done"
        reply = events[-1]["message"]
        assert reply["content"] == "Second answer." and reply["swipe_count"] == 2 and reply["swipe_index"] == 1
        swipes = client.get(f"/api/chats/{chat['id']}/messages/{reply['id']}/swipes").json()
        assert [s["content"] for s in swipes["swipes"]] == ["First answer.", "Second answer."]
        back = client.post(f"/api/chats/{chat['id']}/messages/{reply['id']}/swipe", json={"index": 0}).json()
        assert back["content"] == "First answer."
        assert messages(client, chat["id"])[-1]["content"] == "First answer."
    # the regenerate prompt did not include the reply being replaced
    regen = reply_requests(fake)[-1].json["messages"]
    assert regen[-1]["role"] == "user" and regen[-1]["content"].startswith("Tell me something\n\n[Seraphina")


def test_continue_extends_last_reply(llm_settings: Any) -> None:
    fake = FakeLLM("openai")
    fake.enqueue("The night is", " long and cold.")
    with chat_client(llm_settings, fake) as client:
        chat = new_chat(client)
        send_streamed(client, chat["id"], "Describe the night")
        status, events = send_streamed(client, chat["id"], "", path="continue")
        stored = messages(client, chat["id"])
    assert events[-1]["message"]["content"] == "The night is long and cold."
    assert stored[-1]["content"] == "The night is long and cold."
    sent = reply_requests(fake)[-1].json
    assert sent["messages"][-1] == {"role": "assistant", "content": "The night is"}
    assert sent["continue_final_message"] is True


def test_continue_on_koboldcpp_writes_on_in_the_same_message(llm_settings: Any) -> None:
    # KoboldCpp's chat route closes the reply and opens a new turn (issue 16): Continue uses its placeholders.
    fake = FakeLLM("koboldcpp")
    fake.enqueue("The night is", " long and cold.")
    with chat_client(llm_settings, fake) as client:
        chat = new_chat(client)
        send_streamed(client, chat["id"], "Describe the night")
        status, events = send_streamed(client, chat["id"], "", path="continue")
        stored = messages(client, chat["id"])
    assert status == 200 and events[-1]["type"] == "done"
    assert stored[-1]["content"] == "The night is long and cold." and stored[-1]["role"] == "assistant"
    assert fake.last_completion_request().json["prompt"].endswith("{{[OUTPUT]}}The night is")
    assert fake.prompts[-1].endswith("\n### Response:\nThe night is")  # the model writes on in that message


def test_continue_the_server_cannot_do_says_so_and_keeps_the_reply(llm_settings: Any) -> None:
    fake = FakeLLM("koboldcpp", version="1.76")
    fake.enqueue("The night is")
    with chat_client(llm_settings, fake) as client:
        chat = new_chat(client)
        send_streamed(client, chat["id"], "Describe the night")
        status, events = send_streamed(client, chat["id"], "", path="continue")
        stored = messages(client, chat["id"])
    assert events[-1]["type"] == "error" and events[-1]["status"] == 422
    assert events[-1]["detail"].startswith("Continue is not supported by this server: KoboldCpp 1.76")
    assert (stored[-1]["content"], stored[-1]["status"]) == ("The night is", "complete")
    assert fake.generations == 1


def test_thinking_is_never_shown_as_the_reply(make_settings: Any) -> None:
    thoughts = "The user asks where they are. I will describe the glade and stay in character."
    settings = make_settings(llm={"base_url": "http://127.0.0.1:11434", "model": "qwen3", "thinking": True},
                             sampling={"max_tokens": 200})
    fake = FakeLLM("ollama", model="qwen3", thinking=thoughts)
    fake.enqueue(REPLY)
    with chat_client(settings, fake) as client:
        chat = new_chat(client)
        status, events = send_streamed(client, chat["id"], "Where am I?")
        stored = messages(client, chat["id"])
    assert "think" not in last_reply_request(fake).json  # allowed: the model thinks (Ollama's default)
    assert "".join(e["text"] for e in events if e["type"] == "token") == REPLY
    assert stored[-1]["content"] == REPLY and "glade and stay" not in str(events)


def test_regenerate_without_reply_is_conflict(llm_settings: Any) -> None:
    fake = FakeLLM("llamacpp")
    with chat_client(llm_settings, fake) as client:
        chat = client.post("/api/chats", json={"card": {"name": "Quiet"}}).json()
        resp = client.post(f"/api/chats/{chat['id']}/regenerate", json={})
    assert resp.status_code == 409
    assert "send a message first" in resp.json()["detail"]


def test_api_bad_input(llm_settings: Any) -> None:
    with chat_client(llm_settings, FakeLLM("llamacpp")) as client:
        bad_card = client.post("/api/chats", json={"card": {"description": "nameless"}})
        assert bad_card.status_code == 422
        assert "not a character card" in bad_card.json()["detail"]
        chat = new_chat(client)
        empty = client.post(f"/api/chats/{chat['id']}/messages", json={"content": "   "})
        assert empty.status_code == 422 and empty.json()["detail"] == "the message is empty"
        missing = client.post("/api/chats/999/messages", json={"content": "hi"})
        assert missing.status_code == 404 and "chat 999 does not exist" in missing.json()["detail"]
        assert client.get("/api/chats").json()[0]["cast_names"] == "Seraphina"


def test_crash_leftover_streaming_row_is_marked_incomplete(llm_settings: Any) -> None:
    with chat_client(llm_settings, FakeLLM("llamacpp")) as client:
        chat = new_chat(client)
    from neuralrp.db.connection import Database

    with Database(llm_settings.db_path).session() as conn:
        conn.execute("UPDATE messages SET status = 'streaming', content = 'half a rep' WHERE chat_id = ?",
                     (chat["id"],))
    with chat_client(llm_settings, FakeLLM("llamacpp")) as client:
        stored = messages(client, chat["id"])
    assert stored[0]["status"] == "incomplete" and stored[0]["content"] == "half a rep"


def test_card_fields_survive_in_character(llm_settings: Any) -> None:
    with chat_client(llm_settings, FakeLLM("llamacpp")) as client:
        chat = new_chat(client)
        char = client.get(f"/api/characters/{chat['cast'][0]['character_id']}").json()
    assert char["card"]["data"]["extensions"] == CARD["data"]["extensions"]


def test_backend_token_counts_are_cached_per_message(llm_settings: Any) -> None:
    fake = FakeLLM("koboldcpp")
    fake.enqueue("Counted reply here.")
    with chat_client(llm_settings, fake) as client:
        chat = new_chat(client)
        send_streamed(client, chat["id"], "Count these words please")
        from neuralrp.db.connection import Database

        with Database(llm_settings.db_path).session() as conn:
            rows = conn.execute("SELECT role, token_count, token_counter FROM messages ORDER BY seq").fetchall()
    counted = [r for r in rows if r["token_counter"].startswith("koboldcpp:")]
    assert {r["role"] for r in counted} == {"user", "assistant"}, "both sides counted by the server's tokenizer"
    assert len(fake.requests_to("/api/extra/tokencount")) == 2


def test_ollama_reply_streams_through_native_chat_with_num_ctx(make_settings: Any) -> None:
    settings = make_settings(llm={"base_url": "http://127.0.0.1:11434", "model": "llama3.2"},
                             context={"max_tokens": 16384}, sampling={"max_tokens": 120})
    fake = FakeLLM("ollama", loaded=False)  # trained for 131072 tokens, not loaded yet
    fake.enqueue(REPLY, "*She smiles.*")
    with chat_client(settings, fake) as client:
        chat = new_chat(client)
        status, events = send_streamed(client, chat["id"], "Where am I?")
        assert status == 200 and events[-1]["type"] == "done"
        assert "".join(e["text"] for e in events if e["type"] == "token") == REPLY
        assert messages(client, chat["id"])[-1]["content"] == REPLY
        info = client.get("/api/llm/info").json()
        assert (info["kind"], info["context_length"]) == ("ollama", 16384)
        send_streamed(client, chat["id"], "", path="continue")
    sent = reply_requests(fake)
    assert [r.path for r in sent] == ["/api/chat", "/api/chat"] and fake.chat_requests() == []
    first, cont = sent[0].json, sent[1].json
    assert first["stream"] is True and first["model"] == "llama3.2"
    assert first["options"]["num_ctx"] == 16384 and first["options"]["num_predict"] == 120
    assert first["options"]["top_k"] == 40 and first["options"]["min_p"] == 0.05
    assert first["options"]["repeat_penalty"] == 1.08
    assert first["messages"][-1]["content"].startswith("Where am I?\n\n[Seraphina speaks next.")
    assert cont["messages"][-1] == {"role": "assistant", "content": REPLY}
    assert fake.context_length == 16384  # Ollama was asked to allocate exactly the window we budget for
