"""Prompt wording: mode instructions, card and persona text, SillyTavern macros."""

from __future__ import annotations

from typing import Any

from neuralrp.context.state import ChatState
from neuralrp.library.characters import Character
from neuralrp.library.macros import substitute

CARD_FIELDS = (("Description", "description"), ("Personality", "personality"), ("Scenario", "scenario"),
               ("Example dialogue", "mes_example"), ("Instructions", "system_prompt"))


DEFAULT_SYSTEM_PROMPT = (
    "This is an ongoing roleplay between {{user}} and the characters described below. Keep every character in "
    "their own voice and stay in the story. Never write {{user}}'s words, thoughts or actions.")
ORIGINAL = "{{original}}"


def card_text(char: Character, user: str, *, with_system: bool = True) -> str:
    """A character's full card as prompt text (with_system=False: without its system_prompt, which the head has)."""
    parts = [f"[Character: {char.name}]"]
    for label, name in CARD_FIELDS:
        value = char.field(name).strip()
        if value and (with_system or name != "system_prompt"):
            parts.append(f"{label}: {substitute(value, char.name, user)}")
    return "\n".join(parts)


def persona_text(persona: dict[str, Any], user: str, char: str = "") -> str:
    """The user's persona as prompt text, macros replaced ('' when it says nothing)."""
    bits = [substitute(str(persona.get(k, "")).strip(), char, user) for k in ("gender", "description")]
    bits = [b for b in bits if b]
    return f"[{user}, the user's character] " + " ".join(bits) if bits else ""


def head_instruction(state: ChatState) -> str:
    """The built-in system prompt: no point of view, the same for every speaker, mode and turn of a chat."""
    return substitute(DEFAULT_SYSTEM_PROMPT, stable_char_name(state), state.user_name)


def card_system_owner(state: ChatState) -> Character | None:
    """The character whose card's system_prompt is the chat's system prompt: the only active cast member, when its
    card has one (in a group the cards keep theirs, so the head is the same for every speaker)."""
    active = state.active_cast
    if len(active) != 1 or not active[0].character.field("system_prompt").strip():
        return None
    return active[0].character


def system_prompt(state: ChatState) -> tuple[str, dict[str, Any]]:
    """The head's system prompt and where it came from, SillyTavern's order: a one-character chat's card
    system_prompt ({{original}} = what it replaces), else the `chats.system_prompt` setting, else the built-in."""
    user, char_name = state.user_name, stable_char_name(state)
    custom = state.system_prompt.strip()
    original = substitute(custom, char_name, user) if custom else head_instruction(state)
    owner = card_system_owner(state)
    if owner is None:
        return original, {"origin": "setting" if custom else "default"}
    text = substitute(owner.field("system_prompt").strip(), owner.name, user)
    return replace_original(text, original), {"origin": "card", "character_id": owner.id, "name": owner.name}


def replace_original(text: str, original: str) -> str:
    """SillyTavern's {{original}} (any case): the text a card's prompt replaces, put where the card says."""
    start = text.lower().find(ORIGINAL)
    while start != -1:
        text = text[:start] + original + text[start + len(ORIGINAL):]
        start = text.lower().find(ORIGINAL, start + len(original))
    return text


def reply_instruction(state: ChatState) -> str:
    """Who writes the next reply and how (mode and speaker): placed after the history, never in the head."""
    user = state.user_name
    if state.speaker is None:
        cast = ", ".join(c.character.name for c in state.active_cast) or "the characters"
        return (f"[Narrate the next part of the story in third person. Any character present ({cast}) may act "
                f"and speak, each in their own voice. Never write {user}'s words, thoughts or actions.]")
    name = state.speaker.name
    others = [c.character.name for c in state.active_cast if c.id != state.speaker.id]
    text = (f"[{name} speaks next. Write only {name}'s next reply: their actions, thoughts and speech, in the "
            f"voice and point of view of their card. Never write for {user}")
    return text + (f" or for {', '.join(others)}.]" if others else ".]")


def stable_char_name(state: ChatState) -> str:
    """The name {{char}} stands for in the head: the first cast member's (it must not follow the speaker)."""
    return state.cast[0].character.name if state.cast else ""


def tail_texts(state: ChatState) -> tuple[str, str, bool]:
    """(reply instruction, the speaker's post-history instructions, merged): a card's post_history_instructions
    holding {{original}} take the reply instruction in its place (one text, merged=True); without it they follow
    the reply instruction. Macros are replaced with the speaker's name."""
    instruction = reply_instruction(state)
    if state.speaker is None:
        return instruction, "", False
    post = substitute(state.speaker.field("post_history_instructions").strip(), state.speaker.name, state.user_name)
    if ORIGINAL in post.lower():
        return replace_original(post, instruction), "", True
    return instruction, post, False
