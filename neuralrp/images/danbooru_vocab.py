"""The shipped Danbooru tag vocabulary (data/danbooru_tags.txt): tags, categories, aliases, flags.

Text and aliases go through the same `tokens()` normalisation, so a phrase matches whatever its
spelling ("Thigh-high boots", "thigh_high boots", "thigh high boots").
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
import unicodedata
from dataclasses import dataclass, field
from importlib import resources

from neuralrp.errors import NeuralRPError

log = logging.getLogger(__name__)

DATA_FILE = "danbooru_tags.txt"
CATEGORY_ORDER = ("count", "character", "hair_color", "hair_length", "hair_style", "eyes", "body", "clothing",
                  "accessories")
HEADS = ("hair", "eyes", "skin")  # nouns whose adjectives distribute: "long, silver hair" -> long + silver hair
COLOURS = {
    "white": "white", "black": "black", "red": "red", "blue": "blue", "green": "green", "yellow": "yellow",
    "purple": "purple", "pink": "pink", "brown": "brown", "grey": "grey", "gray": "grey", "orange": "orange",
    "aqua": "aqua", "navy": "blue", "crimson": "red", "scarlet": "red", "violet": "purple", "lavender": "purple",
    "gold": "yellow", "golden": "yellow", "teal": "aqua", "cyan": "aqua", "beige": "brown", "silver": "grey",
    "maroon": "red", "magenta": "pink", "ivory": "white", "azure": "blue", "emerald": "green",
}
_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[^\sa-z0-9]")
_TEMPLATE = re.compile(r"\{\{[^{}]*\}\}")


def tokens(text: str) -> list[str]:
    """Lowercase words and single punctuation marks; '-' and '_' split words, {{char}} macros vanish."""
    text = unicodedata.normalize("NFKC", text).casefold().replace("\u2019", "'")
    text = _TEMPLATE.sub(" ", text).replace("_", " ").replace("-", " ")
    return _TOKEN.findall(text)


def is_word(token: str) -> bool:
    """True for a word token, False for punctuation."""
    return token[:1].isalnum()


def colour_before(toks: list[str], start: int) -> str | None:
    """A colour word among the two words before `start` (no punctuation in between), as Danbooru spells it."""
    for j in (start - 1, start - 2):
        if j < 0 or not is_word(toks[j]):
            return None
        if toks[j] in COLOURS:
            return COLOURS[toks[j]]
    return None


@dataclass(frozen=True)
class TagEntry:
    """One vocabulary tag with what the data file says about it."""

    tag: str
    category: str
    aliases: tuple[str, ...]
    flags: frozenset[str] = frozenset()

    def flag_value(self, name: str) -> str | None:
        """The value of a `name:VALUE` flag, or None."""
        for flag in self.flags:
            if flag.startswith(name + ":"):
                return flag.split(":", 1)[1]
        return None

    @property
    def group(self) -> str | None:
        """The exclusive group (`x:GROUP`) this tag belongs to."""
        return self.flag_value("x")

    @property
    def own_phrase(self) -> str:
        """The tag written as words: bow_(weapon) -> 'bow weapon'."""
        return re.sub(r"[()]", " ", self.tag.replace("{g}", "")).replace("_", " ").strip()


@dataclass(frozen=True)
class Phrase:
    """A phrase of the index and the tag it stands for."""

    entry: TagEntry
    text: str
    how: str  # exact (the tag's own words) | alias


@dataclass
class Vocabulary:
    """Tags plus a phrase index (token tuples -> Phrase) and the adjectives each head noun takes."""

    entries: list[TagEntry]
    phrases: dict[tuple[str, ...], Phrase] = field(default_factory=dict)
    head_modifiers: dict[str, set[str]] = field(default_factory=dict)
    collisions: list[str] = field(default_factory=list)
    max_len: int = 1
    fingerprint: str = ""

    def __post_init__(self) -> None:
        for entry in self.entries:
            self._index(entry)
        self.max_len = max((len(k) for k in self.phrases), default=1)
        digest = hashlib.sha256("\n".join(f"{e.tag}|{'|'.join(e.aliases)}" for e in self.entries).encode())
        self.fingerprint = digest.hexdigest()[:16]

    def _index(self, entry: TagEntry) -> None:
        texts = [] if "noself" in entry.flags else [(entry.own_phrase, "exact")]
        texts += [(alias, "alias") for alias in entry.aliases]
        for text, how in texts:
            key = tuple(tokens(text))
            if not key:
                continue
            self._add(key, Phrase(entry, text, how), explicit=True)
            if entry.category != "count" and not key[-1].endswith("s"):
                self._add((*key[:-1], key[-1] + "s"), Phrase(entry, text, how), explicit=False)

    def _add(self, key: tuple[str, ...], phrase: Phrase, *, explicit: bool) -> None:
        taken = self.phrases.get(key)
        if taken is not None:
            if explicit and taken.entry.tag != phrase.entry.tag:
                self.collisions.append(f"'{' '.join(key)}' is both {taken.entry.tag} and {phrase.entry.tag}")
            return
        self.phrases[key] = phrase
        if len(key) > 1 and key[-1] in HEADS:
            self.head_modifiers.setdefault(key[-1], set()).update(key[:-1])

    def entry(self, tag: str) -> TagEntry | None:
        """The entry of a tag, if the vocabulary has it."""
        return next((e for e in self.entries if e.tag == tag), None)

    def texts(self) -> list[tuple[TagEntry, str]]:
        """Every (entry, phrase) pair worth embedding: own words and aliases."""
        out = []
        for entry in self.entries:
            if entry.category == "count":
                continue
            out += [(entry, text) for text in (entry.own_phrase, *entry.aliases)]
        return out


def parse_vocabulary(text: str, source: str = DATA_FILE) -> Vocabulary:
    """Parse the data file format (see its header); errors name the line."""
    category = ""
    entries: list[TagEntry] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            category = line[1:-1].strip()
            if category not in CATEGORY_ORDER:
                raise NeuralRPError(f"{source} line {number}: unknown category '{category}'")
            continue
        tag, sep, rest = line.partition(":")
        if not sep or not category or not tag.strip():
            raise NeuralRPError(f"{source} line {number}: expected 'tag: aliases | flags' inside a [category]")
        aliases, _, flags = rest.partition("|")
        entries.append(TagEntry(tag.strip(), category,
                                tuple(a.strip().lower() for a in aliases.split(",") if a.strip()),
                                frozenset(f.strip() for f in flags.split(",") if f.strip())))
    return Vocabulary(entries)


@functools.cache
def default_vocabulary() -> Vocabulary:
    """The vocabulary shipped in the package (parsed once)."""
    data = resources.files("neuralrp.images").joinpath("data", DATA_FILE).read_text(encoding="utf-8")
    vocab = parse_vocabulary(data)
    for line in vocab.collisions:
        log.debug("danbooru vocabulary: %s (first one kept)", line)
    return vocab
