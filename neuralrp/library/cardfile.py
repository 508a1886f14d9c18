"""Character card files (SillyTavern ecosystem): parse and export, bytes in and bytes out.

Supported inputs: PNG with a `chara` (V1/V2, sometimes V3) or `ccv3` (V3) text chunk, JSON V1/V2/V3,
and legacy Pygmalion/ooba JSON. Every bad input raises `InvalidInput` naming the file and the problem.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import io
import logging
import struct
import warnings
from dataclasses import dataclass, field
from typing import Any

from PIL import Image, ImageDraw

from neuralrp.errors import InvalidInput
from neuralrp.library import pngchunks
from neuralrp.library.safejson import MAX_JSON_DEPTH, check_json_tree, dump_json, load_json, type_name

log = logging.getLogger(__name__)

V1_FIELDS = ("name", "description", "personality", "scenario", "first_mes", "mes_example")
V2_FIELDS = (
    *V1_FIELDS,
    "creator_notes",
    "system_prompt",
    "post_history_instructions",
    "alternate_greetings",
    "tags",
    "creator",
    "character_version",
    "extensions",
    "character_book",
)
LIST_FIELDS = frozenset({"alternate_greetings", "tags"})
SPEC_NAMES = {"v2": ("chara_card_v2", "2.0"), "v3": ("chara_card_v3", "3.0")}
PYGMALION_MAP = {
    "char_name": "name",
    "char_persona": "description",
    "world_scenario": "scenario",
    "char_greeting": "first_mes",
    "example_dialogue": "mes_example",
}
# Keys of V1 JSON that feed normalized fields (the rest stays in `extra_top`).
_V1_CONSUMED = frozenset({*V2_FIELDS, "creatorcomment"})
# Top-level keys of a V2/V3 card that are only a mirror of `data` (rewritten on export), in SillyTavern's order.
MIRROR_ORDER = (*V1_FIELDS, "creatorcomment", "tags")
_MIRROR_KEYS = frozenset(MIRROR_ORDER)
# What SillyTavern fills in when it upgrades a V1 or Pygmalion card to V2 (characters.js, charaFormatData).
ST_UPGRADE_EXTENSIONS: dict[str, Any] = {
    "talkativeness": 0.5, "fav": False, "world": "", "depth_prompt": {"prompt": "", "depth": 4, "role": "system"},
}


@dataclass
class ParsedCard:
    """A parsed character card: the original JSON plus a normalized V2-shaped view."""

    spec: str  # "v1" | "v2" | "v3" | "pygmalion"
    data: dict[str, Any]  # normalized V2 `data`: exactly the keys of V2_FIELDS
    extra_data: dict[str, Any] = field(default_factory=dict)  # other data-level keys (V3 fields, vendor keys)
    extra_top: dict[str, Any] = field(default_factory=dict)  # top-level keys that are not spec/data/mirror
    raw: dict[str, Any] = field(default_factory=dict)  # the card JSON object exactly as found
    avatar_png: bytes | None = None  # the PNG without its card chunks, if the source was a PNG
    source: str = "json"  # "json" | "png:chara" | "png:ccv3" | "object"
    filename: str = ""
    spec_version: str | None = None
    mirror: tuple[str, ...] | None = None  # top-level mirror keys the source had (None: write them all)

    @property
    def name(self) -> str:
        """The character's name."""
        return str(self.data["name"])

    @property
    def character_book(self) -> dict[str, Any] | None:
        """The embedded lorebook, or None."""
        return self.data["character_book"]

    def to_card(self, spec: str | None = None) -> dict[str, Any]:
        """A full card object ('v2' or 'v3'; default keeps V3 as V3) with ST's V1 top-level mirror."""
        return _build_card(self, spec or ("v3" if self.spec == "v3" else "v2"))


# --- validation of single fields ------------------------------------------------------------------


