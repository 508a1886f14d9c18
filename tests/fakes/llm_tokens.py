"""Fake tokenisation for the fake LLM: fake tokens and ids, reply pieces, prompt token counts.

A fake token is a run of word characters or a single punctuation mark.  A reply is split into one piece per
fake token (leading whitespace kept), so the pieces join back to the reply; one piece is one stream chunk.
"""

from __future__ import annotations

import re
import zlib
from typing import Any

_TOKEN_RE = re.compile(r"\w+|[^\w\s]")
_PIECE_RE = re.compile(r"\s*(?:\w+|[^\w\s])")


def fake_tokens(text: str) -> list[str]:
    """Split text into fake tokens: runs of word characters and single punctuation marks."""
    return _TOKEN_RE.findall(text)


def count_tokens(text: str) -> int:
    """Count fake tokens in text."""
    return len(fake_tokens(text))


def fake_token_ids(text: str, *, bos: bool = False) -> list[int]:
    """Deterministic fake token ids (crc32-based), with id 1 prepended when `bos` is true."""
    ids = [zlib.crc32(tok.encode()) % 30000 + 100 for tok in fake_tokens(text)]
    return ([1] if bos else []) + ids


def split_reply(text: str) -> list[str]:
    """Split a reply into stream pieces, one per fake token, so that the pieces join back to `text`."""
    pieces = _PIECE_RE.findall(text)
    rest = text[len("".join(pieces)) :]
    if pieces:
        pieces[-1] += rest
    elif rest:
        pieces = [rest]
    return pieces


def message_text(content: Any) -> str:
    """Text of a chat message `content` (a string or a list of content parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text", "") for p in content if isinstance(p, dict)]
        return "\n".join(p for p in parts if isinstance(p, str))
    return ""


def prompt_tokens(body: dict[str, Any]) -> int:
    """Fake prompt token count of a chat (`messages`) or completion (`prompt`) request body."""
    messages = body.get("messages")
    if isinstance(messages, list):
        return sum(count_tokens(message_text(m.get("content"))) for m in messages if isinstance(m, dict))
    prompt = body.get("prompt")
    if isinstance(prompt, list):
        prompt = "\n".join(str(p) for p in prompt)
    return count_tokens(prompt) if isinstance(prompt, str) else 0
