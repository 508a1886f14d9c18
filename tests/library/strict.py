"""A strict recursive JSON diff: every key, every value, every type (True is not 1, 1 is not 1.0)."""

from __future__ import annotations

from typing import Any


def json_diff(want: Any, got: Any, path: str = "$") -> list[str]:
    """Every difference between two decoded JSON values, one line each (empty when they are identical)."""
    if type(want) is not type(got):
        return [f"{path}: {type(want).__name__} {want!r:.60} became {type(got).__name__} {got!r:.60}"]
    if isinstance(want, dict):
        out = [f"{path}.{k}: lost" for k in want if k not in got]
        out += [f"{path}.{k}: added ({got[k]!r:.60})" for k in got if k not in want]
        for key in want:
            if key in got:
                out += json_diff(want[key], got[key], f"{path}.{key}")
        return out
    if isinstance(want, list):
        if len(want) != len(got):
            return [f"{path}: {len(want)} items became {len(got)}"]
        pairs = enumerate(zip(want, got, strict=True))
        return [line for i, (a, b) in pairs for line in json_diff(a, b, f"{path}[{i}]")]
    return [] if want == got else [f"{path}: {want!r:.60} became {got!r:.60}"]