def _as_string(value: Any, path: str, fld: str) -> str:
    """A string field: None becomes '', a number in character_version becomes text."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if fld == "character_version" and isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise InvalidInput(f"field '{path}' must be a string, got {type_name(value)}")


def _as_string_list(value: Any, path: str) -> list[str]:
    """A list-of-strings field: None becomes []."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidInput(f"field '{path}' must be a list of strings, got {type_name(value)}")
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise InvalidInput(f"field '{path}[{i}]' must be a string, got {type_name(item)}")
    return list(value)


def _as_book(value: Any, path: str) -> dict[str, Any] | None:
    """A character_book: None, or an object whose `entries` is a list of objects."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidInput(f"field '{path}' must be an object, got {type_name(value)}")
    entries = value.get("entries")
    if not isinstance(entries, list):
        raise InvalidInput(f"field '{path}.entries' must be a list, got {type_name(entries)}")
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise InvalidInput(f"field '{path}.entries[{i}]' must be an object, got {type_name(entry)}")
    return value


def _field_value(fld: str, value: Any, path: str) -> Any:
    """Validate and normalize one V2 data field."""
    if fld in LIST_FIELDS:
        return _as_string_list(value, path)
    if fld == "extensions":
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise InvalidInput(f"field '{path}' must be an object, got {type_name(value)}")
        return value
    if fld == "character_book":
        return _as_book(value, path)
    return _as_string(value, path, fld)


# --- normalization per spec -----------------------------------------------------------------------


def _detect_spec(obj: dict[str, Any]) -> str:
    """Which card format a JSON object is: v1, v2, v3 or pygmalion."""
    spec = obj.get("spec")
    if spec == "chara_card_v2":
        return "v2"
    if spec == "chara_card_v3":
        return "v3"
    if spec == "lorebook_v3":
        raise InvalidInput("file is a lorebook (spec 'lorebook_v3'), not a character card")
    if spec is not None:
        if isinstance(spec, str):
            raise InvalidInput(f"unsupported card spec '{spec[:80]}'")
        raise InvalidInput(f"field 'spec' must be a string, got {type_name(spec)}")
    if "name" not in obj and "char_name" in obj:
        return "pygmalion"
    if "name" in obj:
        return "v1"
    if isinstance(obj.get("data"), dict):
        return "v2"
    raise InvalidInput("JSON is not a character card (no 'spec', 'name' or 'char_name' field)")


def _normalize_v2(obj: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """V2/V3: read `data` (falling back to the top-level V1 mirror); return data, extra_data, extra_top."""
    inner = obj.get("data")
    if not isinstance(inner, dict):
        raise InvalidInput(f"field 'data' must be an object, got {type_name(inner)}")
    data: dict[str, Any] = {}
    for fld in V2_FIELDS:
        value = inner.get(fld)
        if value is None and fld in V1_FIELDS:
            value = obj.get(fld)
            path = fld
        else:
            path = f"data.{fld}"
        data[fld] = _field_value(fld, value, path)
    extra_data = {k: v for k, v in inner.items() if k not in V2_FIELDS}
    skip = _MIRROR_KEYS | {"spec", "spec_version", "data"}
    extra_top = {k: v for k, v in obj.items() if k not in skip}
    return data, extra_data, extra_top


def _normalize_v1(obj: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """V1 (flat): fields at the top level, plus the extras ST's importer also reads."""
    data: dict[str, Any] = {}
    for fld in V2_FIELDS:
        value = obj.get(fld)
        if fld == "creator_notes" and value is None:
            value = obj.get("creatorcomment")
        data[fld] = _field_value(fld, value, fld)
    extra_top = {k: v for k, v in obj.items() if k not in _V1_CONSUMED}
    return _upgraded(data, obj, extra_top)


