"""Performance presets: with a large chat context (the LLM holds much VRAM) images get fewer steps and pixels."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from neuralrp.chats import store
from neuralrp.config import ImageSettings
from neuralrp.db.connection import Connection

SIDE_STEP = 64
MIN_SIDE = 256


@dataclass(frozen=True)
class Preset:
    """Upper limits for one card size."""

    name: str
    steps: int
    max_pixels: int


PRESETS: dict[int, Preset] = {
    8: Preset("large-context-8gb", 15, 384 * 384),
    12: Preset("large-context-12gb", 18, 448 * 448),
    16: Preset("large-context-16gb", 20, 512 * 512),
}


def chat_context_tokens(conn: Connection, chat_id: int | None) -> int:
    """Tokens of the chat's live messages (cached counts; about 4 characters per token where none is cached)."""
    return 0 if chat_id is None else store.live_token_estimate(conn, chat_id)


def pick_preset(settings: ImageSettings, context_tokens: int, *, skip: bool = False) -> Preset | None:
    """The preset to apply: only when presets are on, not skipped, and the context is above the threshold."""
    if skip or not settings.presets_enabled or context_tokens <= settings.large_context_tokens:
        return None
    return PRESETS[settings.vram_gb]


def _fit(width: int, height: int, max_pixels: int) -> tuple[int, int]:
    if width * height <= max_pixels:
        return width, height
    scale = math.sqrt(max_pixels / (width * height))
    return (max(MIN_SIDE, int(width * scale) // SIDE_STEP * SIDE_STEP),
            max(MIN_SIDE, int(height * scale) // SIDE_STEP * SIDE_STEP))


def apply_preset(payload: dict[str, Any], preset: Preset) -> dict[str, Any]:
    """The payload with steps and size lowered to the preset's limits (never raised; aspect kept)."""
    out = dict(payload)
    out["steps"] = min(int(payload.get("steps") or preset.steps), preset.steps)
    out["width"], out["height"] = _fit(int(payload["width"]), int(payload["height"]), preset.max_pixels)
    return out
