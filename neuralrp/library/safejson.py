"""Strict JSON for files from the wild: UTF-8 only, no NaN or Infinity, no lone surrogates, nesting limited;
every refusal is an `InvalidInput` naming what was read. Encoding writes like SillyTavern (compact UTF-8)."""

from __future__ import annotations

import json
import math
import re
from typing import Any

from neuralrp.errors import InvalidInput

MAX_JSON_DEPTH = 64
_ESCAPED_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_TYPE_NAMES = {dict: "object", list: "list", str: "string", bool: "bool", int: "int", float: "float"}


def type_name(value: object) -> str:
    """JSON-flavoured type name of a Python value."""
    if value is None:
        return "null"
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def check_json_tree(value: Any, what: str, max_depth: int) -> None:
    """Refuse nesting deeper than max_depth, lone surrogates in strings, and NaN/Infinity."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: list[Any] = [*item.keys(), *item.values()]
        elif isinstance(item, list):
            children = item
        else:
            if isinstance(item, str) and _SURROGATE.search(item):
                raise InvalidInput(f"{what} contains an invalid unicode escape (a lone surrogate)")
            if isinstance(item, float) and not math.isfinite(item):
                raise InvalidInput(f"{what} contains NaN or Infinity, which JSON does not allow")
            continue
        if depth > max_depth:
            raise InvalidInput(f"{what} is nested more than {max_depth} levels deep")
        stack.extend((child, depth + 1) for child in children)


def _refuse_constant(name: str) -> Any:
    """json.loads hook: NaN and Infinity are not JSON."""
    raise ValueError(f"{name} is not allowed in JSON")


_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)


def load_json(data: bytes | str, what: str = "JSON", *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Decode UTF-8 JSON strictly (no NaN, depth-limited); raise InvalidInput naming `what`."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise InvalidInput(f"{what} is not valid UTF-8 text (byte {e.start})") from e
    data = data.removeprefix("\ufeff")
    try:
        value = _DECODER.decode(data)
    except json.JSONDecodeError as e:
        raise InvalidInput(f"{what} is invalid: {e.msg} at line {e.lineno} column {e.colno}") from e
    except RecursionError as e:
        raise InvalidInput(f"{what} is nested more than {max_depth} levels deep") from e
    except ValueError as e:
        raise InvalidInput(f"{what} is invalid: {e}") from e
    if not _surely_fine(data, max_depth):
        check_json_tree(value, what, max_depth)
    return value


def _surely_fine(text: str, max_depth: int) -> bool:
    """True when JSON text cannot nest past max_depth (too few brackets) nor hold an escaped lone surrogate.

    A quick look over the text at C speed; the full tree walk runs only when this cannot tell (big chats have
    thousands of lines, and walking each one's tree was most of their parse time).
    """
    return text.count("{") + text.count("[") <= max_depth and not _ESCAPED_SURROGATE.search(text)


def dump_json(value: Any, what: str = "JSON", *, indent: int | None = None) -> str:
    """Encode JSON like SillyTavern (UTF-8 text, compact unless indent); InvalidInput if impossible."""
    separators = (",", ":") if indent is None else (",", ": ")
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False, indent=indent, separators=separators)
    except (TypeError, ValueError, RecursionError) as e:
        raise InvalidInput(f"{what} cannot be written as JSON: {e}") from e
    if _SURROGATE.search(text):
        raise InvalidInput(f"{what} contains a lone surrogate and cannot be written as UTF-8")
    return text
