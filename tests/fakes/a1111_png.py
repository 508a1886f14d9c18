"""PNG and infotext helpers for the fake A1111: solid-colour PNGs with a `parameters` text chunk, reading
text chunks back, decoding base64 images, and building/parsing A1111 infotexts.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import re
from typing import Any

from PIL import Image, UnidentifiedImageError
from PIL.PngImagePlugin import PngInfo

_PARAM_RE = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')


def make_png(width: int, height: int, seed: int, parameters: str | None = None, max_side: int = 1024) -> bytes:
    """A solid-colour PNG (colour from `seed`) with an optional `parameters` text chunk."""
    scale = min(1.0, max_side / max(width, height, 1))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    colour = ((seed * 67) % 256, (seed * 131) % 256, (seed * 29) % 256)
    info = PngInfo()
    if parameters is not None:
        info.add_text("parameters", parameters)
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "PNG", pnginfo=info)
    return buffer.getvalue()


def png_text(data: bytes) -> dict[str, str]:
    """The text chunks (tEXt/iTXt/zTXt) of a PNG as a dict."""
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return {k: v for k, v in image.info.items() if isinstance(v, str)}


def decode_image(value: Any) -> bytes:
    """Decode a base64 image (optionally a data: URL); ValueError when it is not an image."""
    if not isinstance(value, str):
        raise ValueError("not a string")
    if value.startswith("data:"):
        value = value.partition(",")[2]
    try:
        data = base64.b64decode(value, validate=True)
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
    except (binascii.Error, UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ValueError("invalid image") from exc
    return data


def _quote(value: Any) -> str:
    """Quote an infotext value the way A1111 does (JSON string when it has `,` `:` or a newline)."""
    text = str(value)
    if "," not in text and ":" not in text and "\n" not in text and '"' not in text:
        return text
    return json.dumps(text, ensure_ascii=False)


def build_infotext(prompt: str, negative: str, pairs: dict[str, Any]) -> str:
    """Assemble an A1111 infotext: prompt, optional negative prompt, then `Key: value` pairs."""
    lines = [prompt]
    if negative:
        lines.append(f"Negative prompt: {negative}")
    lines.append(", ".join(f"{k}: {_quote(v)}" for k, v in pairs.items() if v is not None))
    return "\n".join(lines)


def parse_infotext(text: str) -> dict[str, Any]:
    """Parse an infotext into `Prompt`, `Negative prompt` and the key/value pairs (Size split in two)."""
    lines = text.strip().split("\n")
    params_line = lines.pop() if lines and len(_PARAM_RE.findall(lines[-1])) >= 3 else ""
    prompt, negative, in_negative = [], [], False
    for line in lines:
        if line.startswith("Negative prompt:"):
            in_negative, line = True, line[len("Negative prompt:"):].strip()
        (negative if in_negative else prompt).append(line)
    result: dict[str, Any] = {"Prompt": "\n".join(prompt), "Negative prompt": "\n".join(negative)}
    for key, raw in _PARAM_RE.findall(params_line):
        value = json.loads(raw) if raw.startswith('"') else raw
        result[key] = _number(value)
    if isinstance(result.get("Size"), str) and "x" in result["Size"]:
        width, _, height = result["Size"].partition("x")
        result["Size-1"], result["Size-2"] = _number(width), _number(height)
    return result


def _number(value: Any) -> Any:
    """Turn numeric strings into int/float, leave anything else alone."""
    if not isinstance(value, str):
        return value
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            continue
    return value
