"""A fake Danbooru JSON API for `neuralrp danbooru fetch`, served through `httpx.MockTransport`.

`FakeDanbooru(characters=None, login="alice", api_key="k3y")` answers like danbooru.donmai.us:

* `GET /tags.json`: `search[category]`, `search[order]=count` (post_count descending), `search[name_comma]`,
  `limit` (default 20, at most 1000), `page` (1-based).  Items `{id, name, post_count, category,
  created_at, updated_at, is_deprecated, words}`.
* `GET /posts.json?tags=NAME&limit=N` (default 20, at most 200): newest first, items `{id, created_at, rating,
  score, tag_string, tag_string_general, tag_string_character, tag_string_copyright, tag_string_artist,
  tag_string_meta, ...}`.  More than 2 tags in a search -> 422 like Danbooru for basic users.
* Auth: HTTP Basic `login:api_key` or the `login`/`api_key` URL parameters; wrong ones -> 401
  `{"success": false, "error": "SessionLoader::AuthenticationFailure", "message": ...}`; none -> anonymous.

`requests` records every request (httpx.Request).  Faults, consumed in order: `fault("status", code=403)`,
`fault("rate_limit", retry_after="7")` (429 with Retry-After), `fault("network")` (httpx.ConnectError);
`times=` repeats one (`times=-1`: forever), `path=` limits it to "/tags.json" or "/posts.json".
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

import httpx

GENERAL = "tag_string_general"


@dataclass
class FakeCharacter:
    """A character tag and how its posts are tagged."""

    name: str
    post_count: int
    general: list[str]  # tags on every post
    extras: list[str] = field(default_factory=list)  # rotate over the posts (one each)
    copyright: str = "original"
    posts: int = 6
    crowd_posts: int = 0  # extra posts with another character and 2girls


DEFAULT_CHARACTERS = [
    FakeCharacter("hatsune_miku", 160000, ["1girl", "solo", "aqua_hair", "twintails", "very_long_hair", "aqua_eyes",
                                           "necktie", "detached_sleeves", "skirt", "smile"],
                  ["open_mouth", "thighhighs", "headphones"], "vocaloid", crowd_posts=3),
    FakeCharacter("aqua_(konosuba)", 15000, ["1girl", "solo", "blue_hair", "long_hair", "hair_rings", "blue_eyes",
                                             "detached_sleeves", "blue_skirt", "thighhighs"],
                  ["looking_at_viewer", "bare_shoulders"], "kono_subarashii_sekai_ni_shukufuku_wo!"),
    FakeCharacter("hakurei_reimu", 90000, ["1girl", "solo", "brown_hair", "hair_bow", "red_bow", "hair_tubes",
                                           "detached_sleeves", "brown_eyes", "skirt"], ["frills"], "touhou"),
    FakeCharacter("kirito", 20000, ["1boy", "solo", "black_hair", "short_hair", "black_eyes", "black_coat", "sword"],
                  ["gloves"], "sword_art_online"),
    FakeCharacter("saber_(fate)", 70000, ["1girl", "solo", "blonde_hair", "green_eyes", "ahoge", "armor", "dress"],
                  ["sidelocks", "braid"], "fate_(series)"),
]


@dataclass
class _Fault:
    kind: str
    path: str | None
    times: int
    options: dict[str, Any]


class FakeDanbooru:
    """In-process fake of the Danbooru API (see module doc)."""

    def __init__(self, characters: list[FakeCharacter] | None = None, *, login: str = "alice",
                 api_key: str = "k3y") -> None:
        self.characters = list(DEFAULT_CHARACTERS if characters is None else characters)
        self.login = login
        self.api_key = api_key
        self.requests: list[httpx.Request] = []
        self._faults: list[_Fault] = []

    def transport(self) -> httpx.MockTransport:
        """A transport for httpx.Client(transport=...)."""
        return httpx.MockTransport(self.handle)

    def fault(self, kind: str, *, path: str | None = None, times: int = 1, **options: Any) -> None:
        """Queue a fault: status (code), rate_limit (retry_after), network."""
        assert kind in ("status", "rate_limit", "network"), kind
        self._faults.append(_Fault(kind, path, times, options))

    def params(self, index: int = -1) -> dict[str, str]:
        """Query parameters of a recorded request."""
        return dict(self.requests[index].url.params)

    def handle(self, request: httpx.Request) -> httpx.Response:
        """Answer one request."""
        self.requests.append(request)
        fault = self._take_fault(request.url.path)
        if fault is not None:
            return self._faulted(fault, request)
        denied = self._check_auth(request)
        if denied is not None:
            return denied
        if request.method != "GET":
            return _json({"success": False, "error": "ActionController::RoutingError"}, 404)
        if request.url.path == "/tags.json":
            return self._tags(request.url.params)
        if request.url.path == "/posts.json":
            return self._posts(request.url.params)
        return _json({"success": False, "error": "ActionController::RoutingError", "message": "Not found"}, 404)

    def _take_fault(self, path: str) -> _Fault | None:
        for fault in self._faults:
            if fault.path in (None, path) and fault.times != 0:
                fault.times -= 1
                return fault
        return None

    def _faulted(self, fault: _Fault, request: httpx.Request) -> httpx.Response:
        if fault.kind == "network":
            raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
        if fault.kind == "rate_limit":
            headers = {"Retry-After": str(fault.options.get("retry_after", "2"))}
            return _json({"success": False, "error": "Rate limited"}, 429, headers)
        code = int(fault.options.get("code", 500))
        return _json({"success": False, "error": fault.options.get("error", "Error"),
                      "message": fault.options.get("message", "fault")}, code)

    def _check_auth(self, request: httpx.Request) -> httpx.Response | None:
        login, key = request.url.params.get("login"), request.url.params.get("api_key")
        header = request.headers.get("authorization", "")
        if header.startswith("Basic "):
            login, _, key = base64.b64decode(header[6:]).decode().partition(":")
        if login is None and key is None:
            return None
        if (login, key) != (self.login, self.api_key):
            return _json({"success": False, "error": "SessionLoader::AuthenticationFailure",
                          "message": "Invalid API key"}, 401)
        return None

    def _tags(self, params: httpx.QueryParams) -> httpx.Response:
        items = [self._tag_json(i, c) for i, c in enumerate(self.characters, 1)]
        if "search[category]" in params:
            items = [t for t in items if str(t["category"]) == params["search[category]"]]
        if "search[name_comma]" in params:
            wanted = params["search[name_comma]"].split(",")
            items = [t for t in items if t["name"] in wanted]
        if params.get("search[order]") == "count":
            items.sort(key=lambda t: -t["post_count"])
        limit, page = min(int(params.get("limit", 20)), 1000), int(params.get("page", 1))
        return _json(items[(page - 1) * limit: page * limit])

    @staticmethod
    def _tag_json(index: int, char: FakeCharacter) -> dict[str, Any]:
        return {"id": 1000 + index, "name": char.name, "post_count": char.post_count, "category": 4,
                "created_at": "2010-01-01T00:00:00.000-05:00", "updated_at": "2024-01-01T00:00:00.000-05:00",
                "is_deprecated": False, "words": char.name.split("_")}

    def _posts(self, params: httpx.QueryParams) -> httpx.Response:
        tags = params.get("tags", "").split()
        if len(tags) > 2:
            return _json({"success": False, "error": "PostQuery::TagLimitError",
                          "message": "You cannot search for more than 2 tags at a time."}, 422)
        limit = min(int(params.get("limit", 20)), 200)
        posts = [p for c in self.characters for p in self._posts_of(c) if set(tags) <= set(p["tag_string"].split())]
        posts.sort(key=lambda p: -p["id"])
        return _json(posts[:limit])

    def posts_of(self, name: str) -> list[dict[str, Any]]:
        """Every post the fake has for a character."""
        return self._posts_of(next(c for c in self.characters if c.name == name))

    def _posts_of(self, char: FakeCharacter) -> list[dict[str, Any]]:
        base = 10_000 * (self.characters.index(char) + 1)
        out = []
        for n in range(char.posts):
            extra = [char.extras[n % len(char.extras)]] if char.extras else []
            out.append(_post(base + n, char.general + extra, [char.name], char.copyright))
        other = next((c for c in self.characters if c is not char), None)
        for n in range(char.crowd_posts):
            names = [char.name] + ([other.name] if other else [])
            out.append(_post(base + 500 + n, ["2girls", "multiple_girls", "red_hair", "hug"], names, char.copyright))
        return out


def _post(post_id: int, general: list[str], characters: list[str], copyright_tag: str) -> dict[str, Any]:
    general = sorted(set(general))
    meta, artist = ["highres"], [f"artist_{post_id % 7}"]
    return {
        "id": post_id, "created_at": "2024-05-01T12:00:00.000-04:00", "rating": "g", "score": 10,
        "tag_string": " ".join(sorted(general + characters + [copyright_tag] + meta + artist)),
        GENERAL: " ".join(general), "tag_string_character": " ".join(sorted(characters)),
        "tag_string_copyright": copyright_tag, "tag_string_artist": " ".join(artist),
        "tag_string_meta": " ".join(meta), "tag_count_general": len(general), "file_ext": "jpg",
        "image_width": 1000, "image_height": 1400,
    }


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, content=json.dumps(body).encode(), headers={
        "content-type": "application/json; charset=utf-8", **(headers or {})})
