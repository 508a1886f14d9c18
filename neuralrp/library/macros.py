"""SillyTavern macros in card and prompt text."""

from __future__ import annotations


def substitute(text: str, char: str, user: str) -> str:
    """Replace SillyTavern macros ({{char}}, {{user}}, <BOT>, <USER>, any case)."""
    for token, value in (("{{char}}", char), ("{{user}}", user), ("<bot>", char), ("<user>", user)):
        start = text.lower().find(token)
        while start != -1:
            text = text[:start] + value + text[start + len(token):]
            start = text.lower().find(token, start + len(value))
    return text
