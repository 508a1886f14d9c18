"""Round trips through the library with a strict recursive diff: cards, worlds and chats come back key for key,
type for type, as the files had them (tests/fixtures plus synthetic modern SillyTavern files)."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from neuralrp.chats.backfill import run_pending
from neuralrp.chats.importer import import_bytes
from neuralrp.chats.st_io import export_st_chat
from neuralrp.library import pngchunks
from neuralrp.library.cardfile import ST_UPGRADE_EXTENSIONS, parse_card
from neuralrp.library.service import Library
from tests.conftest import FIXTURES
from tests.library.strict import json_diff

CARDS = sorted((FIXTURES / "cards").iterdir())
CHATS = sorted((FIXTURES / "chats").iterdir())
WORLDS = sorted((FIXTURES / "worlds").iterdir())


def chunks(png: bytes) -> dict[str, Any]:
    """The card JSON of each card chunk of a PNG."""
    return {c.keyword: json.loads(base64.b64decode(c.text)) for c in pngchunks.read_text_chunks(png)}


def as_spec(card: dict[str, Any], spec: str, version: str) -> dict[str, Any]:
    return {**card, "spec": spec, "spec_version": version}


def test_the_diff_sees_types_and_keys() -> None:
    assert json_diff({"a": [1, {"b": True}]}, {"a": [1, {"b": True}]}) == []
    assert json_diff({"a": 1}, {"a": True}) == ["$.a: int 1 became bool True"]
    assert json_diff({"a": 1}, {"a": 1.0}) == ["$.a: int 1 became float 1.0"]
    assert json_diff({"a": {"b": None}}, {"a": {}}) == ["$.a.b: lost"]
    assert json_diff([{"x": "1"}], [{"x": "1", "y": 2}]) == ["$[0].y: added (2)"]


# --- cards ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", CARDS, ids=lambda p: p.name)
def test_card_comes_back_key_for_key(library: Library, path: Path) -> None:
    source = parse_card(path.read_bytes(), path.name)
    result = library.import_card(path.read_bytes(), path.name)
    assert result.status == "imported" and result.id is not None
    as_json = json.loads(library.export_card(result.id, "json")[0])
    png = library.export_card(result.id, "png")[0]
    found = chunks(png)
    if source.spec in ("v2", "v3"):  # every key of the file, its book included, at every level
        assert json_diff(source.raw, as_json) == []
        assert json_diff(as_spec(source.raw, "chara_card_v2", "2.0"), found["chara"]) == []
        assert json_diff(as_spec(source.raw, "chara_card_v3", "3.0"), found["ccv3"]) == []
    else:  # V1 and Pygmalion come back upgraded as SillyTavern upgrades them, and stay so
        again = json.loads(library.export_card(result.id, "json")[0])
        reread = parse_card(json.dumps(as_json).encode(), "again.json").to_card()
        assert json_diff(as_json, again) == [] and json_diff(as_json, reread) == []
        assert json_diff({**as_json, "spec": "chara_card_v3", "spec_version": "3.0"}, found["ccv3"]) == []
    if source.avatar_png is not None:
        assert parse_card(png, "x.png").avatar_png == source.avatar_png, "the art comes back byte for byte"


@pytest.mark.parametrize("name", ["tavern_v1_Aqua.png", "ooba_Example_pygmalion.json"])
def test_v1_and_pygmalion_upgrades_fill_sillytavern_defaults(name: str) -> None:
    path = FIXTURES / "cards" / name
    card = parse_card(path.read_bytes(), name).to_card()
    data = card["data"]
    assert json_diff(ST_UPGRADE_EXTENSIONS, data["extensions"]) == []
    assert data["extensions"]["talkativeness"] == 0.5 and data["extensions"]["fav"] is False
    assert data["extensions"]["depth_prompt"] == {"prompt": "", "depth": 4, "role": "system"}
    assert data["extensions"]["world"] == "" and data["group_only_greetings"] == [] and data["creator"] == ""
    assert (card["creator"], card["talkativeness"], card["fav"], card["avatar"]) == ("", 0.5, False, "none")
    assert card["spec"] == "chara_card_v2" and card["name"] == data["name"]


def test_upgrade_keeps_the_cards_own_values() -> None:
    v1 = {"name": "Old", "talkativeness": "0.8", "fav": True, "creator": "me", "extensions": {"world": "Mine"}}
    from neuralrp.library.cardfile import card_from_object

    card = card_from_object(v1).to_card()
    ext = card["data"]["extensions"]
    assert (ext["talkativeness"], ext["fav"], ext["world"]) == ("0.8", True, "Mine")
    assert card["data"]["creator"] == card["creator"] == "me" and card["talkativeness"] == "0.8"
    pyg = card_from_object({"char_name": "P", "creator": "c", "tags": ["x"], "creatorcomment": "n"}).to_card()
    assert (pyg["data"]["creator"], pyg["data"]["tags"], pyg["data"]["creator_notes"]) == ("c", ["x"], "n")


# --- worlds -----------------------------------------------------------------------------------------


def modern_world() -> dict[str, Any]:
    """A World Info file with SillyTavern's current entry fields and unknown keys at every level."""
    entry = {"uid": 0, "key": ["storm"], "keysecondary": ["sea"], "comment": "Storm", "content": "A storm rises.",
             "constant": False, "vectorized": False, "selective": True, "selectiveLogic": 3, "addMemo": True,
             "order": 100, "position": 4, "disable": False, "ignoreBudget": False, "excludeRecursion": True,
             "preventRecursion": False, "matchPersonaDescription": False, "matchCharacterDescription": True,
             "matchCharacterPersonality": False, "matchCharacterDepthPrompt": False, "matchScenario": False,
             "matchCreatorNotes": False, "delayUntilRecursion": 2, "probability": 55.5, "useProbability": True,
             "depth": 2, "outletName": "", "group": "weather,sky", "groupOverride": True, "groupWeight": 70,
             "scanDepth": None, "caseSensitive": None, "matchWholeWords": True, "useGroupScoring": None,
             "automationId": "qr-1", "role": 1, "sticky": 3, "cooldown": None, "delay": 0, "displayIndex": 7,
             "triggers": ["normal", "swipe"], "characterFilter": {"isExclude": True, "names": ["Bob"], "tags": []},
             "vendor/entry": {"nested": [1, 2.5, None, {"deep": "ü"}]}, "extensions": {"vendor": {"x": True}}}
    second = {**entry, "uid": 5, "key": ["/r[a-z]+/i"], "content": "Regex lore.", "disable": True,
              "position": 7, "outletName": "sky"}
    return {"entries": {"0": entry, "5": second}, "name": "Skies", "extensions": {"vendor/top": {"a": [True]}},
            "vendor_top_level": 12, "originalData": {"name": "Skies", "entries": [], "scan_depth": 3}}


