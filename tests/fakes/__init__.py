"""Test doubles: fake LLM and A1111 servers, a live uvicorn runner and SSE helpers."""

from .a1111_png import make_png, parse_infotext, png_text
from .base import Fault, RecordedRequest
from .fake_a1111 import IMG2IMG_PATH, TXT2IMG_PATH, VARIANTS, FakeA1111
from .fake_llm import FakeLLM
from .live import LiveServer
from .llm_shapes import (
    CHAT_PATH,
    COMPLETIONS_PATH,
    FLAVOURS,
    NATIVE_CHAT_PATH,
    NATIVE_GENERATE_PATH,
    error_body,
    native_error_body,
    overflow_body,
)
from .llm_tokens import count_tokens, fake_token_ids, fake_tokens, message_text, prompt_tokens, split_reply
from .sse import data_payloads, json_chunks, sse_fields, sse_lines

__all__ = [
    "CHAT_PATH",
    "COMPLETIONS_PATH",
    "IMG2IMG_PATH",
    "TXT2IMG_PATH",
    "FLAVOURS",
    "NATIVE_CHAT_PATH",
    "NATIVE_GENERATE_PATH",
    "VARIANTS",
    "FakeA1111",
    "FakeLLM",
    "Fault",
    "LiveServer",
    "RecordedRequest",
    "count_tokens",
    "message_text",
    "native_error_body",
    "prompt_tokens",
    "data_payloads",
    "error_body",
    "fake_token_ids",
    "fake_tokens",
    "json_chunks",
    "make_png",
    "overflow_body",
    "parse_infotext",
    "png_text",
    "split_reply",
    "sse_fields",
    "sse_lines",
]
