"""World-info keys: normalization, parsing ("quoted" exact phrases, /regex/, keywords) and matching.

See lore.py for the rules. ``KeyMasker`` removes every key of a world from a text, so that the text embedded
for an entry describes what the entry is about rather than repeating names the keys already match.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Literal

log = logging.getLogger(__name__)

KeyKind = Literal["exact", "keyword", "regex"]
_QUOTES = {'"': '"', "\u201c": "\u201d", "\u201e": "\u201c\u201d", "\u00ab": "\u00bb", "\u300c": "\u300d",
           "\u300e": "\u300f", "\u201d": "\u201d"}
_STRAY_QUOTES = "".join(_QUOTES) + "".join(_QUOTES.values())
_REGEX_KEY = re.compile(r"^/(.+)/([a-zA-Z]*)$", re.DOTALL)
_REGEX_FLAGS = {"i": re.IGNORECASE, "s": re.DOTALL, "m": re.MULTILINE}
_LATIN_MARKS = re.compile("([a-z\u00c0-\u024f\u0370-\u03ff])[\u0300-\u036f]+")  # accents on Latin/Greek
_PUNCT_MAP = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "\u2010": "-", "\u2011": "-",
                            "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2212": "-"})
_NO_SPACE = re.compile("[\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff\u3100-\u312f\u3400-\u4dbf"
                       "\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\U00020000-\U0002fa1f]")
_NON_LATIN = re.compile(r"[^\W\d_a-z\u00c0-\u024f]")  # a letter of another script than Latin (text is casefolded)
_WORD = re.compile(r"\w+")
_SEP = r"[\s\-]+"


def normalize(text: str) -> str:
    """NFKC + casefold, Latin/Greek accents dropped, ASCII apostrophes/dashes, whitespace collapsed."""
    text = unicodedata.normalize("NFKC", text).casefold().translate(_PUNCT_MAP)
    if not text.isascii():
        text = unicodedata.normalize("NFC", _LATIN_MARKS.sub(r"\1", unicodedata.normalize("NFD", text)))
    return " ".join(text.split())


def _variants(word: str) -> tuple[str, ...]:
    """A text token and its possible singulars (for anchor lookup; the regex decides)."""
    out = [word]
    if word.endswith("s"):
        out.append(word[:-1])
        if word.endswith("es"):
            out.append(word[:-2])
        if word.endswith("ies"):
            out.append(word[:-3] + "y")
    return tuple(out)


class ScanText:
    """The recent text in the forms the keys need, computed once per turn."""

    def __init__(self, raw: str) -> None:
        self.nfkc = unicodedata.normalize("NFKC", raw)
        self.norm = normalize(raw)
        self._tokens: set[str] | None = None
        self._grams: set[str] | None = None

    @property
    def tokens(self) -> set[str]:
        """Word tokens of the normalized text, with singular variants."""
        if self._tokens is None:
            self._tokens = {v for w in set(_WORD.findall(self.norm)) for v in _variants(w)}
        return self._tokens

    @property
    def grams(self) -> set[str]:
        """All 1- and 2-character substrings (anchors for no-space scripts)."""
        if self._grams is None:
            t = self.norm
            self._grams = set(t) | {t[i : i + 2] for i in range(len(t) - 1)}
        return self._grams


@dataclass(frozen=True)
class Key:
    """A parsed world-info key: how it matches and which token/gram must be present for it to match."""

    raw: str
    text: str
    kind: KeyKind
    source: str | None = None  # regex source, compiled on first use (most keys are never tested)
    flags: int = 0
    needle: str | None = None
    required: frozenset[str] = frozenset()  # word tokens that must all occur in the text
    gram: str | None = None  # for substring keys: their first 1-2 characters

    @cached_property
    def pattern(self) -> re.Pattern[str]:
        """The compiled regex of a word, phrase or regex key."""
        return re.compile(self.source or "", self.flags)

    def matches(self, text: ScanText | str) -> bool:
        """Whether this key occurs in the text."""
        if not self.text:
            return False
        t = text if isinstance(text, ScanText) else ScanText(text)
        if self.needle is not None:
            return self.needle in t.norm
        return self.pattern.search(t.nfkc if self.kind == "regex" else t.norm) is not None


def _unquote(raw: str) -> str | None:
    balanced = len(raw) >= 2 and raw[0] in _QUOTES and raw[-1] in _QUOTES[raw[0]]
    return raw[1:-1] if balanced else None


def _plural(word: str) -> tuple[str, str, str]:
    """(literal stem, suffix regex, anchor) for the last word of an unquoted key: simple English plurals."""
    if not re.fullmatch(r"[a-z]{3,}", word):
        return word, "", word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3], "(?:y|ies)", word[:-3] + "y"
    if word.endswith("y") and word[-2] not in "aeiou":
        return word[:-1], "(?:y|ies)", word
    if word.endswith(("ss", "x", "z", "ch", "sh")):
        return word, "(?:es)?", word
    if word.endswith("s") and not word.endswith(("us", "is", "as")) and len(word) >= 4:
        return word[:-1], "(?:s|es)?", word[:-1]
    return word, "(?:s|es)?", word


def _phrase_key(raw: str, needle: str, kind: KeyKind) -> Key:
    if _NO_SPACE.search(needle) or (kind == "keyword" and _NON_LATIN.search(needle)):
        return Key(raw, needle, kind, needle=needle, gram=needle[:2])
    parts = [p for p in re.split(_SEP, needle) if p]
    if not parts:
        return Key(raw, needle, kind, source=re.escape(needle))
    literals, suffix = list(parts), ""
    required = [w for p in parts[:-1] for w in _WORD.findall(p)]
    if kind == "keyword" and re.fullmatch(r"\w+", parts[-1]):
        literals[-1], suffix, last_anchor = _plural(parts[-1])
        required.append(last_anchor)
    else:
        required.extend(_WORD.findall(parts[-1]))
    body = [re.escape(p) for p in literals]
    if re.match(r"\w", needle):  # left word boundary, written after the first literal so re can scan for it fast
        body[0] += rf"(?<!\w{body[0]})"
    right = r"(?!\w)" if re.search(r"\w$", needle) else ""
    return Key(raw, needle, kind, source=_SEP.join(body) + suffix + right, required=frozenset(required))


def _regex_key(raw: str) -> Key | None:
    match = _REGEX_KEY.match(raw)
    if not match or set(match.group(2)) - set("gimsuy"):
        return None
    flags = sum(flag for char, flag in _REGEX_FLAGS.items() if char in match.group(2))
    try:
        re.compile(match.group(1), flags)
        return Key(raw, match.group(1), "regex", source=match.group(1), flags=flags)
    except re.error as e:
        log.debug("world-info regex key %r does not compile in Python (%s); using it as a literal", raw, e)
        return None


@lru_cache(maxsize=65536)
def parse_key(raw: str) -> Key:
    """Parse one key: "quoted" = exact phrase, /regex/flags = regex, anything else = keyword (+ semantic)."""
    stripped = raw.strip()
    inner = _unquote(stripped)
    if inner is not None:
        return _phrase_key(raw, normalize(inner), "exact")
    regex = _regex_key(stripped) if stripped.startswith("/") else None
    return regex or _phrase_key(raw, normalize(stripped.strip(_STRAY_QUOTES)), "keyword")


def selective_passes(logic: int, secondary: Sequence[Key], text: ScanText | str) -> bool:
    """ST selectiveLogic over secondary keys: 0 AND ANY, 1 NOT ALL, 2 NOT ANY, 3 AND ALL."""
    t = text if isinstance(text, ScanText) else ScanText(text)
    hits = [k.matches(t) for k in secondary]
    return {1: not all(hits), 2: not any(hits), 3: all(hits)}.get(logic, any(hits))


class KeyMasker:
    """Removes occurrences of a set of keys from texts (regex keys are left alone)."""

    def __init__(self, raw_keys: Iterable[str]) -> None:
        keys = [k for k in map(parse_key, dict.fromkeys(raw_keys)) if k.text and k.kind != "regex"]
        freq = Counter(t for k in keys for t in k.required)
        self.by_token: dict[str, list[Key]] = {}
        self.by_gram: dict[str, list[Key]] = {}
        for key in keys:
            if key.gram:
                self.by_gram.setdefault(key.gram, []).append(key)
            elif key.required:
                self.by_token.setdefault(min(key.required, key=lambda t: (freq[t], -len(t), t)), []).append(key)

    def mask(self, text: str) -> str:
        """The normalized text with every occurrence of the keys removed."""
        t = ScanText(text)
        found = [k for a in self.by_token.keys() & t.tokens for k in self.by_token[a]]
        if self.by_gram:
            found += [k for a in self.by_gram.keys() & t.grams for k in self.by_gram[a]]
        out = t.norm
        for key in sorted(found, key=lambda k: -len(k.text)):  # longer phrases first
            if key.needle is not None:
                out = out.replace(key.needle, " ")
            elif key.required <= t.tokens:
                out = key.pattern.sub(" ", out)
        return " ".join(out.split())
