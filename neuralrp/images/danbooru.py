"""Visual canon: a character's description (and gender) -> Danbooru tags.

Pure core: `suggest_tags(text, gender, vocab=..., embedder=..., characters=...)`. Exact and alias phrases
of the shipped vocabulary match first (adjectives distribute over hair/eyes/skin: "long, silver hair"),
then, with an embedder, short appearance phrases the aliases missed are matched by cosine similarity.
The result is ordered by category, de-duplicated, and exclusive groups (one hair length) are resolved.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from neuralrp.images.danbooru_semantic import semantic_hits
from neuralrp.images.danbooru_vocab import (
    CATEGORY_ORDER,
    TagEntry,
    Vocabulary,
    colour_before,
    default_vocabulary,
    is_word,
    tokens,
)

log = logging.getLogger(__name__)

GENDERS = ("female", "male", "other", "")
COUNT_TAGS = {"female": "1girl", "male": "1boy", "other": "1other"}
MAX_TAGS = 30
RUN_JOINERS = {",", "and", "&", "/"}
MAX_RUN = 10
FEMALE_WORDS = {"she", "her", "hers", "herself", "woman", "girl", "lady", "goddess", "queen", "princess", "maiden",
                "heroine", "wife", "mother", "sister", "daughter"}
MALE_WORDS = {"he", "him", "his", "himself", "man", "boy", "guy", "gentleman", "king", "prince", "lord", "husband",
              "father", "brother", "son"}
_PLIST = re.compile(r"([A-Za-z][A-Za-z' -]*?)\s*\(([^()]*)\)")


@dataclass(frozen=True)
class Hit:
    """A tag found in the text: where, how and how sure."""

    tag: str
    category: str
    phrase: str
    how: str  # exact | alias | semantic
    score: float = 1.0
    pos: int = 0
    entry: TagEntry | None = None
    covers: str | None = None  # a colour tag says this plain tag already (brown_footwear -> footwear)

    def public(self) -> dict[str, Any]:
        """JSON form for the API."""
        return {"tag": self.tag, "category": self.category, "phrase": self.phrase, "how": self.how,
                "score": round(float(self.score), 3)}


@dataclass
class CanonResult:
    """The suggestion: tags in prompt order, how each was found, look-alike dataset characters."""

    tags: list[str]
    matches: list[Hit]
    looks_like: list[dict[str, Any]] = field(default_factory=list)

    def public(self) -> dict[str, Any]:
        """JSON form for the API."""
        return {"tags": self.tags, "visual_tags": ", ".join(self.tags),
                "matches": [m.public() for m in self.matches], "looks_like": self.looks_like}


def normalise_gender(value: Any, field_name: str = "gender") -> str:
    """'' | female | male | other, or InvalidInput naming the field."""
    from neuralrp.errors import InvalidInput

    if value is None:
        return ""
    if not isinstance(value, str) or value.strip().lower() not in GENDERS:
        raise InvalidInput(f"field '{field_name}' must be one of female, male, other or empty (got {value!r})")
    return value.strip().lower()


def expand_plist(text: str) -> str:
    """PList groups become plain phrases: 'hair(white,ahoge)' -> 'white hair, white, ahoge hair, ahoge'."""

    def spread(m: re.Match[str]) -> str:
        head = m.group(1).strip()
        items = [i.strip() for i in m.group(2).split(",") if i.strip()]
        if not items:
            return f" {head} "
        return " , " + " , ".join(f"{item} {head} , {item}" for item in items) + " , "

    return _PLIST.sub(spread, text)


def suggest_tags(text: str, gender: str = "", *, vocab: Vocabulary | None = None, embedder: Any = None,
                 characters: Sequence[Any] = (), threshold: float | None = None,
                 max_tags: int = MAX_TAGS) -> CanonResult:
    """Danbooru tags for a description; `embedder` (optional) adds semantic matches (its tuned threshold)."""
    vocab = vocab or default_vocabulary()
    given = normalise_gender(gender)
    toks = tokens(expand_plist(text))
    consumed = [False] * len(toks)
    hits = head_runs(toks, vocab, consumed) + phrase_scan(toks, vocab, consumed)
    gender = given or infer_gender(toks)
    if gender:
        phrase = f"gender: {gender}" if given else f"pronouns: {gender}"
        hits.append(Hit(COUNT_TAGS[gender], "count", phrase, "exact" if given else "alias", 1.0, -1))
    if embedder is not None:
        for found in semantic_hits(toks, consumed, vocab, embedder, threshold):
            hits += _hits_for(found.entry, found.text, "semantic", found.pos, found.colour, found.score)
    hits += character_hits(toks, characters)
    chosen = resolve(hits, gender, max_tags)
    return CanonResult([h.tag for h in chosen], chosen, looks_like(chosen, gender, characters))


def infer_gender(toks: Iterable[str]) -> str:
    """female/male from pronouns and nouns when one clearly dominates, else ''."""
    words = list(toks)
    female = sum(w in FEMALE_WORDS for w in words)
    male = sum(w in MALE_WORDS for w in words)
    if female >= 2 and female >= 2 * male:
        return "female"
    if male >= 2 and male >= 2 * female:
        return "male"
    return ""


def _hits_for(entry: TagEntry, phrase: str, how: str, pos: int, colour: str | None, score: float = 1.0
              ) -> list[Hit]:
    """The hit(s) one phrase match gives, colour variants applied."""
    base = Hit(entry.tag, entry.category, phrase, how, score, pos, entry)
    if colour is None:
        return [base]
    if "c" in entry.flags:
        return [replace(base, tag=f"{colour}_{entry.tag}")]
    noun = entry.flag_value("c")
    return [base, replace(base, tag=f"{colour}_{noun}", entry=None, covers=noun)] if noun else [base]


def phrase_scan(toks: list[str], vocab: Vocabulary, consumed: list[bool]) -> list[Hit]:
    """Longest exact/alias phrase at each free position, left to right."""
    hits: list[Hit] = []
    i = 0
    while i < len(toks):
        found = None
        if not consumed[i] and is_word(toks[i]):
            for length in range(min(vocab.max_len, len(toks) - i), 0, -1):
                phrase = vocab.phrases.get(tuple(toks[i:i + length]))
                if phrase is None or any(consumed[i:i + length]):
                    continue
                colour = colour_before(toks, i)
                if phrase.how == "exact" and "colour_only" in phrase.entry.flags and colour is None:
                    continue
                found = length
                hits += _hits_for(phrase.entry, " ".join(toks[i:i + length]), phrase.how, i, colour)
                break
        if found:
            consumed[i:i + found] = [True] * found
            i += found
        else:
            i += 1
    return hits


def _object_phrase_at(toks: list[str], i: int, vocab: Vocabulary) -> bool:
    """True if a longer style/clothing phrase starts at the head noun ('hair ribbon', 'hair bun')."""
    for length in range(min(vocab.max_len, len(toks) - i), 1, -1):
        phrase = vocab.phrases.get(tuple(toks[i:i + length]))
        if phrase is not None and phrase.entry.category in ("hair_style", "clothing", "accessories"):
            return True
    return False


def head_runs(toks: list[str], vocab: Vocabulary, consumed: list[bool]) -> list[Hit]:
    """Adjective runs before hair/eyes/skin: 'long, silver hair' -> long_hair + grey_hair."""
    hits: list[Hit] = []
    for i, head in enumerate(toks):
        mods = vocab.head_modifiers.get(head)
        if not mods or consumed[i] or _object_phrase_at(toks, i, vocab):
            continue
        j = i - 1
        while j >= 0 and i - j <= MAX_RUN and (toks[j] in mods or toks[j] in RUN_JOINERS) and not consumed[j]:
            j -= 1
        found = _run_hits(toks[j + 1:i], head, vocab, j + 1)
        if found:
            hits += found
            consumed[j + 1:i + 1] = [True] * (i - j)
    return hits


def _run_hits(run: list[str], head: str, vocab: Vocabulary, start: int) -> list[Hit]:
    groups: list[list[str]] = [[]]
    for tok in run:
        if tok in RUN_JOINERS:
            groups.append([])
        else:
            groups[-1].append(tok)
    hits: list[Hit] = []
    while run and run[0] in RUN_JOINERS:
        run = run[1:]
    shown = " ".join([*run, head]).replace(" ,", ",")
    for group in groups:
        k = 0
        while k < len(group):
            for end in range(len(group), k, -1):
                phrase = vocab.phrases.get((*group[k:end], head))
                if phrase is not None:
                    hits.append(Hit(phrase.entry.tag, phrase.entry.category, shown, phrase.how, 1.0, start,
                                    phrase.entry))
                    k = end
                    break
            else:
                k += 1
    return hits


def character_hits(toks: list[str], characters: Sequence[Any]) -> list[Hit]:
    """Dataset characters the text names ('aqua' + 'konosuba' -> aqua_(konosuba)), or says it looks like."""
    if not characters:
        return []
    text = " " + " ".join(t for t in toks if is_word(t)) + " "
    present = set(toks)
    hits = []
    for char in characters:
        name, qualifier = _name_parts(char.name)
        if not name or f" {name} " not in text:
            continue
        said = any(f" {cue} {name} " in text for cue in ("looks like", "resembles", "cosplaying as", "dressed as"))
        if said or (qualifier and set(qualifier.split()) <= present):
            hits.append(Hit(char.name, "character", name, "exact", 1.0, text.index(f" {name} ")))
    return hits


def _name_parts(tag: str) -> tuple[str, str]:
    """'aqua_(konosuba)' -> ('aqua', 'konosuba')."""
    m = re.match(r"^(.*?)(?:_\(([^()]*)\))?$", tag)
    assert m is not None
    return " ".join(tokens(m.group(1))), " ".join(t for t in tokens(m.group(2) or "") if is_word(t))


def _allowed(hit: Hit, gender: str) -> Hit | None:
    """Drop tags for the other gender; fill in {g} (muscular_{g} -> muscular_female)."""
    entry = hit.entry
    if entry is None:
        return hit
    if gender and (("f" in entry.flags and gender != "female") or ("m" in entry.flags and gender != "male")):
        return None
    if "{g}" in hit.tag:
        return replace(hit, tag=hit.tag.replace("{g}", gender)) if gender in ("female", "male") else None
    return hit


def resolve(hits: list[Hit], gender: str, max_tags: int = MAX_TAGS) -> list[Hit]:
    """Order by category, de-duplicate, keep one tag per exclusive group (two where a 'multi' tag says so)."""
    ranked = sorted(hits, key=lambda h: (h.how == "semantic", h.pos))
    multi = {h.entry.flag_value("multi") for h in ranked if h.entry is not None} - {None}
    kept: list[Hit] = []
    seen: set[str] = set()
    per_group: dict[str, int] = {}
    for hit in ranked:
        allowed = _allowed(hit, gender)
        if allowed is None or allowed.tag in seen:
            continue
        group = allowed.entry.group if allowed.entry is not None else None
        if group is not None:
            if per_group.get(group, 0) >= (2 if group in multi else 1):
                continue
            per_group[group] = per_group.get(group, 0) + 1
        seen.add(allowed.tag)
        kept.append(allowed)
    coloured = {h.entry.tag for h in kept if h.entry is not None and h.tag != h.entry.tag}
    coloured |= {h.covers for h in kept if h.covers}
    kept = [h for h in kept if h.tag not in coloured]  # white_jacket says jacket already
    kept.sort(key=lambda h: (CATEGORY_ORDER.index(h.category), h.pos))
    return kept[:max_tags]


def looks_like(chosen: list[Hit], gender: str, characters: Sequence[Any], limit: int = 3) -> list[dict[str, Any]]:
    """Dataset characters whose core tags overlap the suggestion most (Jaccard), same gender."""
    tags = {h.tag for h in chosen if h.category not in ("count", "character")}
    if not tags or not characters:
        return []
    scored = []
    for char in characters:
        if gender in ("female", "male") and char.gender in ("female", "male") and char.gender != gender:
            continue
        core = set(char.core_tags)
        score = len(tags & core) / len(tags | core) if core else 0.0
        if score >= 0.15:
            scored.append((score, char))
    scored.sort(key=lambda pair: (-pair[0], pair[1].name))
    return [{"name": c.name, "score": round(s, 3), "gender": c.gender, "core_tags": list(c.core_tags)}
            for s, c in scored[:limit]]
