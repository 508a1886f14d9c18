"""Prompt wording: mode instructions, card and persona text, SillyTavern macros."""

from __future__ import annotations

from typing import Any

from neuralrp.context.state import ChatState
from neuralrp.library.characters import Character

CARD_FIELDS = (("Description", "description"), ("Personality", "personality"), ("Scenario", "scenario"),
               ("Example dialogue", "mes_example"), ("Instructions", "system_prompt"))


def substitute(text: str, char: str, user: str) -> str:
    """Replace SillyTavern macros ({{char}}, {{user}}, <BOT>, <USER>, any case)."""
    for token, value in (("{{char}}", char), ("{{user}}", user), ("<bot>", char), ("<user>", user)):
        start = text.lower().find(token)
        while start != -1:
            text = text[:start] + value + text[start + len(token):]
            start = text.lower().find(token, start + len(value))
    return text


def card_text(char: Character, user: str) -> str:
    """A character's full card as prompt text."""
    parts = [f"[Character: {char.name}]"]
    for label, name in CARD_FIELDS:
        value = char.field(name).strip()
        if value:
            parts.append(f"{label}: {substitute(value, char.name, user)}")
    return "\n".join(parts)


def persona_text(persona: dict[str, Any], user: str) -> str:
    """The user's persona as prompt text ('' when it says nothing)."""
    bits = [str(persona.get(k, "")).strip() for k in ("gender", "description")]
    bits = [b for b in bits if b]
    return f"[{user}, the user's character] " + " ".join(bits) if bits else ""


def mode_instruction(state: ChatState) -> str:
    """The system instruction for the chat's mode and speaker."""
    user = state.user_name
    others = [c.character.name for c in state.active_cast if state.speaker is None or c.id != state.speaker.id]
    if state.speaker is None:
        cast = ", ".join(c.character.name for c in state.active_cast) or "the characters"
        return (f"You are the narrator of an ongoing roleplay with {user}. Write the next part of the story in "
                f"third person. Any character present ({cast}) may act and speak, each in their own voice. "
                f"Never write {user}'s words, thoughts or actions.")
    name = state.speaker.name
    text = (f"You are {name} in an ongoing roleplay with {user}. Write only {name}'s next reply: their actions, "
            f"thoughts and speech, in first person. Never write for {user}")
    text += f" or for {', '.join(others)}." if others else "."
    return text
