"""`neuralrp danbooru fetch`: an optional character dataset built from the Danbooru API.

For each character tag (the most used ones, or those named), the latest posts are read and their most
frequent general tags kept as the character's core look, with a gender guessed from 1girl/1boy counts.
The file is written only when everything was fetched (temp file + rename); the API key is never stored.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from neuralrp.clock import iso
from neuralrp.errors import InvalidInput, NeuralRPError
from neuralrp.library.files import write_atomic

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://danbooru.donmai.us"
DATASET_FORMAT = "neuralrp-danbooru-characters"
DATASET_VERSION = 1
CHARACTER_CATEGORY = 4
PAGE_SIZE = 200  # Danbooru allows up to 1000 tags and 200 posts a page
CORE_SIZE = 15
MIN_SHARE = 0.3  # a core tag is on at least this share of the character's posts
_COUNT_TAG = re.compile(r"^(\d+\+?(girl|boy|other)s?|solo|solo_focus|multiple_(girls|boys|others)|no_humans)$")
NOT_LOOKS = {
    "looking_at_viewer", "smile", "open_mouth", "closed_mouth", "blush", "simple_background", "white_background",
    "upper_body", "full_body", "cowboy_shot", "portrait", "standing", "sitting", "closed_eyes", "holding", "teeth",
    "parted_lips", "looking_back", "looking_at_another", "from_behind", "from_side", "outdoors", "indoors", "day",
    "night", "sky", "cloud", "grey_background", "transparent_background", "signature", "dated", "english_text",
    "speech_bubble", "artist_name", "one_eye_closed", "tongue", "tongue_out", ":d", ":o", "grin", "sweat", "v",
    "hand_up", "arm_up", "arms_up", "heart", "motion_lines", "chibi", "monochrome", "greyscale", "comic",
    "translated", "twitter_username", "gradient_background", "character_name", "copyright_name", "blurry",
}


class DanbooruError(NeuralRPError):
    """Danbooru refused, failed or could not be reached; nothing was written."""

    status_code = 502


@dataclass(frozen=True)
class DanbooruCharacter:
    """One character of the dataset."""

    name: str
    gender: str  # female | male | other | ''
    core_tags: tuple[str, ...]
    post_count: int = 0
    posts_seen: int = 0

    def public(self) -> dict[str, Any]:
        """JSON form of the dataset file."""
        return {"name": self.name, "gender": self.gender, "core_tags": list(self.core_tags),
                "post_count": self.post_count, "posts_seen": self.posts_seen}


def dataset_path(data_dir: Path) -> Path:
    """Where the dataset lives by default: DATA_DIR/danbooru/characters.json."""
    return data_dir / "danbooru" / "characters.json"


class DanbooruClient:
    """Authenticated GETs against the Danbooru JSON API, with 429 retries and a polite delay."""

    def __init__(self, login: str, api_key: str, *, base_url: str = DEFAULT_BASE_URL,
                 transport: httpx.BaseTransport | None = None, timeout: float = 30.0, delay: float = 1.0,
                 max_retries: int = 3, sleep: Callable[[float], None] = time.sleep) -> None:
        self.base_url = base_url.rstrip("/")
        # HTTP Basic (login:api_key), which Danbooru accepts like its login/api_key URL parameters, keeps
        # the key out of URLs and so out of request logs
        self._client = httpx.Client(base_url=self.base_url, transport=transport, timeout=timeout,
                                    auth=(login, api_key), headers={"User-Agent": "NeuralRP danbooru-fetch"})
        self.delay = delay
        self.max_retries = max_retries
        self._sleep = sleep
        self._last = 0.0

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._client.close()

    def __enter__(self) -> DanbooruClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get(self, path: str, params: dict[str, Any]) -> Any:
        """GET path with the login and key; JSON answer, or DanbooruError saying what went wrong."""
        for attempt in range(self.max_retries + 1):
            self._wait()
            try:
                response = self._client.get(path, params=params)
            except httpx.TransportError as e:
                raise DanbooruError(f"cannot reach Danbooru at {self.base_url} ({type(e).__name__}: {e}); "
                                    "check your internet connection or --base-url") from e
            if response.status_code != 429:
                return _answer(response, path)
            wait = _retry_after(response, attempt)
            if attempt < self.max_retries:
                log.info("Danbooru rate limit on %s; waiting %.1f s", path, wait)
                self._sleep(wait)
        raise DanbooruError(f"Danbooru kept answering 429 (rate limit) for {path} after {self.max_retries} "
                            f"retries; wait {wait:.0f} s and run the command again, or lower --limit")

    def _wait(self) -> None:
        gap = self.delay - (time.monotonic() - self._last)
        if self._last and gap > 0:
            self._sleep(gap)
        self._last = time.monotonic()

    def character_tags(self, limit: int) -> list[dict[str, Any]]:
        """The `limit` most used character tags, page by page."""
        found: list[dict[str, Any]] = []
        page, size = 1, min(PAGE_SIZE, limit)  # one page size throughout: Danbooru's offset is (page-1)*limit
        while len(found) < limit:
            batch = self.get("/tags.json", {"search[category]": CHARACTER_CATEGORY, "search[order]": "count",
                                            "limit": size, "page": page})
            found += [t for t in batch if isinstance(t, dict) and isinstance(t.get("name"), str)]
            if len(batch) < size:
                break
            page += 1
        return found[:limit]

    def named_tags(self, names: Sequence[str]) -> list[dict[str, Any]]:
        """The tag records of the named tags (unknown names are missing from the answer)."""
        found: list[dict[str, Any]] = []
        for start in range(0, len(names), PAGE_SIZE):
            chunk = list(names[start:start + PAGE_SIZE])
            found += self.get("/tags.json", {"search[name_comma]": ",".join(chunk), "limit": len(chunk)})
        return [t for t in found if isinstance(t, dict) and isinstance(t.get("name"), str)]

    def posts(self, tag: str, limit: int) -> list[dict[str, Any]]:
        """The latest `limit` posts with this tag."""
        batch = self.get("/posts.json", {"tags": tag, "limit": limit})
        return [p for p in batch if isinstance(p, dict)]


def _answer(response: httpx.Response, path: str) -> Any:
    if response.status_code in (401, 403):
        raise DanbooruError(f"Danbooru refused the login or API key (HTTP {response.status_code} for {path}); "
                            "check --login/--api-key (or DANBOORU_LOGIN/DANBOORU_API_KEY): the key is made on "
                            "your Danbooru profile page under API Key")
    if response.status_code >= 400:
        raise DanbooruError(f"Danbooru answered HTTP {response.status_code} for {path}: {response.text[:200]}")
    try:
        body = response.json()
    except ValueError as e:
        raise DanbooruError(f"Danbooru sent something that is not JSON for {path}") from e
    if not isinstance(body, list):
        raise DanbooruError(f"Danbooru sent an unexpected answer for {path} (expected a JSON list)")
    return body


def _retry_after(response: httpx.Response, attempt: int) -> float:
    try:
        return max(0.0, float(response.headers.get("retry-after", "")))
    except ValueError:
        return float(2 ** attempt)


def summarise(name: str, posts: Sequence[dict[str, Any]], *, post_count: int = 0,
              core_size: int = CORE_SIZE) -> DanbooruCharacter:
    """A character's core look from its posts (solo posts preferred) and a gender from 1girl/1boy counts."""
    solo = [p for p in posts if str(p.get("tag_string_character", "")).split() == [name]]
    used = solo if len(solo) >= 3 else list(posts)
    counts: Counter[str] = Counter()
    for post in used:
        counts.update(set(str(post.get("tag_string_general", "")).split()))
    girls, boys, others = counts["1girl"], counts["1boy"], counts["1other"]
    gender = "female" if girls > boys else "male" if boys > girls else "other" if others else ""
    minimum = max(1, round(MIN_SHARE * len(used)))
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    core = [t for t, n in ranked if n >= minimum and not _COUNT_TAG.match(t) and t not in NOT_LOOKS]
    return DanbooruCharacter(name, gender, tuple(core[:core_size]), post_count, len(used))


