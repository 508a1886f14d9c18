"""The field tables of the two lorebook formats: how each normalized entry field maps to World Info and to
card `character_book` source paths, and how source values are checked and coerced (worldfile.py uses them)."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any

from neuralrp.errors import InvalidInput
from neuralrp.library.safejson import type_name

MISSING = object()


def bad_value(label: str, src: str, wanted: str, value: Any) -> InvalidInput:
    """The error for a field of the wrong type."""
    return InvalidInput(f"{label}: field '{src}' must be {wanted}, got {type_name(value)}")


def as_int(value: Any) -> int | None:
    """An int from an int or an integral float, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def coerce(kind: str, value: Any, label: str, src: str) -> Any:
    """Validate one non-null source value and return its normalized form."""
    if kind == "strlist":
        if not isinstance(value, list):
            raise bad_value(label, src, "a list of strings", value)
        for item in value:
            if not isinstance(item, str):
                raise bad_value(label, src, "a list of strings", item)
        return list(value)
    if kind == "str":
        if not isinstance(value, str):
            raise bad_value(label, src, "a string", value)
        return value
    if kind in ("bool", "not_bool"):
        if not isinstance(value, bool) and as_int(value) not in (0, 1):
            raise bad_value(label, src, "true or false", value)
        return bool(value) if kind == "bool" else not bool(value)
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise bad_value(label, src, "a number", value)
        if not math.isfinite(value):
            raise InvalidInput(f"{label}: field '{src}' must be a finite number")
        return value
    if kind == "uid" and isinstance(value, str) and value:
        return int(value) if value.isdecimal() and len(value) < 19 else value
    number = as_int(value)
    if number is None:
        raise bad_value(label, src, "an integer", value)
    return number


def get_path(obj: dict[str, Any], path: str) -> Any:
    """Read a dotted path ('extensions.depth'); MISSING when absent."""
    head, _, rest = path.partition(".")
    if not rest:
        return obj.get(head, MISSING)
    inner = obj.get(head)
    return inner.get(rest, MISSING) if isinstance(inner, dict) else MISSING


def set_path(out: dict[str, Any], path: str, value: Any) -> None:
    """Write a dotted path, creating the `extensions` object when needed."""
    head, _, rest = path.partition(".")
    if not rest:
        out[head] = value
        return
    if not isinstance(out.get(head), dict):
        out[head] = {}
    out[head][rest] = value


@dataclass(frozen=True)
class Field:
    """How one normalized field maps to source path(s)."""

    norm: str
    paths: tuple[str, ...]
    kind: str
    default: Any

    def read(self, raw: dict[str, Any], uid_default: Any, label: str) -> Any:
        """The normalized value from a {path: source value} map (absent/null -> default)."""
        value = raw.get(self.paths[0])
        if value is None:
            return copy.deepcopy(uid_default if self.kind == "uid" else self.default)
        return coerce(self.kind, value, label, self.paths[0])

    def write(self, value: Any) -> dict[str, Any]:
        """The source values that express a normalized value."""
        return {self.paths[0]: (not value) if self.kind == "not_bool" else copy.deepcopy(value)}


class BookPosition(Field):
    """character_book position: `extensions.position` (ST enum), else 'before_char' -> 0, else 1."""

    def read(self, raw: dict[str, Any], uid_default: Any, label: str) -> Any:
        """ST's rule for the two position fields."""
        ext_pos = raw.get("extensions.position")
        if ext_pos is not None:
            return coerce("int", ext_pos, label, "extensions.position")
        text = raw.get("position")
        if text is not None and not isinstance(text, str):
            raise bad_value(label, "position", "'before_char' or 'after_char'", text)
        return 0 if text == "before_char" else 1

    def write(self, value: Any) -> dict[str, Any]:
        """Both fields, the way SillyTavern writes them."""
        return {"position": "before_char" if value == 0 else "after_char", "extensions.position": value}


def field_table(rows: list[tuple[str, str, str, Any]]) -> tuple[Field, ...]:
    """Field objects from (normalized name, source path, kind, default) rows."""
    return tuple(Field(norm, (path,), kind, default) for norm, path, kind, default in rows)


WI_FIELDS = field_table(
    [
        ("uid", "uid", "uid", None),
        ("keys", "key", "strlist", []),
        ("secondary_keys", "keysecondary", "strlist", []),
        ("comment", "comment", "str", ""),
        ("content", "content", "str", ""),
        ("constant", "constant", "bool", False),
        ("selective", "selective", "bool", True),
        ("selective_logic", "selectiveLogic", "int", 0),
        ("order", "order", "number", 100),
        ("position", "position", "int", 0),
        ("enabled", "disable", "not_bool", True),
        ("probability", "probability", "number", 100),
        ("use_probability", "useProbability", "bool", True),
        ("depth", "depth", "int", 4),
    ]
)
BOOK_FIELDS = (
    *field_table(
        [
            ("uid", "id", "uid", None),
            ("keys", "keys", "strlist", []),
            ("secondary_keys", "secondary_keys", "strlist", []),
            ("comment", "comment", "str", ""),
            ("content", "content", "str", ""),
            ("constant", "constant", "bool", False),
            ("selective", "selective", "bool", False),
            ("selective_logic", "extensions.selectiveLogic", "int", 0),
            ("order", "insertion_order", "number", 100),
            ("enabled", "enabled", "bool", True),
            ("probability", "extensions.probability", "number", 100),
            ("use_probability", "extensions.useProbability", "bool", True),
            ("depth", "extensions.depth", "int", 4),
        ]
    ),
    BookPosition("position", ("position", "extensions.position"), "int", 1),
)
WI_MODELLED = frozenset(p for f in WI_FIELDS for p in f.paths)
BOOK_TOP = frozenset(p for f in BOOK_FIELDS for p in f.paths if "." not in p) | {"extensions"}
BOOK_EXT = frozenset(p.split(".", 1)[1] for f in BOOK_FIELDS for p in f.paths if "." in p)
