"""Who is in the scene: a cast member is present on a turn when they speak or are named.

Absence is measured by turns since a character last spoke or was addressed, never by
the speaker field alone (in Narrator mode every reply is the narrator's, so the
characters named in it are the ones present).
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from neuralrp.chats import store
from neuralrp.db.connection import Connection

_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af\uf900-\ufaff]")


def fold(text: str) -> str:
    """Case- and width-insensitive form for matching."""
    return unicodedata.normalize("NFKC", text).casefold()


def name_forms(name: str) -> tuple[str, ...]:
    """The full name plus a first name of 3+ letters ("Chiharu Yamada" -> also "Chiharu")."""
    full = fold(name).strip()
    forms = [full] if full else []
    first = full.split()[0] if " " in full else ""
    if len(first) >= 3 and first not in forms:
        forms.append(first)
    return tuple(forms)


@lru_cache(maxsize=4096)
def _pattern(form: str) -> re.Pattern[str]:
    if _CJK.search(form):
        return re.compile(re.escape(form))
    return re.compile(rf"(?<![\w]){re.escape(form)}(?![\w])")


def mentions(text: str, name: str) -> bool:
    """Whether the text names the character (word boundaries; substring for CJK names)."""
    folded = fold(text)
    return any(_pattern(form).search(folded) for form in name_forms(name))


def mark_present(conn: Connection, chat_id: int, turn: int, text: str, *, absence_turns: int,
                 speaker_id: int | None = None) -> list[int]:
    """Record presence on `turn` for the speaker and everyone named; returns ids that came back after an absence."""
    returned = []
    for member in store.cast_members(conn, chat_id):
        if not member.is_active or (member.character_id != speaker_id and not mentions(text, member.name)):
            continue
        last = member.last_present_turn if member.last_present_turn is not None else member.first_turn
        reset = member.reset_turn
        if last is not None and turn - last > absence_turns:
            reset = turn
            returned.append(member.character_id)
        store.mark_cast_present(conn, chat_id, member.character_id, turn, reset)
    return returned