def fetch_dataset(client: DanbooruClient, *, names: Sequence[str] = (), limit: int = 100, posts: int = 20,
                  echo: Callable[[str], None] = log.info) -> list[DanbooruCharacter]:
    """Fetch the characters (named ones, or the `limit` most used) and summarise each."""
    if names:
        records = client.named_tags(names)
        known = {t["name"] for t in records}
        for missing in [n for n in names if n not in known]:
            echo(f"skipped {missing}: Danbooru has no such tag")
        records = [t for t in records if t.get("category", CHARACTER_CATEGORY) == CHARACTER_CATEGORY]
    else:
        records = client.character_tags(limit)
    out = []
    for number, record in enumerate(records, 1):
        found = client.posts(record["name"], posts)
        char = summarise(record["name"], found, post_count=int(record.get("post_count") or 0))
        echo(f"[{number}/{len(records)}] {char.name}: {char.gender or 'gender unknown'}, "
             f"{len(char.core_tags)} core tags")
        out.append(char)
    return out


def write_dataset(path: Path, characters: Sequence[DanbooruCharacter], *, source: str) -> None:
    """Write the dataset JSON atomically (a temp file renamed over the target)."""
    body = {"format": DATASET_FORMAT, "version": DATASET_VERSION, "source": source, "fetched_at": iso(),
            "characters": [c.public() for c in characters]}
    write_atomic(path, json.dumps(body, ensure_ascii=False, indent=1).encode("utf-8"))


