"""Settings edited through the API: validated, stored in the DB, applied to the next reply."""

from __future__ import annotations

from typing import Any

from tests.api.chat_helpers import chat_client, last_reply_request, new_chat, send_streamed
from tests.fakes import FakeLLM


def test_get_put_persist_and_apply(make_settings: Any) -> None:
    settings = make_settings(llm={"base_url": "http://llm.test", "api_key": "secret"})
    fake = FakeLLM("koboldcpp")
    with chat_client(settings, fake) as client:
        doc = client.get("/api/settings").json()
        assert doc["values"]["llm"]["api_key"] == "***"
        assert doc["values"]["sampling"]["temperature"] == 0.8 and doc["overridden"] == []
        changed = client.put("/api/settings", json={"sampling": {"temperature": 0.3, "max_tokens": 77,
                                                                 "stop": ["\nAri:"]}})
        assert changed.status_code == 200
        assert changed.json()["overridden"] == ["sampling.max_tokens", "sampling.stop", "sampling.temperature"]
        chat = new_chat(client)
        send_streamed(client, chat["id"], "Hello")
    sent = last_reply_request(fake).json
    assert (sent["temperature"], sent["max_tokens"], sent["stop"]) == (0.3, 77, ["\nAri:"])
    assert last_reply_request(fake).headers["authorization"] == "Bearer secret"
    with chat_client(settings, fake) as client:  # a restart keeps the UI's values
        assert client.get("/api/settings").json()["values"]["sampling"]["max_tokens"] == 77
        reset = client.delete("/api/settings/sampling/max_tokens").json()
        assert reset["values"]["sampling"]["max_tokens"] == 350
        assert "sampling.max_tokens" not in reset["overridden"]


def test_bad_values_name_the_key_and_change_nothing(make_settings: Any) -> None:
    with chat_client(make_settings(), FakeLLM("llamacpp")) as client:
        for patch, text in [
            ({"sampling": {"top_p": 5}}, "'sampling.top_p'"),
            ({"sampling": {"temprature": 1}}, "unknown key 'sampling.temprature'"),
            ({"server": {"port": 1}}, "'server' cannot be edited here"),
            ({"llm": {"backend": "nope"}}, "'llm.backend'"),
        ]:
            resp = client.put("/api/settings", json=patch)
            assert resp.status_code == 422, patch
            assert text in resp.json()["detail"]
        assert client.get("/api/settings").json()["overridden"] == []
        assert client.delete("/api/settings/sampling/top_p").status_code == 404


def test_changing_llm_url_reconfigures_backend(make_settings: Any) -> None:
    fake = FakeLLM("tabbyapi")
    with chat_client(make_settings(), fake) as client:
        info = client.get("/api/llm/info").json()
        assert info["configured"] is False and "llm.base_url" in info["detail"]
        client.put("/api/settings", json={"llm": {"base_url": "http://llm.test/v1"}})
        info = client.get("/api/llm/info").json()
        assert (info["kind"], info["context_length"]) == ("tabbyapi", 8192)
        masked = client.put("/api/settings", json={"llm": {"api_key": "***"}}).json()
        assert masked["values"]["llm"]["api_key"] is None, "the mask is never stored as a key"


def test_changing_context_window_asks_ollama_for_it(make_settings: Any) -> None:
    fake = FakeLLM("ollama", loaded=False)
    settings = make_settings(llm={"base_url": "http://127.0.0.1:11434", "model": "llama3.2"})
    with chat_client(settings, fake) as client:
        assert client.get("/api/llm/info").json()["context_length"] == 8192
        client.put("/api/settings", json={"context": {"max_tokens": 12000}})
        assert client.get("/api/llm/info").json()["context_length"] == 12000
