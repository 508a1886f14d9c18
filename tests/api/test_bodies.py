"""Request bodies: big JSON is parsed off the event loop, and a 422 names the field without echoing the input."""

from __future__ import annotations

import asyncio
import importlib
import json
import pkgutil
from typing import Any

import pytest
from fastapi import APIRouter
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

import neuralrp.api.routes
from neuralrp.api import bodies
from neuralrp.app import create_app

JSON = {"content-type": "application/json"}


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


@pytest.fixture
def client(make_settings: Any) -> Any:
    with TestClient(create_app(make_settings())) as client:
        yield client


def test_every_router_reads_bodies_through_the_off_loop_route() -> None:
    found = []
    for module in pkgutil.iter_modules(neuralrp.api.routes.__path__):
        router = getattr(importlib.import_module(f"neuralrp.api.routes.{module.name}"), "router", None)
        if not isinstance(router, APIRouter):
            continue
        found.append(module.name)
        assert router.route_class is bodies.OffLoopJSONRoute, module.name
        plain = [r.path for r in router.routes
                 if isinstance(r, APIRoute) and not isinstance(r, bodies.OffLoopJSONRoute)]
        assert not plain, f"{module.name}: {plain}"
    assert {"chats", "cardgen", "images", "library"} <= set(found)


def test_a_big_body_is_parsed_on_a_worker_thread(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    parsed: list[tuple[int, bool]] = []
    real = bodies.parse_json

    def recording(body: bytes) -> Any:
        parsed.append((len(body), _loop_running()))
        return real(body)

    monkeypatch.setattr(bodies, "parse_json", recording)
    story = "The keeper said \"mind the stairs\".\n" * 4000  # about 140 KB once escaped
    big = client.post("/api/chats", json={"card": {"name": "Keeper", "description": story, "first_mes": "Hello."}})
    small = client.post("/api/chats", json={"card": {"name": "Ada", "first_mes": "Hello."}})
    assert big.status_code == small.status_code == 201, big.text
    assert [on_loop for size, on_loop in parsed if size > bodies.BIG_BODY_BYTES] == [False]
    assert [on_loop for size, on_loop in parsed if size <= bodies.BIG_BODY_BYTES] == [True]
    card = client.get(f"/api/characters/{big.json()['cast'][0]['character_id']}").json()
    assert card["card"]["data"]["description"] == story  # orjson keeps every character


def test_malformed_big_json_is_a_short_422_about_the_body(client: Any) -> None:
    body = b'{"card": {"name": "' + b"x" * 200_000
    resp = client.post("/api/chats", content=body, headers=JSON)
    assert resp.status_code == 422, resp.text
    answer = resp.json()
    assert answer["error"] == "InvalidInput"
    assert answer["detail"].startswith("the request body: is not valid JSON at position")
    assert len(resp.content) < 1000


def test_a_422_names_the_field_and_cuts_the_input_short(client: Any) -> None:
    resp = client.post("/api/chats/export/training", json={"format": "y" * 1_000_000, "alpaca_history": 500})
    assert resp.status_code == 422, resp.text[:300]
    assert len(resp.content) < 2000
    answer = resp.json()
    assert answer["error"] == "InvalidInput"
    by_field = {e["field"]: e for e in answer["errors"]}
    assert set(by_field) == {"format", "alpaca_history"}
    assert "format: Input should be 'alpaca', 'sharegpt' or 'chatml'" in answer["detail"]
    assert "alpaca_history: Input should be less than or equal to 200" in answer["detail"]
    assert by_field["format"]["input"] == "y" * bodies.INPUT_SHOWN + "... (1000000 characters)"
    assert by_field["format"]["loc"] == ["body", "format"]
    assert by_field["alpaca_history"]["input"] == 500


def test_a_422_for_nested_items_whole_bodies_and_query_parameters(client: Any) -> None:
    item = client.post("/api/chats/export/training", json={"chat_ids": [1, "x" * 500]}).json()
    assert item["errors"][0]["field"] == "chat_ids[1]" and len(item["errors"][0]["input"]) < 130
    whole = client.post("/api/chats/export/training", json=list(range(100_000)))
    assert whole.status_code == 422 and len(whole.content) < 1000
    assert whole.json()["errors"][0] | {"msg": ""} == {
        "loc": ["body"], "field": "the request body", "msg": "", "type": "model_attributes_type",
        "input": "a list of 100000 items"}
    query = client.get("/api/images", params={"limit": "many"}).json()
    assert query["errors"][0]["field"] == "query parameter limit" and query["errors"][0]["input"] == "many"
    assert query["detail"].startswith("query parameter limit: Input should be a valid integer")


def test_a_422_lists_at_most_twenty_errors(client: Any) -> None:
    resp = client.post("/api/chats/export/training", json={"chat_ids": ["x"] * 500})
    answer = resp.json()
    assert len(answer["errors"]) == bodies.ERRORS_SHOWN
    assert answer["detail"].endswith(f"(and {500 - bodies.ERRORS_SHOWN} more errors)")


@pytest.mark.parametrize(("value", "expected"), [
    (None, None), (True, True), (7, 7), (2.5, 2.5), (10 ** 200, "a number of 201 digits"),
    ("short", "short"), ({}, "an empty object"), ({"a": 1, "b": 2}, "an object with 2 keys"),
    ([], "an empty list"), ([1, 2], "a list of 2 items"), (b"abc", "3 bytes"), (object(), "a value of type object"),
])
def test_shown_never_renders_a_container(value: Any, expected: Any) -> None:
    assert bodies.shown(value) == expected
    json.dumps(bodies.shown(value))  # always JSON-ready
