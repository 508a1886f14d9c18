"""SillyTavern chat files (`.jsonl`): parse and export, bytes in and bytes out.

Line 1 is a header ({user_name, character_name, create_date, chat_metadata}) in solo chats and in
current group chats; old group chats have message lines only. Every field not modelled is kept, so
parse -> export gives equivalent JSON lines. Every bad input raises `InvalidInput`.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from neuralrp.errors import InvalidInput
from neuralrp.library.safejson import dump_json, load_json, type_name

MIB = 1024 * 1024
DEFAULT_MAX_CHAT = 100 * MIB
_HEADER_KEYS = ("user_name", "character_name", "chat_metadata")
_MODELLED = ("name", "is_user", "is_system", "send_date", "mes", "swipes", "swipe_id", "extra")
_HUMANIZED = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})@(\d{1,2})h(\d{1,2})m(\d{1,2})s(?:(\d{1,3})ms)?$")
_OLD_ST_FORMATS = ("%B %d, %Y %I:%M%p", "%B %d, %Y %I:%M %p", "%B %d, %Y %H:%M")


@dataclass
class ChatMessage:
    """One message line, normalized; `other` keeps every field that is not modelled."""

    name: str
    is_user: bool
    text: str  # `mes`: the shown swipe
    is_system: bool = False  # hidden/system message, never sent to the model
    timestamp: datetime | None = None  # parsed `send_date`, timezone-aware (UTC when unknown)
    send_date: str | int | float | None = None  # `send_date` exactly as found
    swipes: list[str] | None = None  # None when the line had no `swipes`
    swipe_id: int | None = None
    extra: dict[str, Any] | None = None  # ST's open `extra` bag, as found
    other: dict[str, Any] = field(default_factory=dict)  # swipe_info, force_avatar, original_avatar, ...
    key_order: tuple[str, ...] = ()  # field order of the source line, reused on export


@dataclass
class ParsedChat:
    """A parsed chat: the header line (None if the file has none) and the messages."""

    header: dict[str, Any] | None
    messages: list[ChatMessage]
    skipped_lines: list[int] = field(default_factory=list)  # 1-based lines that were not JSON objects

    @property
    def user_name(self) -> str | None:
        """The persona name in the header (may be the placeholder 'unused')."""
        value = (self.header or {}).get("user_name")
        return value if isinstance(value, str) else None

    @property
    def character_name(self) -> str | None:
        """The character name in the header (may be the placeholder 'unused')."""
        value = (self.header or {}).get("character_name")
        return value if isinstance(value, str) else None

    @property
    def chat_metadata(self) -> dict[str, Any]:
        """The header's open `chat_metadata` object ({} when absent)."""
        value = (self.header or {}).get("chat_metadata")
        return value if isinstance(value, dict) else {}

    @property
    def create_date(self) -> datetime | None:
        """The header's `create_date`, parsed."""
        return parse_send_date((self.header or {}).get("create_date"))

    @property
    def speakers(self) -> list[str]:
        """Names of the non-user speakers, in order of first appearance."""
        names = [m.name for m in self.messages if not m.is_user and not m.is_system]
        return list(dict.fromkeys(names))

    @property
    def is_group(self) -> bool:
        """True for group chats: several character speakers, or no header line (old ST groups)."""
        return self.header is None or len(self.speakers) > 1


# --- timestamps -------------------------------------------------------------------------------------


def _from_epoch(number: float) -> datetime | None:
    """Epoch milliseconds (or seconds, for small values) -> aware UTC datetime."""
    seconds = number / 1000 if abs(number) >= 1e11 else number
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _from_text(text: str) -> datetime | None:
    """ISO-8601, ST's humanized '2024-09-28@01h02m36s' or old ST 'September 28, 2024 1:02am'."""
    match = _HUMANIZED.match(text)
    try:
        if match:
            parts = [int(p) for p in match.groups(default="0")]
            year, month, day, hour, minute, second, millis = parts[:7]
            return datetime(year, month, day, hour, minute, second, millis * 1000, tzinfo=UTC)
        moment: datetime | None
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            moment = _from_old_format(text)
    except ValueError:
        return None
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _from_old_format(text: str) -> datetime | None:
    """Old SillyTavern message time stamps (local time of the writer; read as UTC)."""
    for fmt in _OLD_ST_FORMATS:
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            continue
    return None


