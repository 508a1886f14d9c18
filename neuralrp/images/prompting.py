"""Image prompts: count/gender tags, each character's visual tags, `[Name]` substitution, snapshot assembly."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from neuralrp.chats import store
from neuralrp.db.connection import Connection
from neuralrp.errors import InvalidInput
from neuralrp.library import characters as chars

MAX_CHARACTER_TAGS = 30
_NAME_REF = re.compile(r"\[([^\[\]\n]{1,80})\]")
_COUNT_TAG = re.compile(r"^(\d+\+?(girl|boy|other)s?|solo|duo|trio|group|crowd|multiple (girls|boys|others))$",
                        re.IGNORECASE)


class PromptError(InvalidInput):
    """A prompt cannot be built as asked (e.g. `[Name]` names nobody) (-> 400)."""

    status_code = 400


@dataclass(frozen=True)
class Subject:
    """Someone pictured: a name, a gender (female/male/other/"") and Danbooru tags."""

    name: str
    gender: str
    tags: list[str]


def split_tags(text: str) -> list[str]:
    """Comma-separated tags, trimmed, empty ones dropped."""
    return [" ".join(t.split()) for t in text.split(",") if t.strip()]


def _extension(character: chars.Character, key: str) -> str:
    ext = character.data.get("extensions")
    ours = ext.get("neuralrp") if isinstance(ext, dict) else None
    value = ours.get(key) if isinstance(ours, dict) else None
    return value.strip() if isinstance(value, str) else ""


def subject_of(character: chars.Character) -> Subject:
    """A character as a subject: the columns, else the card's extensions.neuralrp values."""
    gender = (character.gender or _extension(character, "gender")).lower()
    tags = split_tags(character.visual_tags or _extension(character, "visual_tags"))
    return Subject(character.name, gender, tags)


def user_subject(settings: Any, name: str) -> Subject:
    """The user in the shot, from images.user_gender / user_tags."""
    return Subject(name, settings.user_gender, split_tags(settings.user_tags))


def _count(n: int, word: str) -> str:
    if n > 5:
        return f"6+{word}s"
    return f"{n}{word}" + ("s" if n > 1 else "")


def count_tags(subjects: list[Subject]) -> list[str]:
    """1girl / 2girls / 1boy / 1other ... (girls, then boys, then others); `solo` for one person."""
    girls = sum(1 for s in subjects if s.gender == "female")
    boys = sum(1 for s in subjects if s.gender == "male")
    others = len(subjects) - girls - boys
    tags = [_count(n, word) for n, word in ((girls, "girl"), (boys, "boy"), (others, "other")) if n]
    if len(subjects) == 1:
        tags.append("solo")
    return tags


def dedupe(parts: Iterable[str]) -> list[str]:
    """Tags in order, case-insensitive duplicates and empty ones dropped."""
    seen: dict[str, str] = {}
    for part in parts:
        for tag in split_tags(part):
            seen.setdefault(tag.casefold(), tag)
    return list(seen.values())


def snapshot_prompt(quality: str, subjects: list[Subject], keywords: dict[str, str]) -> str:
    """Quality tags, count tags, each subject's visual tags (count-like ones dropped), then the keywords."""
    character_tags = [t for s in subjects for t in s.tags if not _COUNT_TAG.match(t)][:MAX_CHARACTER_TAGS]
    scene = [keywords.get(k, "") for k in ("action", "activity", "expression", "dress", "location")]
    return ", ".join(dedupe([quality, *count_tags(subjects), *character_tags, *scene]))


def _cast_lookup(conn: Connection, chat_id: int | None) -> dict[str, chars.Character]:
    if chat_id is None:
        return {}
    return {m.name.casefold(): chars.get_character(conn, m.character_id) for m in store.cast_members(conn, chat_id)}


def _find(conn: Connection, name: str, cast: dict[str, chars.Character]) -> chars.Character | None:
    key = name.strip().casefold()
    if key in cast:
        return cast[key]
    return chars.find_by_name(conn, name.strip())


def is_a1111_syntax(inner: str) -> bool:
    """True for A1111's own bracket syntax: [from:to:step] editing, [a|b] alternation, [lowercase tag] weighting."""
    return any(c in inner for c in ":|()") or inner == inner.lower()


def substitute_names(conn: Connection, prompt: str, chat_id: int | None) -> str:
    """Replace each `[Name]` with that character's visual tags (chat cast first, then the library)."""
    if not _NAME_REF.search(prompt):
        return prompt
    cast = _cast_lookup(conn, chat_id)

    def tags_for(match: re.Match[str]) -> str:
        character = _find(conn, match.group(1), cast)
        if character is None:
            if is_a1111_syntax(match.group(1)):
                return match.group(0)  # not a name: A1111 reads it
            where = "this chat's cast or the library" if cast else "the library"
            raise PromptError(f"[{match.group(1)}] does not name a character in {where}; check the spelling "
                              "(names start with a capital letter; [lowercase tags] are left for A1111)")
        subject = subject_of(character)
        if not subject.tags:
            raise PromptError(f"[{match.group(1)}] has no visual tags yet; add them in the character's card editor "
                              "(Visual tags) first")
        return ", ".join(subject.tags)

    return _NAME_REF.sub(tags_for, prompt)
