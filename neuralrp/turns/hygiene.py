"""Speaker hygiene: a reply holds one speaker's words, never a label with their own name nor another's lines.

Group history goes to the model as "Name: text", so models answer in kind. For each reply:
- stop strings: the user's name and every other cast member's name at the start of a line ("\\nKai:"), sent
  with the request (chat and text-completion mode, as each server dialect takes them: neuralrp/llm/dialects.py);
  the narrator voices the cast, so in Narrator mode only the user's name stops it;
- the same names are enforced here while the reply streams, for servers that ignore or cap stop strings: a line
  that starts with another speaker's label ends the reply there, and one before any reply text (the model wrote
  the user's line first) is dropped;
- a leading label with the speaker's own name ("Seraphina: ...", "**Narrator:** ...") is removed.
Text that could still turn out to be a label (the start of a line, until it cannot) is held back, so no label
ever reaches the stored row or a listener.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from neuralrp.chats import store
from neuralrp.db.connection import Connection
from neuralrp.library.characters import Character

NARRATOR = "Narrator"
_DECORATION = " \t*_"  # markdown around a label: **Seraphina:**


def name_forms(name: str) -> list[str]:
    """A name and, for a name of several words, its first word of 3+ letters ("Chiharu Yamada" -> "Chiharu")."""
    full = " ".join(name.split())
    first = full.split(" ")[0] if " " in full else ""
    return [full] + ([first] if len(first) >= 3 else []) if full else []


def _unique(names: list[str], minus: frozenset[str] = frozenset()) -> tuple[str, ...]:
    seen: dict[str, str] = {}
    for name in names:
        if name and name.casefold() not in minus:
            seen.setdefault(name.casefold(), name)
    return tuple(seen.values())


@dataclass(frozen=True)
class Voice:
    """Whose reply this is: `own` labels to remove, `others` (the user first) whose lines end it."""

    speaker: str
    own: tuple[str, ...]
    others: tuple[str, ...]

    @classmethod
    def of(cls, speaker: str, others: list[str]) -> Voice:
        """The voice of `speaker` among these other names (names equal to the speaker's are not others)."""
        own = _unique(name_forms(speaker))
        minus = frozenset(o.casefold() for o in own)
        return cls(speaker, own, _unique([f for n in others for f in name_forms(n)], minus))

    def stops(self) -> tuple[str, ...]:
        """The stop strings for the request: each other name at the start of a line."""
        return tuple(f"\n{name}:" for name in self.others)


def voice_for(conn: Connection, chat_id: int, speaker: Character | None) -> Voice:
    """The voice of the next reply in a chat: a character's (the user and the rest of the cast are others), or the
    narrator's (only the user is another: the narrator voices the cast)."""
    user = store.get_chat(conn, chat_id).user_name
    if speaker is None:
        return Voice.of(NARRATOR, [user])
    cast = [m.name for m in store.cast_members(conn, chat_id) if m.character_id != speaker.id]
    return Voice.of(speaker.name, [user, *cast])


def _label(names: tuple[str, ...]) -> re.Pattern[str] | None:
    if not names:
        return None
    alternatives = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    return re.compile(rf"[ \t*_]*(?:{alternatives})[*_ \t]*:[*_]*[ \t]*", re.IGNORECASE)


def _could_become_label(partial: str, names: tuple[str, ...]) -> bool:
    """Whether an unfinished line may still turn into "Name:" for one of the names."""
    text = partial.lstrip(_DECORATION).lower()
    for name in (n.lower() for n in names):
        if name.startswith(text) or (text.startswith(name) and not text[len(name):].strip(_DECORATION)):
            return True
    return False


class ReplyFilter:
    """Feed the streamed text; get back what may be shown and stored. `cut` turns True when another speaker's line
    began (stop reading the stream then). `continuing`: the text goes on a reply's last line (a Continue)."""

    def __init__(self, voice: Voice, *, continuing: bool = False) -> None:
        self.voice = voice
        self.continuing = continuing
        self.raw = ""
        self.text = ""  # the clean text given out so far
        self.cut = False
        self._own = _label(voice.own)
        self._other = _label(voice.others)
        self._names = voice.own + voice.others

    def feed(self, piece: str) -> str:
        """Take a streamed piece; returns the clean text that became safe to show (maybe '')."""
        self.raw += piece
        return self._advance(final=False)

    def finish(self) -> str:
        """The stream ended: the clean text held back until now (trailing whitespace dropped)."""
        tail = self._advance(final=True)
        stripped = self.text.rstrip()
        if len(stripped) < len(self.text):
            tail = tail[:max(0, len(tail) - (len(self.text) - len(stripped)))]
            self.text = stripped
        return tail

    def _advance(self, *, final: bool) -> str:
        if self.cut:
            return ""
        clean, self.cut = self._clean(final)
        fresh = clean[len(self.text):] if clean.startswith(self.text) else ""
        self.text += fresh
        return fresh

    def _clean(self, final: bool) -> tuple[str, bool]:
        """The clean form of all the raw text so far, and whether another speaker's line ended it."""
        out: list[str] = []
        started, pos = self.continuing, 0
        while pos < len(self.raw):
            newline = self.raw.find("\n", pos)
            end = len(self.raw) if newline < 0 else newline + 1
            line = self.raw[pos:end].rstrip("\n")
            if pos == 0 and self.continuing:  # the rest of the line being continued: never a label
                out.append(self.raw[pos:end])
            elif newline < 0 and not final and _could_become_label(line, self._names):
                break  # not decided yet: hold it back
            elif self._other is not None and self._other.match(line):
                if started:
                    return "".join(out), True
            elif (own := self._own.match(line) if self._own is not None else None) is not None:
                rest = self.raw[pos + own.end():end]
                if started or rest.strip():
                    out.append(rest)
                    started = True
            elif started or line.strip():
                out.append(self.raw[pos:end])
                started = True
            pos = end
        return "".join(out), False