def parse_send_date(value: Any) -> datetime | None:
    """A `send_date`/`create_date` value (epoch ms, ISO text, ST text) as aware UTC; None if unknown."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return _from_epoch(value) if value == value else None
    if not isinstance(value, str) or len(value) > 64:
        return None
    text = value.strip()
    if text.isdecimal() and len(text) < 17:
        return _from_epoch(int(text))
    return _from_text(text)


def format_send_date(moment: datetime) -> str:
    """ISO-8601 UTC with milliseconds and 'Z', as current SillyTavern writes `send_date`."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --- parsing ----------------------------------------------------------------------------------------


def _flag(obj: dict[str, Any], key: str, label: str) -> bool:
    """A boolean field (missing/null -> False; 0/1 accepted)."""
    value = obj.get(key)
    if value is None:
        return False
    if isinstance(value, bool) or (isinstance(value, int) and value in (0, 1)):
        return bool(value)
    raise InvalidInput(f"{label}: field '{key}' must be true or false, got {type_name(value)}")


def _text_of(value: Any, label: str, key: str) -> str:
    """A message text: a string, or Chub's {"message": "..."} object."""
    if isinstance(value, dict) and isinstance(value.get("message"), str):
        return str(value["message"])
    if not isinstance(value, str):
        raise InvalidInput(f"{label}: field '{key}' must be a string, got {type_name(value)}")
    return value


def _swipes(value: Any, label: str) -> list[str] | None:
    """The `swipes` list (strings, or Chub swipe objects flattened)."""
    if value is None:
        return None
    if not isinstance(value, list):
        raise InvalidInput(f"{label}: field 'swipes' must be a list of strings, got {type_name(value)}")
    return [_text_of(item, label, f"swipes[{i}]") for i, item in enumerate(value)]


def _swipe_id(value: Any, label: str) -> int | None:
    """The `swipe_id` index."""
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{label}: field 'swipe_id' must be an integer, got {type_name(value)}")
    return value


def _message(obj: dict[str, Any], label: str) -> ChatMessage:
    """Normalize one message line (its values are taken as they are: the line was just decoded)."""
    name = obj.get("name")
    if name is not None and not isinstance(name, str):
        raise InvalidInput(f"{label}: field 'name' must be a string, got {type_name(name)}")
    send_date = obj.get("send_date")
    if send_date is not None and (isinstance(send_date, bool) or not isinstance(send_date, str | int | float)):
        raise InvalidInput(f"{label}: field 'send_date' must be a string or a number, got {type_name(send_date)}")
    extra = obj.get("extra")
    if extra is not None and not isinstance(extra, dict):
        raise InvalidInput(f"{label}: field 'extra' must be an object, got {type_name(extra)}")
    mes = obj.get("mes")
    return ChatMessage(
        name=name or "",
        is_user=_flag(obj, "is_user", label),
        text="" if mes is None else _text_of(mes, label, "mes"),
        is_system=_flag(obj, "is_system", label),
        timestamp=parse_send_date(send_date),
        send_date=send_date,
        swipes=_swipes(obj.get("swipes"), label),
        swipe_id=_swipe_id(obj.get("swipe_id"), label),
        extra=extra,
        other={k: v for k, v in obj.items() if k not in _MODELLED},
        key_order=tuple(obj),
    )


def _check_header(obj: dict[str, Any]) -> dict[str, Any]:
    """Validate the header line's known fields."""
    for key in ("user_name", "character_name"):
        value = obj.get(key)
        if value is not None and not isinstance(value, str):
            raise InvalidInput(f"line 1: field '{key}' must be a string, got {type_name(value)}")
    meta = obj.get("chat_metadata")
    if meta is not None and not isinstance(meta, dict):
        raise InvalidInput(f"line 1: field 'chat_metadata' must be an object, got {type_name(meta)}")
    return obj