def _upgraded(data: dict[str, Any], obj: dict[str, Any],
              extra_top: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """A V1/Pygmalion card's data with the defaults SillyTavern fills when it upgrades one to V2.

    `data.extensions` gets talkativeness (the card's own, else 0.5), fav, world and depth_prompt; `data` gets
    group_only_greetings; the top level keeps ST's `avatar`, `creator`, `talkativeness` and `fav` copies.
    Values the card has are never replaced. Nothing here depends on the clock, so a re-import finds the same card.
    """
    extensions = copy.deepcopy(ST_UPGRADE_EXTENSIONS)
    extensions.update({k: obj[k] for k in ("talkativeness", "fav") if obj.get(k) is not None})
    extensions.update(data["extensions"])
    data["extensions"] = extensions
    copies = {"creator": data["creator"], "talkativeness": extensions["talkativeness"], "fav": extensions["fav"]}
    extra_top = {"avatar": "none", **extra_top, **copies}
    return data, {"group_only_greetings": []}, extra_top


def _normalize_pygmalion(obj: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Legacy Pygmalion/ooba JSON: char_name, char_persona, world_scenario, char_greeting, example_dialogue."""
    data = {fld: _field_value(fld, obj.get(fld) if fld in _PYGMALION_EXTRAS else None, fld) for fld in V2_FIELDS}
    for src, fld in PYGMALION_MAP.items():
        data[fld] = _field_value(fld, obj.get(src), src)
    notes = obj.get("creatorcomment", obj.get("creator_notes"))
    data["creator_notes"] = _field_value("creator_notes", notes, "creatorcomment")
    consumed = {*PYGMALION_MAP, *_PYGMALION_EXTRAS, "creatorcomment", "creator_notes"}
    extra_top = {k: v for k, v in obj.items() if k not in consumed}
    return _upgraded(data, obj, extra_top)


_PYGMALION_EXTRAS = frozenset({"creator", "tags"})  # keys SillyTavern's Pygmalion import also reads
_NORMALIZERS = {"v1": _normalize_v1, "v2": _normalize_v2, "v3": _normalize_v2, "pygmalion": _normalize_pygmalion}


def _with_file(filename: str, message: str) -> str:
    """Prefix an error message with the file name, once."""
    if not filename or message.startswith(f"{filename}: "):
        return message
    return f"{filename}: {message}"


def card_from_object(
    obj: Any, *, filename: str = "", avatar_png: bytes | None = None, source: str = "object"
) -> ParsedCard:
    """Validate and normalize an already-decoded card JSON object."""
    try:
        if not isinstance(obj, dict):
            raise InvalidInput(f"card JSON must be an object, got {type_name(obj)}")
        check_json_tree(obj, "card JSON", MAX_JSON_DEPTH)
        spec = _detect_spec(obj)
        data, extra_data, extra_top = copy.deepcopy(_NORMALIZERS[spec](obj))
        if not data["name"].strip():
            raise InvalidInput("field 'data.name' is empty: the card has no name")
    except InvalidInput as e:
        raise InvalidInput(_with_file(filename, e.message)) from e
    version = obj.get("spec_version") if spec in ("v2", "v3") else None
    mirror = tuple(k for k in MIRROR_ORDER if k in obj) if spec in ("v2", "v3") else ()
    return ParsedCard(
        spec=spec,
        data=data,
        extra_data=extra_data,
        extra_top=extra_top,
        raw=obj,
        avatar_png=avatar_png,
        source=source,
        filename=filename,
        spec_version=None if version is None else str(version),
        mirror=mirror or None,
    )


# --- parsing files --------------------------------------------------------------------------------


def _chunk_json(text: str, keyword: str) -> Any:
    """Decode a card chunk's text: base64 of UTF-8 JSON (plain JSON is tolerated)."""
    stripped = text.strip()
    if stripped.startswith("{"):
        return load_json(stripped, f"card JSON in '{keyword}' chunk")
    compact = "".join(stripped.split())
    if not compact:
        raise InvalidInput(f"'{keyword}' chunk is empty")
    try:
        raw = base64.b64decode(compact + "=" * (-len(compact) % 4), validate=True)
    except ValueError as e:
        raise InvalidInput(f"'{keyword}' chunk is not valid base64") from e
    return load_json(raw, f"card JSON in '{keyword}' chunk")


def _card_from_png(data: bytes, filename: str, max_chunk: int, max_total: int) -> ParsedCard:
    """Find the card chunk (ccv3 first, then chara) and parse it."""
    chunks = pngchunks.read_text_chunks(
        data, keywords=("chara", "ccv3"), max_chunk_size=max_chunk, max_total_size=max_total
    )
    ordered = [c for c in chunks if c.keyword.lower() == "ccv3"][:1]
    ordered += [c for c in chunks if c.keyword.lower() == "chara"][:1]
    if not ordered:
        raise InvalidInput("PNG has no 'chara' or 'ccv3' text chunk")
    avatar = pngchunks.strip_text_chunks(data, ("chara", "ccv3"), max_chunk_size=max_chunk, max_total_size=max_total)
    first_error: InvalidInput | None = None
    for chunk in ordered:
        keyword = chunk.keyword.lower()
        try:
            obj = _chunk_json(chunk.text, keyword)
            return card_from_object(obj, filename=filename, avatar_png=avatar, source=f"png:{keyword}")
        except InvalidInput as e:
            first_error = first_error or e
            if chunk is not ordered[-1]:
                log.warning("%s: %s chunk unusable, trying 'chara': %s", filename, keyword, e.message)
    raise first_error or InvalidInput("PNG has no usable card chunk")


def _sniff_unsupported(data: bytes) -> str | None:
    """A clear message for well-known non-card file types, else None."""
    if data.startswith(b"PK\x03\x04"):
        return "CHARX/zip cards are not supported; export the card as PNG or JSON"
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG images carry no card data; use a PNG or JSON card"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WebP cards are not supported; use a PNG or JSON card"
    return None


def parse_card(
    data: bytes,
    filename: str,
    *,
    max_chunk_size: int = pngchunks.DEFAULT_MAX_CHUNK,
    max_total_size: int = pngchunks.DEFAULT_MAX_TOTAL,
) -> ParsedCard:
    """Parse a character card file (PNG or JSON) given as bytes."""
    try:
        if not data:
            raise InvalidInput("file is empty")
        if data.startswith(pngchunks.PNG_SIGNATURE):
            return _card_from_png(data, filename, max_chunk_size, max_total_size)
        unsupported = _sniff_unsupported(data)
        if unsupported:
            raise InvalidInput(unsupported)
        if not data.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{"):
            raise InvalidInput("file is neither a PNG nor a JSON character card")
        if len(data) > max_total_size:
            limit = pngchunks.size_label(max_total_size)
            raise InvalidInput(f"card JSON is {len(data)} bytes, over the {limit} limit")
        obj = load_json(data, "card JSON")
        return card_from_object(obj, filename=filename, source="json")
    except InvalidInput as e:
        raise InvalidInput(_with_file(filename, e.message)) from e


# --- export ---------------------------------------------------------------------------------------


def _build_card(card: ParsedCard, spec: str) -> dict[str, Any]:
    """Assemble a V2/V3 card object with SillyTavern's V1 top-level mirror (values are not validated)."""
    if spec not in SPEC_NAMES:
        raise InvalidInput(f"cannot export card spec '{spec}' (use 'v2' or 'v3')")
    for label, part in (("data", card.data), ("extra_data", card.extra_data), ("extra_top", card.extra_top)):
        if not isinstance(part, dict):
            raise InvalidInput(f"card {label} must be an object, got {type_name(part)}")
    data = card.data
    mirror = {fld: data.get(fld) for fld in V1_FIELDS}
    mirror.update(creatorcomment=data.get("creator_notes"), tags=data.get("tags"))
    wanted = MIRROR_ORDER if card.mirror is None else card.mirror
    top: dict[str, Any] = {key: mirror[key] for key in MIRROR_ORDER if key in wanted}
    top.update(card.extra_top)
    for key, value in _top_copies(data).items():  # ST's top-level copies follow `data` where the card has them
        if key in top or (card.mirror is None and key != "creator"):
            top[key] = value
    top["spec"], top["spec_version"] = SPEC_NAMES[spec]
    inner = {fld: data.get(fld) for fld in V2_FIELDS if not (fld == "character_book" and data.get(fld) is None)}
    inner.update(card.extra_data)
    top["data"] = inner
    return copy.deepcopy(top)


def _top_copies(data: dict[str, Any]) -> dict[str, Any]:
    """Top-level copies SillyTavern keeps of data values: talkativeness, fav (from extensions) and creator."""
    ext = data.get("extensions")
    copies = {k: ext[k] for k in ("talkativeness", "fav") if k in ext} if isinstance(ext, dict) else {}
    if "creator" in data:
        copies["creator"] = data["creator"]
    return copies


def _as_parsed(card: dict[str, Any] | ParsedCard) -> ParsedCard:
    """Validate a ParsedCard (its fields may have been edited) or any supported card object."""
    if isinstance(card, ParsedCard):
        return card_from_object(card.to_card(), filename=card.filename, source=card.source)
    return card_from_object(card)


def export_card_json(card: dict[str, Any] | ParsedCard, *, spec: str | None = None) -> bytes:
    """A card (any supported shape) as SillyTavern-readable JSON bytes (V2, or V3 if spec='v3')."""
    obj = _as_parsed(card).to_card(spec)
    return dump_json(obj, "card", indent=4).encode("utf-8")


def _chunk_text(obj: dict[str, Any]) -> str:
    """Base64 of the compact UTF-8 JSON, as written into `chara`/`ccv3`."""
    return base64.b64encode(dump_json(obj, "card").encode("utf-8")).decode("ascii")


def export_card_png(
    card: dict[str, Any] | ParsedCard,
    avatar_png: bytes | None,
    *,
    max_chunk_size: int = pngchunks.DEFAULT_MAX_CHUNK,
    max_total_size: int = pngchunks.DEFAULT_MAX_TOTAL,
) -> bytes:
    """A PNG card with `chara` (V2 + V1 mirror) and `ccv3` (V3) chunks; a placeholder if no avatar."""
    parsed = _as_parsed(card)
    image = placeholder_avatar(parsed.name) if avatar_png is None else _avatar_to_png(avatar_png)
    texts = [("chara", _chunk_text(parsed.to_card("v2"))), ("ccv3", _chunk_text(parsed.to_card("v3")))]
    return pngchunks.write_text_chunks(
        image, texts, remove=("chara", "ccv3"), max_chunk_size=max_chunk_size, max_total_size=max_total_size
    )


_PILLOW_ERRORS = (
    OSError,
    ValueError,
    SyntaxError,
    EOFError,
    IndexError,
    TypeError,
    struct.error,
    Image.DecompressionBombError,
    Image.DecompressionBombWarning,
)


def _avatar_to_png(image_bytes: bytes) -> bytes:
    """Keep a PNG as is; convert any other image Pillow reads to PNG."""
    if image_bytes.startswith(pngchunks.PNG_SIGNATURE):
        return image_bytes
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(image_bytes)) as img:
                img.load()
                converted = img.convert("RGBA" if "A" in img.getbands() else "RGB")
        out = io.BytesIO()
        converted.save(out, format="PNG")
    except _PILLOW_ERRORS as e:
        raise InvalidInput(f"avatar image cannot be read: {e}") from e
    return out.getvalue()


def placeholder_avatar(name: str, size: tuple[int, int] = (400, 600)) -> bytes:
    """A simple generated PNG (colour picked from the name, plain silhouette) for cards without art."""
    digest = hashlib.sha256(name.encode("utf-8", "replace")).digest()
    back = (40 + digest[0] % 100, 40 + digest[1] % 100, 60 + digest[2] % 100)
    fore = tuple(min(255, c + 70) for c in back)
    width, height = size
    img = Image.new("RGB", size, back)
    draw = ImageDraw.Draw(img)
    head = width // 5
    cx, cy = width // 2, height * 2 // 5
    draw.ellipse((cx - head, cy - head, cx + head, cy + head), fill=fore)
    draw.ellipse((cx - 2 * head, cy + head + 10, cx + 2 * head, height + 2 * head), fill=fore)
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()