@pytest.mark.parametrize("source", ["fixture", "modern"])
def test_world_comes_back_key_for_key(library: Library, source: str) -> None:
    if source == "fixture":
        raw = WORLDS[0].read_bytes()
        name = WORLDS[0].name
    else:
        raw, name = json.dumps(modern_world()).encode(), "Skies.json"
    result = library.import_world(raw, name)
    assert result.id is not None
    exported, _ = library.export_world(result.id)
    assert json_diff(json.loads(raw), json.loads(exported)) == []
    mirror = library.paths.worlds / name
    assert json_diff(json.loads(raw), json.loads(mirror.read_bytes())) == [], "the mirror file too"


# --- chats ------------------------------------------------------------------------------------------


def modern_chat() -> list[dict[str, Any]]:
    """A current SillyTavern chat: hidden messages, swipes with swipe_info, extras, every send_date form."""
    info = [{"send_date": "2025-09-26T07:04:12.006Z", "gen_started": "2025-09-26T07:04:10.000Z",
             "gen_finished": "2025-09-26T07:04:12.000Z", "extra": {"api": "openai", "model": "m1"}},
            {"send_date": "2025-09-26T07:06:00.000Z", "gen_started": "2025-09-26T07:05:58.000Z",
             "gen_finished": "2025-09-26T07:06:00.000Z", "extra": {"api": "openai", "model": "m2", "bias": "*"}}]
    return [
        {"chat_metadata": {"integrity": "7d5b0c2e-1f3a-4a57-9d0e-6c1b2a3f4e5d", "tainted": True,
                           "note_prompt": "Remember the storm.", "note_interval": 1, "note_position": 1,
                           "note_depth": 4, "note_role": 0, "world_info": "Skies", "variables": {"mood": "calm"},
                           "timedWorldInfo": {"sticky": {}, "cooldown": {}}, "vendor/x": [1, 2.5, None]},
         "user_name": "unused", "character_name": "unused"},
        {"name": "Seraphina", "is_user": False, "is_system": False, "send_date": "2025-09-26T07:04:12.006Z",
         "mes": "Welcome, traveler.", "swipes": ["Welcome, traveler.", "Ah, you are awake."], "swipe_id": 0,
         "swipe_info": info, "extra": {}, "force_avatar": "characters/Seraphina.png"},
        {"name": "Traveler", "is_user": True, "is_system": False, "send_date": 1727485356000, "mes": "Where am I?",
         "extra": {"bias": "*looks around*", "isSmallSys": False}, "force_avatar": "User Avatars/traveler.png"},
        {"name": "Traveler", "is_user": True, "is_system": True, "send_date": "September 28, 2024 1:02am",
         "mes": "A hidden aside.", "extra": {}, "force_avatar": "User Avatars/traveler.png"},
        {"name": "Seraphina", "is_user": False, "is_system": False, "send_date": "2025-09-26T07:06:00.000Z",
         "mes": "In my glade.", "swipes": ["In Eldoria.", "In my glade."], "swipe_id": 1, "swipe_info": info,
         "gen_started": "2025-09-26T07:05:58.000Z", "gen_finished": "2025-09-26T07:06:00.000Z", "title": "t",
         "extra": {"api": "openai", "model": "m2", "token_count": 42, "reasoning": "She decides to be kind.",
                   "reasoning_duration": 1234, "reasoning_signature": "sig", "display_text": "In my *glade*.",
                   "vendor": {"nested": [True, {"n": None}]}}},
        {"name": "Narrator", "is_user": False, "is_system": True, "send_date": 1727485356123.5,
         "mes": "Night falls.", "extra": {"type": "narrator", "isSmallSys": True}, "original_avatar": "x.png"},
        {"name": "Seraphina", "is_user": False, "send_date": "2025-09-26T09:04:12.006123+02:00",
         "mes": "Rest now.", "is_name": True, "vendor_top": {"k": [1, 2]}},
        {"name": "Traveler", "is_user": True, "mes": "No date on this one."},
    ]