def _is_header(obj: dict[str, Any]) -> bool:
    """ST's rule: line 1 with user_name, character_name or chat_metadata and no `mes`."""
    return "mes" not in obj and any(key in obj for key in _HEADER_KEYS)


def _decode(data: bytes, max_size: int) -> str:
    """Chat bytes as text (UTF-8, optional BOM), size-checked."""
    if len(data) > max_size:
        raise InvalidInput(f"chat file is {len(data)} bytes, over the {max_size // MIB} MiB limit")
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as e:
        raise InvalidInput(f"chat file is not valid UTF-8 text (byte {e.start})") from e


def parse_chat(data: bytes, filename: str, *, max_size: int = DEFAULT_MAX_CHAT) -> ParsedChat:
    """Parse a SillyTavern `.jsonl` chat (solo or group, old or new header form)."""
    try:
        return _parse_lines(_decode(data, max_size))
    except InvalidInput as e:
        raise InvalidInput(f"{filename}: {e.message}" if filename else e.message) from e


def _parse_lines(text: str) -> ParsedChat:
    """Walk the lines: header candidate first, then messages; unreadable lines are skipped."""
    chat = ParsedChat(header=None, messages=[])
    first = True
    seen = 0
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            obj = load_json(line, f"line {number}")
        except InvalidInput:
            obj = None
        is_first, first = first, False
        if not isinstance(obj, dict):
            chat.skipped_lines.append(number)
            continue
        seen += 1
        if is_first and _is_header(obj):
            chat.header = _check_header(obj)
        else:
            chat.messages.append(_message(obj, f"line {number}"))
    if not seen:
        raise InvalidInput("chat file has no valid JSON lines")
    return chat


# --- export -----------------------------------------------------------------------------------------


def _modelled_values(msg: ChatMessage) -> dict[str, Any]:
    """The modelled fields to write (None = leave out)."""
    send_date: Any = msg.send_date
    if msg.timestamp is not None and parse_send_date(send_date) != msg.timestamp:
        send_date = format_send_date(msg.timestamp)
    elif msg.timestamp is None and parse_send_date(send_date) is not None:
        send_date = None
    present = set(msg.key_order)
    return {
        "name": msg.name,
        "is_user": bool(msg.is_user),
        "is_system": bool(msg.is_system) if (msg.is_system or "is_system" in present) else None,
        "send_date": send_date,
        "mes": msg.text,
        "swipes": None if msg.swipes is None else list(msg.swipes),
        "swipe_id": msg.swipe_id,
        "extra": copy.deepcopy(msg.extra),
    }


def message_to_line(msg: ChatMessage) -> dict[str, Any]:
    """One message as the JSON object SillyTavern stores (source field order kept)."""
    values = _modelled_values(msg)
    out: dict[str, Any] = {}
    for key in (*msg.key_order, *_MODELLED, *msg.other):
        if key in out:
            continue
        if key in values:
            if values[key] is not None or key in msg.key_order:
                out[key] = values[key]
        elif key in msg.other:
            out[key] = copy.deepcopy(msg.other[key])
    return out


def new_header(
    user_name: str,
    character_name: str,
    chat_metadata: dict[str, Any] | None = None,
    created: datetime | None = None,
) -> dict[str, Any]:
    """A header line both old and current SillyTavern read."""
    moment = (created or datetime.now(UTC)).astimezone(UTC)
    return {
        "user_name": user_name,
        "character_name": character_name,
        "create_date": moment.strftime("%Y-%m-%d@%Hh%Mm%Ss"),
        "chat_metadata": copy.deepcopy(chat_metadata or {}),
    }


def export_chat(chat: ParsedChat) -> bytes:
    """The chat as SillyTavern `.jsonl` bytes: one compact JSON object per line, no trailing newline."""
    lines = []
    if chat.header is not None:
        lines.append(dump_json(chat.header, "chat header"))
    for index, msg in enumerate(chat.messages):
        lines.append(dump_json(message_to_line(msg), f"chat message {index}"))
    return "\n".join(lines).encode("utf-8")
