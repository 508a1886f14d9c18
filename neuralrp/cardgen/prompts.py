"""Every prompt card generation sends to the LLM, and the sampler settings that go with them."""

from __future__ import annotations

import json
from typing import Any

from neuralrp.library.characters import Character
from neuralrp.llm.answers import REPAIR, repair_messages  # noqa: F401 - part of the prompts a test reads
from neuralrp.llm.types import ChatMessage, SamplingParams

CARD_PARAMS = SamplingParams(temperature=0.7, top_p=0.95, top_k=40, min_p=0.05, repetition_penalty=1.05,
                             max_tokens=1200)
FIELD_PARAMS = SamplingParams(temperature=0.8, top_p=0.95, top_k=40, min_p=0.05, repetition_penalty=1.05,
                              max_tokens=600)
WORLD_PARAMS = SamplingParams(temperature=0.7, top_p=0.95, top_k=40, min_p=0.05, repetition_penalty=1.05,
                              max_tokens=1500)

PLIST_RULES = (
    "PList format: one line in square brackets, parts separated by semicolons, each part a label, a colon and "
    "comma-separated short traits, e.g. [Mira: curious, stubborn, kind; Appearance: red hair, green eyes; "
    "Likes: old maps, tea]. No sentences, no nested brackets."
)
CARD_SCHEMA = (
    '{"name": string, "description": PList string with parts NAME (core identity), Appearance, Clothing, '
    'Background, "personality": PList string with parts NAME\'s Personality, Likes, Dislikes, Speech, '
    '"scenario": one sentence starting "You", "first_mes": the opening message, *actions* in asterisks and '
    '"speech" in quotes, 2-4 sentences, "mes_example": 2 exchanges, each starting with <START> then '
    '{{user}}: ... and {{char}}: ... lines, "tags": 2-5 short lowercase genre tags, '
    '"visual_tags": 6-15 Danbooru tags for the look (e.g. 1girl, red_hair, green_eyes, cloak)}'
)
CHARACTER_SYSTEM = (
    "You write token-efficient SillyTavern character cards for roleplay. Answer with ONE JSON object and "
    f"nothing else, exactly these keys: {CARD_SCHEMA}. {PLIST_RULES} Use {{{{user}}}} for the user and "
    "{{char}} for the character in first_mes and mes_example. Invent only what fits the description."
)
FROM_CHAT_SYSTEM = (
    "You turn what a roleplay character said and did in a chat into a reusable SillyTavern character card. "
    f"Answer with ONE JSON object and nothing else, exactly these keys: {CARD_SCHEMA}. {PLIST_RULES} Base "
    "every trait on the chat; the card must work outside this chat, so the scenario is generic."
)
FIELD_RULES: dict[str, str] = {
    "description": f"a PList string with parts NAME, Appearance, Clothing, Background. {PLIST_RULES}",
    "personality": f"a PList string with parts NAME's Personality, Likes, Dislikes, Speech. {PLIST_RULES}",
    "scenario": 'one sentence starting "You" that sets up the first scene',
    "first_mes": 'the opening message: *actions* in asterisks and "speech" in quotes, 2-4 sentences',
    "mes_example": "2 exchanges, each starting with <START> then {{user}}: ... and {{char}}: ... lines",
    "tags": "a JSON list of 2-5 short lowercase genre tags",
    "visual_tags": "a JSON list of 6-15 Danbooru tags for the character's look",
}
WORLD_SYSTEM = (
    "You write lore entries (SillyTavern World Info) for a roleplay setting. Answer with ONE JSON object and "
    'nothing else: {"entries": [{"keys": list of 1-4 trigger words or names, "content": a PList line such as '
    '[Place(nickname): type, features, atmosphere, inhabitants] or [Event: time, actors, result], '
    '"canon_law": true only for hard rules of the world that must always hold}]}. Cover places, history, '
    f"factions and creatures as fits. {PLIST_RULES}"
)
CARD_TEXT_FIELDS = ("name", "description", "personality", "scenario", "first_mes", "mes_example")


def _card_lines(data: dict[str, Any], visual_tags: list[str]) -> str:
    """The current card as labelled lines for a field prompt."""
    lines = [f"{key}: {data.get(key) or ''}" for key in CARD_TEXT_FIELDS]
    lines.append(f"tags: {json.dumps(data.get('tags') or [], ensure_ascii=False)}")
    lines.append(f"visual_tags: {json.dumps(visual_tags, ensure_ascii=False)}")
    return "\n".join(lines)


def character_request(description: str, name: str | None) -> list[ChatMessage]:
    """Messages asking for a whole card from a plain description."""
    wanted = f"The character's name is {name}.\n" if name else ""
    return [ChatMessage("system", CHARACTER_SYSTEM),
            ChatMessage("user", f"{wanted}Description:\n{description.strip()}")]


def field_request(data: dict[str, Any], visual_tags: list[str], field: str) -> list[ChatMessage]:
    """Messages asking for a new value of one field of an existing card."""
    system = (f"You improve one field of a SillyTavern character card. Answer with ONE JSON object and nothing "
              f'else: {{"{field}": value}}, where the value is {FIELD_RULES[field]}. Keep it consistent with '
              "the rest of the card and write something fresh.")
    user = f"The card:\n{_card_lines(data, visual_tags)}\n\nWrite a new {field}."
    return [ChatMessage("system", system), ChatMessage("user", user)]


def from_chat_request(name: str, lines: list[str], summaries: list[str], current: str) -> list[ChatMessage]:
    """Messages asking for a card built from a character's messages and the chat's summaries."""
    parts = [f"The character: {name}."]
    if current.strip():
        parts.append(f"What their card says now:\n{current.strip()}")
    if summaries:
        parts.append("The story so far (summaries):\n" + "\n".join(f"- {s}" for s in summaries))
    parts.append(f"What {name} said and did recently:\n" + "\n".join(lines))
    return [ChatMessage("system", FROM_CHAT_SYSTEM), ChatMessage("user", "\n\n".join(parts))]


def world_request(description: str, name: str | None, count: int) -> list[ChatMessage]:
    """Messages asking for `count` lore entries for a setting."""
    title = f"The world is called {name}.\n" if name else ""
    user = f"{title}Write {count} lore entries for this setting:\n{description.strip()}"
    return [ChatMessage("system", WORLD_SYSTEM), ChatMessage("user", user)]


# Capsules (SPEC §4): written once per card version by context/capsule_writer.py, rule-based fallback.
CAPSULE_INSTRUCTIONS = (
    "You condense a roleplay character card into a capsule that keeps the character's voice distinct in a "
    "long story. Write ONE line in this form and nothing else:\n"
    "[NAME — role in one short phrase. Traits: 4-8 comma-separated traits. Speech: how they talk, in a few "
    "words. Example: \"one short line they would say\"]\n"
    "Use only what the card says. At most 70 words."
)
CAPSULE_PARAMS = SamplingParams(temperature=0.3, top_p=0.9, top_k=40, min_p=0.05, repetition_penalty=1.05,
                                max_tokens=160)


def capsule_request(char: Character) -> list[ChatMessage]:
    """The exact messages sent to the LLM for one character's capsule."""
    fields = [("Name", char.name), ("Description", char.field("description")),
              ("Personality", char.field("personality")), ("Scenario", char.field("scenario")),
              ("Example dialogue", char.field("mes_example"))]
    card = "\n".join(f"{label}: {value.strip()}" for label, value in fields if value.strip())
    return [ChatMessage("system", CAPSULE_INSTRUCTIONS.replace("NAME", char.name)), ChatMessage("user", card)]