def _jsonl(lines: list[dict[str, Any]]) -> bytes:
    return "\n".join(json.dumps(line, ensure_ascii=False) for line in lines).encode("utf-8")


def _group_chat() -> list[dict[str, Any]]:
    """An old SillyTavern group chat: no header line, two speakers."""
    return [{"name": "Aqua", "is_user": False, "is_system": False, "send_date": "2024-01-02@10h00m00s", "mes": "Hi!",
             "original_avatar": "Aqua.png", "force_avatar": "characters/Aqua.png", "extra": {"gen_id": 17}},
            {"name": "Seraphina", "is_user": False, "send_date": 1704189600000, "mes": "Hello.",
             "extra": {"gen_id": 18}, "swipes": ["Hello."], "swipe_id": 0, "swipe_info": []}]


CHAT_CASES: dict[str, Callable[[], bytes]] = {p.name: p.read_bytes for p in CHATS}
CHAT_CASES["modern.jsonl"] = lambda: _jsonl(modern_chat())
CHAT_CASES["group_no_header.jsonl"] = lambda: _jsonl(_group_chat())


@pytest.mark.parametrize("name", sorted(CHAT_CASES))
def test_chat_comes_back_line_for_line(library: Library, name: str) -> None:
    raw = CHAT_CASES[name]()
    result = import_bytes(library, raw, name)
    assert result.status == "imported" and result.id is not None, result.line()
    with library.db.session() as conn:
        run_pending(conn)  # the deferred indexing and token counts never leak into the file
        exported, _ = export_st_chat(conn, result.id)
    want = [json.loads(line) for line in raw.decode("utf-8").split("\n")]
    got = [json.loads(line) for line in exported.decode("utf-8").split("\n")]
    assert len(got) == len(want)
    for index, (a, b) in enumerate(zip(want, got, strict=True)):
        assert json_diff(a, b, f"line {index + 1}") == []


def test_hidden_user_message_stays_a_user_message(library: Library) -> None:
    result = import_bytes(library, _jsonl(modern_chat()), "modern.jsonl")
    with library.db.session() as conn:
        lines = [json.loads(line) for line in export_st_chat(conn, result.id or 0)[0].splitlines()]
        roles = [r["role"] for r in conn.execute("SELECT role FROM messages ORDER BY seq")]
    hidden = lines[3]
    assert (hidden["is_user"], hidden["is_system"]) == (True, True)
    assert roles[2] == "system", "a hidden message stays out of the prompt"
