"""Training export routes: per chat (GET .../export?format=) and many chats (POST /api/chats/export/training)."""

from __future__ import annotations

import json
from typing import Any

from tests.api.chat_helpers import chat_client, new_chat, send_streamed
from tests.chats.test_training_export import check_sharegpt_like
from tests.fakes import FakeLLM


def _rows(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


def test_export_formats(make_settings: Any) -> None:
    settings = make_settings(llm={"base_url": "http://llm.test/v1"})
    fake = FakeLLM("llamacpp")
    fake.enqueue("Rest now.")
    with chat_client(settings, fake) as client:
        chat = new_chat(client)
        send_streamed(client, chat["id"], "Where am I?")
        other = new_chat(client)
        base = f"/api/chats/{chat['id']}/export"
        st = client.get(base)
        assert st.status_code == 200 and st.headers["content-type"].startswith("application/jsonl")
        share = client.get(base, params={"format": "sharegpt"})
        assert share.status_code == 200 and "attachment" in share.headers["content-disposition"]
        rows = _rows(share.text)
        check_sharegpt_like(rows, "conversations")
        assert [t["from"] for t in rows[0]["conversations"]] == ["system", "gpt", "human", "gpt"]
        chatml = _rows(client.get(base, params={"format": "chatml"}).text)
        check_sharegpt_like(chatml, "messages")
        text = _rows(client.get(base, params={"format": "chatml", "chatml_text": True}).text)[0]["text"]
        assert text.endswith("<|im_start|>assistant\nRest now.<|im_end|>\n")
        alpaca = _rows(client.get(base, params={"format": "alpaca"}).text)
        assert alpaca == [{"instruction": "Where am I?", "input": alpaca[0]["input"], "output": "Rest now."}]
        assert client.get(base, params={"format": "csv"}).status_code == 422
        many = client.post("/api/chats/export/training", json={"chat_ids": [chat["id"], other["id"]],
                                                                "format": "chatml"})
        assert many.status_code == 200 and len(_rows(many.text)) == 2
        every = client.post("/api/chats/export/training", json={"format": "sharegpt"})
        assert len(_rows(every.text)) == 2
        assert client.post("/api/chats/export/training", json={"chat_ids": [999]}).status_code == 404
        assert client.post("/api/chats/export/training", json={"format": "xml"}).status_code == 422
