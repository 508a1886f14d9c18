"""A stream that ends without a finish reason is never a complete reply, for any backend (fake LLM)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from neuralrp.errors import StreamCutShort
from neuralrp.llm.client import OpenAICompatBackend
from neuralrp.llm.types import ChatMessage, SamplingParams
from tests.api.chat_helpers import chat_client, messages, new_chat, send_streamed
from tests.fakes import FakeLLM

REPLY = "one two three four five six seven eight"
FLAVOURS = ["llamacpp", "koboldcpp", "tabbyapi", "ollama", "openai"]


def settings_for(make_settings: Any, flavour: str, **llm: Any) -> Any:
    model = {"model": "llama3.2"} if flavour == "ollama" else {}
    return make_settings(llm={"base_url": "http://llm.test", **model, **llm})


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("fault", ["interrupt", "cut"])
def test_a_reply_whose_stream_stops_early_is_incomplete_and_says_why(make_settings: Any, flavour: str,
                                                                   fault: str) -> None:
    fake = FakeLLM(flavour)
    fake.enqueue(REPLY)
    fake.fault(fault, after=3)  # interrupt: [DONE] with no finish chunk, as llama-cpp-python sends when cut
    with chat_client(settings_for(make_settings, flavour), fake) as client:
        chat = new_chat(client)
        status, events = send_streamed(client, chat["id"], "Tell me a story")
        stored = messages(client, chat["id"])
    assert status == 200
    final = events[-1]
    assert final["type"] == "error", f"{flavour}/{fault}: a cut stream ended as {final['type']}"
    assert "ended before the reply was finished" in final["detail"]
    assert final["message"]["status"] == "incomplete"
    partial = "".join(e["text"] for e in events if e["type"] == "token")
    assert partial and partial != REPLY
    assert stored[-1]["status"] == "incomplete" and stored[-1]["content"] == partial


def test_a_cut_reply_is_dropped_from_the_live_chat_when_incomplete_ones_are_not_kept(make_settings: Any) -> None:
    fake = FakeLLM("llamacpp")
    fake.enqueue(REPLY)
    fake.fault("interrupt", after=3)
    with chat_client(settings_for(make_settings, "llamacpp", keep_incomplete=False), fake) as client:
        chat = new_chat(client)
        _, events = send_streamed(client, chat["id"], "Tell me a story")
        stored = messages(client, chat["id"])
    assert events[-1]["type"] == "error" and "ended before the reply was finished" in events[-1]["detail"]
    assert stored[-1]["role"] == "user", "the partial reply is archived, never shown as complete"


@pytest.mark.parametrize("flavour", ["llamacpp", "koboldcpp", "tabbyapi", "openai"])
async def test_the_client_raises_on_done_without_a_finish_reason(flavour: str, make_settings: Any) -> None:
    fake = FakeLLM(flavour)
    fake.enqueue(REPLY)
    fake.fault("interrupt", after=2)
    settings = settings_for(make_settings, flavour)
    backend = OpenAICompatBackend(settings.llm, transport=httpx.ASGITransport(app=fake.app))
    got: list[str] = []
    try:
        with pytest.raises(StreamCutShort):
            async for chunk in backend.stream([ChatMessage("user", "Hi")], SamplingParams(max_tokens=20)):
                got.append(chunk.text)
    finally:
        await backend.aclose()
    assert "".join(got).strip() and "".join(got) != REPLY
