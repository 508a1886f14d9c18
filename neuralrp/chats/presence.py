"""Who is in the scene: a cast member is present on a turn when they speak or are named.

Absence is measured by turns since a character last spoke or was addressed, never by
the speaker field alone (in Narrator mode every reply is the narrator's, so the
characters named in it are the ones present).
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Any

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


def mark_present(conn: Any, chat_id: int, turn: int, text: str, *, absence_turns: int,
                 speaker_id: int | None = None) -> list[int]:
    """Record presence on `turn` for the speaker and everyone named; returns ids that came back after an absence."""
    returned = []
    rows = conn.execute("SELECT cc.character_id, cc.last_present_turn, cc.first_turn, cc.reset_turn, c.name"
                        " FROM chat_cast cc JOIN characters c ON c.id = cc.character_id"
                        " WHERE cc.chat_id = ? AND cc.is_active = 1", (chat_id,)).fetchall()
    for row in rows:
        if row["character_id"] != speaker_id and not mentions(text, row["name"]):
            continue
        last = row["last_present_turn"] if row["last_present_turn"] is not None else row["first_turn"]
        reset = row["reset_turn"]
        if last is not None and turn - last > absence_turns:
            reset = turn
            returned.append(row["character_id"])
        conn.execute("UPDATE chat_cast SET last_present_turn = max(coalesce(last_present_turn, ?), ?), reset_turn = ?"
                     " WHERE chat_id = ? AND character_id = ?", (turn, turn, reset, chat_id, row["character_id"]))
    return returned
