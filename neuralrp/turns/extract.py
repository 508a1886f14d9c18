"""Scene excerpts: a scene summary built without the LLM, from the scene's own lines (origin "extract").

When the model's summary of a scene is rejected or the model fails while the scene's messages are already
leaving the prompt, the summarizer stores this instead, so they do not leave it with no summary at all. It
invents nothing: each line is `Speaker: sentence`, where the sentence is the first one of at least
MIN_LINE_WORDS words in one message, as written (only *emphasis* markers removed), cut after LINE_WORDS words
with "…"; a sentence with template junk or one phrase said over and over is passed over. Lines are chosen
greedily by what they add: next comes the line with the most informative words (names, numbers, longer
words) that the chosen lines do not have yet, the earlier message on a tie, while the whole stays within
EXCERPT_WORDS; a line adding fewer than MIN_GAIN new ones is left out, a sentence said twice is kept once.
The chosen lines are given in scene order. The same scene always gives the same text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from neuralrp.turns.output_checks import template_junk

EXCERPT_WORDS = 150  # the scene summary's word limit (SCENE_INSTRUCTIONS asks the model for at most 150)
LINE_WORDS = 18
MIN_LINE_WORDS = 4
MIN_GAIN = 2  # a line must add at least this many informative words the chosen lines do not have

_SENTENCE = re.compile(r"(?<=[.!?…])[\"'”’)\]]*\s+|\n+")
_EMPHASIS = re.compile(r"\*{1,3}|(?<!\w)_{1,2}|_{1,2}(?!\w)")
_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")
_COMMON = frozenset(
    "the and but you she his her its our who how why are was has had not for yes all can one any may now too "
    "about after again also been before being could does down each even from have here into just know like "
    "look made make more much must need only over said same some still such sure than that their them then "
    "there these they thing think this those through tell very want well were what when where which while "
    "will with would your yours yourself maybe really going right".split())


@dataclass(frozen=True)
class Line:
    """One candidate line: its place in the scene, its text and the informative words it carries."""

    index: int
    text: str
    words: int
    keys: frozenset[str]


def _informative(sentence: str) -> frozenset[str]:
    """Names, numbers and longer uncommon words, lower-cased (a possessive or contraction counts as its stem)."""
    keys = set()
    for word in _WORD.findall(sentence):
        stem = re.split(r"['’]", word)[0]
        low = stem.lower()
        if low in _COMMON:
            continue
        if any(ch.isdigit() for ch in stem) or (stem[0].isupper() and len(stem) > 1) or len(stem) >= 4:
            keys.add(low)
    return frozenset(keys)


def _norm(sentence: str) -> str:
    return " ".join(_WORD.findall(sentence.lower()))


def first_sentence(speaker: str, text: str) -> str | None:
    """The first sentence of at least MIN_LINE_WORDS words without template junk, shortened; None if none."""
    body = _EMPHASIS.sub("", text).strip()
    if body.lower().startswith(f"{speaker.lower()}:"):
        body = body[len(speaker) + 1:]  # the model wrote its own name first
    for piece in _SENTENCE.split(body):
        words, tokens = piece.split(), [w.lower() for w in _WORD.findall(piece)]
        if len(tokens) < MIN_LINE_WORDS or len(set(tokens)) * 2 < len(tokens) or template_junk(piece):
            continue  # too short, a phrase said over and over, or chat-template debris
        if len(words) <= LINE_WORDS:
            return " ".join(words)
        return " ".join(words[:LINE_WORDS]).rstrip(",;:—–-") + "…"
    return None


def candidates(lines: list[tuple[str, str]]) -> list[Line]:
    """One candidate per message that has a usable sentence; a sentence said before is left out."""
    out: list[Line] = []
    said: set[str] = set()
    for index, (speaker, text) in enumerate(lines):
        sentence = first_sentence(speaker, text)
        if sentence is None or _norm(sentence) in said:
            continue
        said.add(_norm(sentence))
        line = f"{speaker}: {sentence}"
        out.append(Line(index, line, len(line.split()), _informative(sentence)))
    return out


def choose(found: list[Line], limit: int) -> list[Line]:
    """Greedy: the line adding the most new informative words (earliest on a tie, at least MIN_GAIN) while it
    fits the limit."""
    chosen: list[Line] = []
    seen: set[str] = set()
    used = 0
    left = list(found)
    while left:
        fits = [c for c in left if used + c.words <= limit and len(c.keys - seen) >= MIN_GAIN]
        if not fits:
            break
        best = max(fits, key=lambda c: (len(c.keys - seen), -c.index))
        chosen.append(best)
        left.remove(best)
        seen |= best.keys
        used += best.words
    return sorted(chosen, key=lambda c: c.index)


def scene_excerpt(lines: list[tuple[str, str]], limit: int = EXCERPT_WORDS) -> str | None:
    """The excerpt of a scene given as (speaker, text) per message in order; None when no line is usable."""
    chosen = choose(candidates(lines), limit)
    return "\n".join(c.text for c in chosen) if chosen else None
