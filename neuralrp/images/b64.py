"""Base64 for pictures, in steps: one call over 20 MB holds the GIL for tens of ms, a step for a few."""

from __future__ import annotations

import binascii

TEXT_STEP = 1 << 20  # base64 characters decoded per step (a multiple of 4)
DATA_STEP = 3 << 18  # bytes encoded per step (a multiple of 3: 768 KiB)


def decode(text: str) -> bytes:
    """Strict base64 (alphabet and padding checked) to bytes; binascii.Error (a ValueError) when invalid."""
    return b"".join([binascii.a2b_base64(text[i:i + TEXT_STEP], strict_mode=True)
                     for i in range(0, len(text), TEXT_STEP)])


def encode(data: bytes) -> str:
    """Base64 text of `data`, without newlines."""
    return "".join([binascii.b2a_base64(data[i:i + DATA_STEP], newline=False).decode("ascii")
                    for i in range(0, len(data), DATA_STEP)])
