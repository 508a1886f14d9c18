"""Malformed stream chunks, per stream dialect, with the sentence NeuralRP must answer each with.

Send one mid-stream with the fake LLM's `malformed` fault: `fake.fault("malformed", after=3, text=chunk.text)`
puts `chunk.text` as a `data:` line (Ollama native: an NDJSON line) after three good chunks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class BadChunk:
    """One malformed chunk: its wire text and a fragment of the error sentence it must give."""

    id: str
    text: str
    error: str


def _bad(id_: str, value: Any, error: str) -> BadChunk:
    return BadChunk(id_, value if isinstance(value, str) else json.dumps(value), error)


NOT_AN_OBJECT = [
    _bad("not-json", "{not json", "unreadable stream chunk"),
    _bad("list", [1, 2], "a stream chunk that is [1, 2], not a JSON object"),
    _bad("number", 5, "a stream chunk that is 5, not a JSON object"),
    _bad("string", '"hello"', 'a stream chunk that is "hello", not a JSON object'),
    _bad("null", "null", "a stream chunk that is null, not a JSON object"),
]

# OpenAI-style chat SSE (llama.cpp, KoboldCpp, TabbyAPI, OpenAI): text in choices[0].delta.content
CHAT = [
    _bad("choices-number", {"choices": 5}, "a chunk whose 'choices' is 5, not a list"),
    _bad("choices-object", {"choices": {"a": 1}}, """a chunk whose 'choices' is {"a": 1}, not a list"""),
    _bad("choices-string", {"choices": "abc"}, """a chunk whose 'choices' is "abc", not a list"""),
    _bad("choice-number", {"choices": [5]}, "a chunk whose 'choices[0]' is 5, not an object"),
    _bad("choice-list", {"choices": [["x"]]}, """a chunk whose 'choices[0]' is ["x"], not an object"""),
    _bad("delta-number", {"choices": [{"delta": 5}]}, "a chunk whose 'choices[0].delta' is 5, not an object"),
    _bad("delta-string", {"choices": [{"delta": "hi"}]},
         """a chunk whose 'choices[0].delta' is "hi", not an object"""),
    _bad("content-number", {"choices": [{"delta": {"content": 5}}]},
         "a chunk whose 'choices[0].delta.content' is 5, not a string"),
    _bad("content-list", {"choices": [{"delta": {"content": ["a"]}}]},
         """a chunk whose 'choices[0].delta.content' is ["a"], not a string"""),
    _bad("finish-number", {"choices": [{"delta": {"content": "x"}, "finish_reason": 7}]},
         "a chunk whose 'choices[0].finish_reason' is 7, not a string"),
    *NOT_AN_OBJECT,
]

# OpenAI-style text completion SSE (api_mode: completion): text in choices[0].text
TEXT = [
    _bad("choices-number", {"choices": 5}, "a chunk whose 'choices' is 5, not a list"),
    _bad("choices-object", {"choices": {"a": 1}}, """a chunk whose 'choices' is {"a": 1}, not a list"""),
    _bad("choice-string", {"choices": ["x"]}, """a chunk whose 'choices[0]' is "x", not an object"""),
    _bad("text-number", {"choices": [{"text": 5}]}, "a chunk whose 'choices[0].text' is 5, not a string"),
    _bad("text-object", {"choices": [{"text": {"t": "x"}}]},
         """a chunk whose 'choices[0].text' is {"t": "x"}, not a string"""),
    *NOT_AN_OBJECT,
]

# Ollama's native /api/chat NDJSON: text in message.content, the last line has done: true
OLLAMA = [
    _bad("message-number", {"message": 5, "done": False}, "a chunk whose 'message' is 5, not an object"),
    _bad("message-string", {"message": "hi", "done": False}, """a chunk whose 'message' is "hi", not an object"""),
    _bad("content-number", {"message": {"role": "assistant", "content": 5}, "done": False},
         "a chunk whose 'message.content' is 5, not a string"),
    _bad("content-object", {"message": {"role": "assistant", "content": {"a": 1}}, "done": False},
         """a chunk whose 'message.content' is {"a": 1}, not a string"""),
    _bad("done-string", {"message": {"role": "assistant", "content": "x"}, "done": "yes"},
         """a chunk whose 'done' is "yes", not true or false"""),
    *NOT_AN_OBJECT,
]

# Well-formed chunks that carry nothing: skipped, the reply goes on.
HARMLESS_CHAT = [
    {"choices": []},  # OpenAI's usage chunk, Azure's prompt-filter chunk
    {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 1}},
    {"choices": None},
    {"id": "x"},
    {"choices": [{"delta": None, "finish_reason": None}]},
    {"choices": [{"delta": {"role": "assistant", "content": None}, "finish_reason": None}]},
]
