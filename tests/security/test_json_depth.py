"""The JSON depth check: the fast scan agrees with a byte-by-byte reference, and a big body never holds the loop."""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from neuralrp import security
from neuralrp.app import create_app
from neuralrp.config import load_settings
from neuralrp.security import json_depth_exceeds

GATE_TIMEOUT_S = 20.0


def reference_exceeds(body: bytes, limit: int) -> bool:
    """The plain scan the fast one must agree with: one byte at a time, strings and escapes skipped."""
    depth = 0
    in_string = escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            if depth > limit:
                return True
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return False


def random_value(rng: random.Random, depth: int) -> Any:
    """A random JSON value whose strings are full of brackets, quotes and backslashes."""
    roll = rng.random()
    if depth > 0 and roll < 0.35:
        return [random_value(rng, depth - 1) for _ in range(rng.randrange(4))]
    if depth > 0 and roll < 0.6:
        return {rng.choice(["a", "[", '\\"', "{}", "\\\\"]): random_value(rng, depth - 1) for _ in range(3)}
    if roll < 0.8:
        return "".join(rng.choice('ab[]{}"\\\n') for _ in range(rng.randrange(8)))
    return rng.choice([1, 2.5, None, True])


def cut(body: bytes, rng: random.Random) -> list[bytes]:
    """The body split at random places, as it arrives from a socket."""
    points = sorted(rng.sample(range(len(body) + 1), min(len(body) + 1, rng.randrange(1, 8))))
    return [body[a:b] for a, b in zip([0, *points], [*points, len(body)], strict=True)]


def test_fast_scan_agrees_with_the_byte_scan_on_random_json() -> None:
    rng = random.Random(13)
    for _ in range(1500):
        body = json.dumps(random_value(rng, rng.randrange(12))).encode()
        chunks = cut(body, rng)
        for limit in (1, 2, 3, 5, 8):
            expected = reference_exceeds(body, limit)
            for step in (1, 2, 3, 7, 1 << 20):  # tiny steps put escapes and runs on every boundary
                assert json_depth_exceeds(body, limit, slice_bytes=step) is expected, (body, limit, step)
                assert json_depth_exceeds(chunks, limit, slice_bytes=step) is expected, (chunks, limit, step)


@pytest.mark.parametrize("text, limit, deep", [
    (b'["\\\\"]', 1, False),                       # an escaped backslash ends right before the closing quote
    (b'["\\\\\\"[[[["]', 1, False),                # \\ then \" : the brackets are still inside the string
    (b'["\\\\\\\\"' + b"[" * 5 + b"]" * 5 + b"]", 3, True),  # \\\\ then a real quote: the brackets count
    (b"[" * 65 + b"]" * 65, 64, True),
    (b"[" * 64 + b"]" * 64, 64, False),
    (b'{"a": [' + b'"x",' * 1000 + b'{"b": {}}]}', 4, False),
    (b'{"a": [' + b'"x",' * 1000 + b'{"b": {"c": []}}]}', 4, True),
])
def test_escapes_and_limits(text: bytes, limit: int, deep: bool) -> None:
    assert reference_exceeds(text, limit) is deep
    for step in (1, 2, 3, 1 << 20):
        assert json_depth_exceeds(text, limit, slice_bytes=step) is deep
        assert json_depth_exceeds([text[:5], text[5:6], text[6:]], limit, slice_bytes=step) is deep


def test_a_megabyte_string_of_backslashes_across_chunks() -> None:
    body = b'["' + b"\\\\" * 400_000 + b'\\"[[[[", [[1]]]'
    chunks = [body[i:i + 65_537] for i in range(0, len(body), 65_537)]
    assert not json_depth_exceeds(chunks, 3)
    assert json_depth_exceeds(chunks, 2)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = load_settings(overrides={"paths": {"data_dir": str(tmp_path / "data")}}, environ={})
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as test_client:
        yield test_client


def test_a_big_json_body_is_checked_off_the_event_loop(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """While the depth check of a 6 MiB body is held, /api/system/health still answers: the check is not on
    the loop (were it, health would only answer after the gate timed out, and `released` would say so)."""
    entered, release = threading.Event(), threading.Event()
    released: list[bool] = []
    real = security.json_depth_exceeds

    def held(body: Any, limit: int, **kwargs: Any) -> bool:
        chunks = [body] if isinstance(body, bytes) else list(body)
        if sum(map(len, chunks)) > 1 << 20:
            entered.set()
            released.append(release.wait(GATE_TIMEOUT_S))
        return real(chunks, limit, **kwargs)

    monkeypatch.setattr(security, "json_depth_exceeds", held)
    body = json.dumps({"name": "Big world", "notes": "x" * (6 << 20)}).encode()
    with ThreadPoolExecutor(1) as pool:
        big = pool.submit(client.post, "/api/worlds", content=body, headers={"content-type": "application/json"})
        assert entered.wait(GATE_TIMEOUT_S), "the depth check never started"
        assert client.get("/api/system/health").json() == {"status": "ok"}
        release.set()
        assert big.result(GATE_TIMEOUT_S).status_code == 201
    assert released == [True]


def test_a_big_body_nested_too_deep_is_still_refused(client: TestClient) -> None:
    body = b'{"name": "Deep", "notes": "' + b"y" * (2 << 20) + b'", "x": ' + b"[" * 65 + b"]" * 65 + b"}"
    resp = client.post("/api/worlds", content=body, headers={"content-type": "application/json"})
    assert resp.status_code == 422
    assert resp.json()["detail"] == "the JSON body nests deeper than 64 levels (security.max_json_depth)"
    assert client.get("/api/worlds").json() == []
