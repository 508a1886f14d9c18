"""PList ("property list") text: `[Name: trait, trait; Appearance: a, b; Likes: c]`, formatted and checked."""

from __future__ import annotations

import re

_GROUP = re.compile(r"\[([^\[\]]*)\]")
_LABEL = re.compile(r"^[^\s:;,\[\]][^:;\[\]]{0,60}$")


def format_plist(name: str, sections: dict[str, list[str]]) -> str:
    """One bracketed PList line: the first section is labelled with the name, the rest with their own label."""
    parts = []
    for index, (label, items) in enumerate(sections.items()):
        values = ", ".join(i.strip() for i in items if i.strip())
        if values:
            parts.append(f"{name if index == 0 else label}: {values}")
    return f"[{'; '.join(parts)}]" if parts else ""


def normalize_plist(text: str) -> str:
    """Trim each line, drop blank lines and collapse runs of spaces."""
    lines = (" ".join(line.split()) for line in text.strip().splitlines())
    return "\n".join(line for line in lines if line)


def _segment_problem(segment: str, where: str) -> str | None:
    """Why one `Label: a, b` segment is not PList, or None."""
    label, sep, values = segment.partition(":")
    if not sep:
        return f"{where} has a part without 'Label:' ('{segment.strip()[:40]}')"
    if not _LABEL.match(label.strip()):
        return f"{where} has an empty or odd label ('{label.strip()[:40]}')"
    items = [v.strip() for v in values.split(",")]
    if not any(items):
        return f"{where} has no values after '{label.strip()}:'"
    return None


def plist_problem(text: str) -> str | None:
    """Why `text` is not PList (a sentence), or None when it is one or more `[Label: a, b; Label: c]` lines."""
    body = normalize_plist(text)
    if not body:
        return "it is empty"
    for number, line in enumerate(body.splitlines(), start=1):
        where = f"line {number}"
        if not (line.startswith("[") and line.endswith("]")):
            return f"{where} is not wrapped in [ and ]"
        match = _GROUP.fullmatch(line)
        if match is None:
            return f"{where} has nested or unbalanced brackets"
        segments = [s for s in match.group(1).split(";") if s.strip()]
        if not segments:
            return f"{where} is an empty [ ]"
        for segment in segments:
            problem = _segment_problem(segment, where)
            if problem:
                return problem
    return None


def is_plist(text: str) -> bool:
    """True when `text` has the PList shape."""
    return plist_problem(text) is None


__all__ = ["format_plist", "is_plist", "normalize_plist", "plist_problem"]
