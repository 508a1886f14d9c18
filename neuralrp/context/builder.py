"""Build a turn's prompt as a pure function of stored chat state.

Order is most stable first (system, persona, cards) and most volatile last
(recent messages), so local servers can reuse the KV cache of the prefix.
History is filled newest-first until the token budget is spent.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from neuralrp.chats.store import Message
from neuralrp.context.sections import Prompt, Section
from neuralrp.library.characters import Character

DEFAULT_SYSTEM = (
    "You are a creative roleplay partner. Write the next reply in the story below, staying in character, "
    "in vivid prose. Never write the user's lines or actions for them."
)


@dataclass
class ChatState:
    """Everything the builder reads, loaded from the DB beforehand."""

    chat_id: int
    turn: int
    mode: str
    speaker: Character
    cast: list[Character]
    history: list[Message]
    persona: dict[str, Any] = field(default_factory=dict)
    system_prompt: str = DEFAULT_SYSTEM

    @property
    def user_name(self) -> str:
        """The persona's name, 'User' by default."""
        name = self.persona.get("name")
        return name if isinstance(name, str) and name.strip() else "User"


def substitute(text: str, char: str, user: str) -> str:
    """Replace SillyTavern macros ({{char}}, {{user}}, <BOT>, <USER>)."""
    for token, value in (("{{char}}", char), ("{{user}}", user), ("<BOT>", char), ("<USER>", user)):
        text = text.replace(token, value).replace(token.upper(), value)
    return text


def card_text(char: Character, user: str) -> str:
    """A character's full card as prompt text."""
    parts = [f"[Character: {char.name}]"]
    for label, name in (("Description", "description"), ("Personality", "personality"),
                        ("Scenario", "scenario"), ("Example dialogue", "mes_example")):
        value = char.field(name).strip()
        if value:
            parts.append(f"{label}: {substitute(value, char.name, user)}")
    return "\n".join(parts)


def persona_text(persona: dict[str, Any], user: str) -> str:
    """The user's persona as prompt text ('' when it says nothing)."""
    bits = [str(persona.get(k, "")).strip() for k in ("gender", "description")]
    bits = [b for b in bits if b]
    return f"[User persona: {user}] " + " ".join(bits) if bits else ""


def _fixed_sections(state: ChatState, count: Callable[[str], int]) -> list[Section]:
    user = state.user_name
    sp = state.speaker
    system = substitute(sp.field("system_prompt").strip() or state.system_prompt, sp.name, user)
    sections = [Section("system", system, count(system), source={"mode": state.mode})]
    persona = persona_text(state.persona, user)
    if persona:
        sections.append(Section("persona", persona, count(persona), source={"name": user}))
    for char in state.cast:
        text = card_text(char, user)
        sections.append(Section("card_full", text, count(text), source={"character_id": char.id, "name": char.name}))
    return sections


def _history_section(msg: Message, state: ChatState, count: Callable[[str], int]) -> Section:
    text = msg.content
    if msg.role == "assistant" and len(state.cast) > 1 and msg.speaker_name:
        text = f"{msg.speaker_name}: {text}"
    tokens = msg.token_count if (msg.token_count is not None and text == msg.content) else count(text)
    role = "user" if msg.role == "user" else "assistant"
    return Section("history", text, tokens + 4, role=role, source={"message_ids": [msg.id], "turn": msg.turn})


def build_prompt(state: ChatState, *, budget: int, count: Callable[[str], int]) -> Prompt:
    """The prompt for the speaker's next reply, never over `budget` tokens of sections."""
    fixed = _fixed_sections(state, count)
    reminder_text = substitute(state.speaker.field("post_history_instructions").strip(), state.speaker.name,
                               state.user_name)
    tail = [Section("reminder", reminder_text, count(reminder_text), source={"character_id": state.speaker.id})]
    tail = [s for s in tail if s.text]
    room = budget - sum(s.tokens for s in fixed) - sum(s.tokens for s in tail)
    history: list[Section] = []
    for msg in reversed(state.history):
        section = _history_section(msg, state, count)
        if section.tokens > room:
            break
        history.append(section)
        room -= section.tokens
    history.reverse()
    return Prompt(budget=budget, sections=[*fixed, *tail, *history])
