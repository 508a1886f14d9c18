"""`danbooru fetch` against the fake Danbooru API: exact requests, summaries, errors, no partial files."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from neuralrp.errors import InvalidInput
from neuralrp.images import danbooru_fetch as fetch
from neuralrp.images.danbooru_fetch import DanbooruError, load_dataset, run_fetch, summarise
from tests.fakes.fake_danbooru import FakeDanbooru

BASE = "https://danbooru.test"
BASIC = "Basic " + base64.b64encode(b"alice:k3y").decode()


def run(fake: FakeDanbooru, out: Path, **kwargs: object) -> list[fetch.DanbooruCharacter]:
    sleeps = kwargs.pop("sleeps", [])
    return run_fetch("alice", "k3y", out, base_url=BASE, transport=fake.transport(), delay=0,
                     sleep=sleeps.append, echo=lambda _line: None, **kwargs)  # type: ignore[arg-type, attr-defined]


def test_top_characters_are_paged_and_each_posts_search_is_exact(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fetch, "PAGE_SIZE", 2)
    fake = FakeDanbooru()
    found = run(fake, tmp_path / "chars.json", limit=3, posts=5)
    assert [c.name for c in found] == ["hatsune_miku", "hakurei_reimu", "saber_(fate)"]  # by post count
    paths = [(r.method, r.url.path, dict(r.url.params)) for r in fake.requests]
    assert paths == [
        ("GET", "/tags.json", {"search[category]": "4", "search[order]": "count", "limit": "2", "page": "1"}),
        ("GET", "/tags.json", {"search[category]": "4", "search[order]": "count", "limit": "2", "page": "2"}),
        ("GET", "/posts.json", {"tags": "hatsune_miku", "limit": "5"}),
        ("GET", "/posts.json", {"tags": "hakurei_reimu", "limit": "5"}),
        ("GET", "/posts.json", {"tags": "saber_(fate)", "limit": "5"}),
    ]
    for request in fake.requests:
        assert str(request.url).startswith(BASE + "/")
        assert request.headers["authorization"] == BASIC
        assert "k3y" not in str(request.url), "the key never travels in a URL (logs keep URLs)"


def test_short_last_page_stops_paging(tmp_path: Path) -> None:
    fake = FakeDanbooru()
    found = run(fake, tmp_path / "c.json", limit=50, posts=3)
    assert len(found) == 5
    tag_requests = [r for r in fake.requests if r.url.path == "/tags.json"]
    assert len(tag_requests) == 1 and tag_requests[0].url.params["limit"] == "50"


def test_dataset_file_holds_gender_and_core_tags_without_the_key(tmp_path: Path) -> None:
    out = tmp_path / "sub" / "characters.json"
    run(FakeDanbooru(), out, limit=5, posts=20)
    body = json.loads(out.read_text())
    assert body["format"] == "neuralrp-danbooru-characters" and body["version"] == 1
    assert body["source"] == BASE
    by_name = {c["name"]: c for c in body["characters"]}
    miku = by_name["hatsune_miku"]
    assert miku["gender"] == "female" and miku["post_count"] == 160000
    assert {"aqua_hair", "twintails", "very_long_hair", "necktie", "detached_sleeves"} <= set(miku["core_tags"])
    assert not {"1girl", "solo", "smile", "red_hair", "hug", "2girls"} & set(miku["core_tags"]), \
        "count tags, non-look tags and tags of crowd posts stay out"
    assert miku["posts_seen"] == 6, "solo posts only when there are enough of them"
    assert by_name["kirito"]["gender"] == "male"
    assert "k3y" not in out.read_text() and "alice" not in out.read_text()
    assert [c.name for c in load_dataset(out)] == [c["name"] for c in body["characters"]]


def test_named_characters_skip_unknown_names(tmp_path: Path) -> None:
    fake = FakeDanbooru()
    lines: list[str] = []
    found = run_fetch("alice", "k3y", tmp_path / "c.json", names=["kirito", "nobody_(nowhere)"], base_url=BASE,
                      transport=fake.transport(), delay=0, echo=lines.append)
    assert [c.name for c in found] == ["kirito"]
    assert fake.params(0) == {"search[name_comma]": "kirito,nobody_(nowhere)", "limit": "2"}
    assert fake.params(1) == {"tags": "kirito", "limit": "20"}
    assert "skipped nobody_(nowhere): Danbooru has no such tag" in lines


@pytest.mark.parametrize("code", [401, 403])
def test_bad_key_is_named_and_nothing_is_written(tmp_path: Path, code: int) -> None:
    out = tmp_path / "characters.json"
    out.write_text("old dataset")
    fake = FakeDanbooru()
    fake.fault("status", code=code)
    with pytest.raises(DanbooruError, match=f"refused the login or API key \\(HTTP {code}"):
        run(fake, out, limit=2)
    assert out.read_text() == "old dataset"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["characters.json"], "no temp file left"


def test_wrong_key_gets_the_real_401(tmp_path: Path) -> None:
    fake = FakeDanbooru(api_key="other")
    with pytest.raises(DanbooruError, match="HTTP 401"):
        run(fake, tmp_path / "c.json", limit=1)
    assert not (tmp_path / "c.json").exists()


def test_rate_limit_waits_retry_after_then_goes_on(tmp_path: Path) -> None:
    fake = FakeDanbooru()
    fake.fault("rate_limit", path="/posts.json", retry_after="7", times=2)
    sleeps: list[float] = []
    found = run(fake, tmp_path / "c.json", limit=1, posts=3, sleeps=sleeps)
    assert [c.name for c in found] == ["hatsune_miku"]
    assert sleeps == [7.0, 7.0]
    assert [r.url.path for r in fake.requests] == ["/tags.json"] + ["/posts.json"] * 3


def test_rate_limit_that_never_ends_fails_clearly(tmp_path: Path) -> None:
    fake = FakeDanbooru()
    fake.fault("rate_limit", retry_after="30", times=-1, path="/posts.json")
    with pytest.raises(DanbooruError, match="429 \\(rate limit\\).*wait 30 s"):
        run(fake, tmp_path / "c.json", limit=1)
    assert len(fake.requests) == 1 + 4, "three retries after the first try"
    assert list(tmp_path.iterdir()) == []


def test_network_failure_midway_leaves_no_file(tmp_path: Path) -> None:
    fake = FakeDanbooru()
    fake.fault("network", path="/posts.json")
    with pytest.raises(DanbooruError, match="cannot reach Danbooru at https://danbooru.test.*ConnectError"):
        run(fake, tmp_path / "c.json", limit=3)
    assert list(tmp_path.iterdir()) == []


def test_server_error_and_non_json_answers(tmp_path: Path) -> None:
    fake = FakeDanbooru()
    fake.fault("status", code=500, message="boom")
    with pytest.raises(DanbooruError, match="HTTP 500 for /tags.json"):
        run(fake, tmp_path / "c.json", limit=1)
    with pytest.raises(InvalidInput, match="login and API key are needed"):
        run_fetch("", "k3y", tmp_path / "c.json", transport=fake.transport())


def test_summarise_guesses_gender_from_counts() -> None:
    def post(general: str) -> dict[str, str]:
        return {"tag_string_general": general, "tag_string_character": "x"}

    boys = summarise("x", [post("1boy solo black_hair"), post("1boy black_hair sword"), post("1girl black_hair")])
    assert boys.gender == "male" and boys.core_tags[0] == "black_hair"
    assert "sword" in boys.core_tags and "solo" not in boys.core_tags
    assert summarise("x", [post("1other robot")]).gender == "other"
    assert summarise("x", [post("robot")]).gender == ""


def test_load_dataset_rejects_other_files(tmp_path: Path) -> None:
    bad = tmp_path / "c.json"
    bad.write_text('{"characters": []}')
    with pytest.raises(InvalidInput, match="not a NeuralRP Danbooru dataset"):
        load_dataset(bad)
    bad.write_text("{")
    with pytest.raises(InvalidInput, match="cannot read the Danbooru dataset"):
        load_dataset(bad)