def load_dataset(path: Path) -> list[DanbooruCharacter]:
    """Read a dataset file; InvalidInput naming the file when it is not one."""
    try:
        body = json.loads(path.read_bytes())
    except (OSError, ValueError) as e:
        raise InvalidInput(f"{path}: cannot read the Danbooru dataset ({e})") from e
    if not isinstance(body, dict) or body.get("format") != DATASET_FORMAT or not isinstance(
            body.get("characters"), list):
        raise InvalidInput(f"{path}: not a NeuralRP Danbooru dataset (run `neuralrp danbooru fetch` again)")
    out = []
    for item in body["characters"]:
        if isinstance(item, dict) and isinstance(item.get("name"), str):
            tags = tuple(t for t in item.get("core_tags") or [] if isinstance(t, str))
            out.append(DanbooruCharacter(item["name"], str(item.get("gender") or ""), tags,
                                         int(item.get("post_count") or 0), int(item.get("posts_seen") or 0)))
    return out


def run_fetch(login: str, api_key: str, out: Path, *, names: Sequence[str] = (), limit: int = 100,
              posts: int = 20, base_url: str = DEFAULT_BASE_URL, transport: httpx.BaseTransport | None = None,
              delay: float = 1.0, sleep: Callable[[float], None] = time.sleep,
              echo: Callable[[str], None] = log.info) -> list[DanbooruCharacter]:
    """Fetch and write the dataset; on any error nothing is written and the old file stays."""
    if not login.strip() or not api_key.strip():
        raise InvalidInput("a Danbooru login and API key are needed: --login/--api-key or "
                           "DANBOORU_LOGIN/DANBOORU_API_KEY")
    with DanbooruClient(login.strip(), api_key.strip(), base_url=base_url, transport=transport, delay=delay,
                        sleep=sleep) as client:
        characters = fetch_dataset(client, names=names, limit=limit, posts=posts, echo=echo)
    if not characters:
        raise DanbooruError("Danbooru returned no characters; nothing was written")
    write_dataset(out, characters, source=base_url.rstrip("/"))
    return characters
