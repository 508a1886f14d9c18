"""Snapshot keywords: the LLM reads the recent chat and answers five short tag phrases as JSON; rules as fallback."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from neuralrp.errors import BackendError
from neuralrp.llm.answers import AnswerError, ask_json
from neuralrp.llm.types import ChatMessage, LLMBackend, SamplingParams

log = logging.getLogger(__name__)

FIELDS = ("location", "action", "activity", "dress", "expression")
SNAPSHOT_MESSAGES = 20
LINE_CHARS = 350
MAX_FIELD_CHARS = 80
PARAMS = SamplingParams(temperature=0.3, top_p=0.9, max_tokens=120)
INSTRUCTIONS = (
    "You describe the current moment of a roleplay as image-generation keywords. Read the chat and answer ONLY "
    "a JSON object with these five keys, each a short English phrase in Danbooru tag style (lowercase, no names "
    "of people, no full sentences):\n"
    '{"location": "2-5 words, where the scene takes place", '
    '"action": "2-3 words, what the main character does in the LAST message", '
    '"activity": "1-4 words, the ongoing activity", '
    '"dress": "2-4 words, what the main character wears", '
    '"expression": "1-2 words, facial expression"}\n'
    'Use "" for anything the chat does not tell.'
)
_UNSAFE = re.compile(r"[()\[\]{}<>:\\|\n\r\t]+")


@dataclass(frozen=True)
class Keywords:
    """The five snapshot keywords and where they came from ("llm" or "rules")."""

    values: dict[str, str]
    source: str


def transcript(lines: list[tuple[str, str]]) -> str:
    """`Speaker: text` lines, all but the last cut to LINE_CHARS (names stay; the answer is cleaned of them)."""
    out = []
    for i, (speaker, text) in enumerate(lines):
        body = " ".join(text.split())
        if i < len(lines) - 1 and len(body) > LINE_CHARS:
            body = body[:LINE_CHARS] + "..."
        out.append(f"{speaker}: {body}")
    return "\n".join(out)


def clean_phrase(value: str, names: list[str]) -> str:
    """A keyword phrase safe for an SD prompt: no weight brackets or colons, no names, lowercase, tidy commas."""
    text = _UNSAFE.sub(" ", value)
    for name in names:
        if name.strip():
            text = re.sub(rf"\b{re.escape(name.strip())}('s)?\b", " ", text, flags=re.IGNORECASE)
    parts = [" ".join(p.split()).lower() for p in text.split(",")]
    return ", ".join(p for p in parts if p)


def check_keywords(obj: dict[str, Any], names: list[str]) -> dict[str, str]:
    """The five keywords of an answer, validated and cleaned; AnswerError names the first problem."""
    out: dict[str, str] = {}
    for key in FIELDS:
        if key not in obj:
            raise AnswerError(f"'{key}' is missing; give all of {', '.join(FIELDS)}")
        value = obj[key]
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            value = ", ".join(value)
        if value is None:
            value = ""
        if not isinstance(value, str):
            raise AnswerError(f"'{key}' must be a string")
        if len(value) > MAX_FIELD_CHARS:
            raise AnswerError(f"'{key}' is too long ({len(value)} characters); use a few words")
        out[key] = clean_phrase(value, names)
    if not any(out.values()):
        raise AnswerError("every keyword is empty; describe at least the location or the action")
    return out


async def llm_keywords(backend: LLMBackend, lines: list[tuple[str, str]], names: list[str]) -> dict[str, str]:
    """Ask the LLM (one repair retry); BackendBadResponse when both answers are unusable."""
    messages = [ChatMessage("system", INSTRUCTIONS),
                ChatMessage("user", "Chat:\n" + transcript(lines) + "\n\nThe JSON object:")]
    return await ask_json(backend, messages, PARAMS, lambda obj: check_keywords(obj, names), "snapshot keywords")


async def extract_keywords(backend: LLMBackend | None, lines: list[tuple[str, str]], names: list[str]) -> Keywords:
    """LLM keywords, or the rule-based extractor when there is no LLM or it fails twice."""
    if backend is not None and lines:
        try:
            return Keywords(await llm_keywords(backend, lines, names), "llm")
        except BackendError as e:
            log.warning("snapshot keywords from rules: %s", e.message)
    else:
        log.info("snapshot keywords from rules: no LLM is configured")
    return Keywords(rule_keywords(lines, names), "rules")


# --- rule-based fallback --------------------------------------------------------------------------

Table = list[tuple[str, str]]

LOCATIONS: Table = [
    ("throne room", r"throne room"), ("greenhouse", r"greenhouse"), ("living room", r"living room"),
    ("bedroom", r"bedroom|\bbed\b"),
    ("kitchen", r"kitchen"), ("bathroom", r"bathroom|\bbath\b|shower"), ("classroom", r"classroom"),
    ("library", r"library"), ("tavern", r"tavern|\binn\b|\bpub\b"), ("bar", r"\bbar\b"),
    ("cafe", r"\bcaf[eé]\b|coffee shop"), ("restaurant", r"restaurant"), ("office", r"\boffice\b"),
    ("castle", r"castle|palace"), ("dungeon", r"dungeon"), ("church", r"church|temple|shrine"),
    ("forest", r"forest|woods|glade|grove"), ("beach", r"beach|shore"), ("ocean", r"ocean|\bsea\b"),
    ("lake", r"\blake\b"), ("river", r"river|stream"), ("mountain", r"mountain|cliff"), ("cave", r"\bcave"),
    ("desert", r"desert"), ("field", r"meadow|\bfield"), ("garden", r"garden"), ("park", r"\bpark\b"),
    ("city street", r"street|city|alley"), ("village", r"village|town"), ("market", r"market|shop\b|store\b"),
    ("school", r"school"), ("hospital", r"hospital|clinic"), ("rooftop", r"rooftop"), ("train", r"\btrain\b"),
    ("car interior", r"\bcar\b"), ("spaceship", r"spaceship|starship|space station"), ("ship", r"\bship\b|deck"),
    ("hallway", r"hallway|corridor"), ("indoors", r"\broom\b|house|home"),
]
ACTIONS: Table = [
    ("hug", r"\bhug|embrac"), ("kiss", r"\bkiss"), ("holding hands", r"holding hands|takes? (?:your|my) hand"),
    ("fighting", r"\bfight|\bsword\b|attack|strikes?\b"), ("pouring", r"\bpour"),
    ("sitting", r"\bsit|\bsat\b|seated"),
    ("lying", r"\blying\b|\blies\b|\blay\b|lays? down"), ("kneeling", r"kneel|knelt"),
    ("running", r"\brun|\bran\b|sprint"), ("walking", r"\bwalk|strolls?|steps? (?:closer|forward)"),
    ("standing", r"\bstand|\bstood\b"), ("reading", r"\bread(?:s|ing)\b|\bbook\b"),
    ("drinking", r"\bdrink|\bsips?\b|\bsipping\b"), ("eating", r"\beat(?:s|ing)?\b|\bate\b"),
    ("sleeping", r"\bsleep|\basleep\b"), ("dancing", r"\bdanc"), ("cooking", r"\bcook"),
    ("waving", r"\bwav(?:e|es|ing)\b"), ("pointing", r"\bpoint(?:s|ing)\b"), ("looking at viewer", r"\blooks? at\b"),
    ("holding", r"\bhold"),
]
ACTIVITIES: Table = [
    ("fighting", r"\bfight|battle|duel"), ("drinking", r"\bdrink|\bale\b|\bwine\b|\bbeer\b|\btea\b"),
    ("eating", r"\beat(?:s|ing)?\b|\bmeal\b|dinner|lunch|breakfast"), ("reading", r"\bread(?:s|ing)\b|\bbook"),
    ("studying", r"\bstudy|homework"), ("cooking", r"\bcook"), ("dancing", r"\bdanc"),
    ("training", r"\btrain(?:s|ing)\b"),
    ("healing", r"\bheal"), ("shopping", r"shopping"), ("swimming", r"\bswim"), ("sleeping", r"\bsleep"),
    ("conversation", r"\bsays?\b|\bsaid\b|\btalk|\bask"),
]
DRESS: Table = [
    ("school uniform", r"school uniform"), ("maid outfit", r"\bmaid\b"), ("armor", r"armou?r"),
    ("kimono", r"kimono|yukata"), ("wedding dress", r"wedding dress"), ("dress", r"\bdress\b|\bgown\b"),
    ("robe", r"\brobes?\b"), ("cloak", r"\bcloak|\bcape\b"), ("suit", r"\bsuit\b|\btuxedo"),
    ("uniform", r"uniform"), ("hoodie", r"hoodie"), ("jacket", r"jacket|\bcoat\b"), ("sweater", r"sweater"),
    ("t-shirt", r"t-shirt|tee\b"), ("shirt", r"\bshirt|blouse"), ("skirt", r"skirt"),
    ("jeans", r"jeans|trousers|pants"),
    ("pajamas", r"pajamas|pyjamas|nightgown"), ("swimsuit", r"swimsuit|bikini"), ("apron", r"apron"),
    ("towel", r"\btowel"), ("nude", r"\bnaked\b|\bnude\b"),
]
EXPRESSIONS: Table = [
    ("crying", r"\bcr(?:y|ies|ying|ied)\b|tears|\bsob"), ("laughing", r"\blaugh|giggl|chuckl"),
    ("blush", r"\bblush"), ("angry", r"\bangry|anger|\bglar|scowl|furious"), ("smirk", r"smirk"),
    ("smile", r"\bsmil|\bgrin"), ("surprised", r"surpris|\bgasp|shock|wide-eyed"), ("frown", r"frown"),
    ("sad", r"\bsad\b|sorrow|\bsigh"), ("scared", r"scared|afraid|\bfear|terrified"),
    ("worried", r"worri|nervous|anxious"), ("sleepy", r"sleepy|\byawn"), ("serious", r"serious|stern"),
]


def _first_match(texts: list[str], table: Table) -> str:
    """The first table entry found, searching the newest text first."""
    compiled = [(tag, re.compile(pattern, re.IGNORECASE)) for tag, pattern in table]
    for text in texts:
        for tag, pattern in compiled:
            if pattern.search(text):
                return tag
    return ""


def rule_keywords(lines: list[tuple[str, str]], names: list[str]) -> dict[str, str]:
    """Keywords by word lists: action from the last message, the rest from the newest message that tells."""
    texts = [text for _, text in reversed(lines)]
    found = {
        "location": _first_match(texts, LOCATIONS),
        "action": _first_match(texts[:1], ACTIONS),
        "activity": _first_match(texts, ACTIVITIES),
        "dress": _first_match(texts, DRESS),
        "expression": _first_match(texts[:3], EXPRESSIONS),
    }
    return {k: clean_phrase(v, names) for k, v in found.items()}
