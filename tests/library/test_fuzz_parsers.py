"""Fuzzing: for any input bytes the parsers raise InvalidInput or succeed; what parses round-trips."""

from __future__ import annotations

import base64
import io
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from neuralrp.errors import InvalidInput
from neuralrp.library import pngchunks
from neuralrp.library.cardfile import V2_FIELDS, export_card_json, export_card_png, parse_card
from neuralrp.library.chatfile import export_chat, parse_chat
from neuralrp.library.worldfile import (
    ENTRY_KEYS,
    export_character_book,
    export_world_info,
    parse_character_book,
    parse_world_info,
)
from tests.conftest import FIXTURES

FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)


def _tiny_png() -> bytes:
    """A 2x2 PNG without text chunks."""
    out = io.BytesIO()
    Image.new("RGB", (2, 2), (1, 2, 3)).save(out, format="PNG")
    return out.getvalue()


TINY = _tiny_png()
SERAPHINA = parse_card((FIXTURES / "cards/st_default_Seraphina.png").read_bytes(), "s.png")
CARD_TEXT = json.dumps(SERAPHINA.raw, ensure_ascii=False)
SMALL_CARD_PNG = pngchunks.write_text_chunks(TINY, [("chara", base64.b64encode(CARD_TEXT.encode()).decode())])
AQUA_PNG = (FIXTURES / "cards/tavern_v1_Aqua.png").read_bytes()
CARD_JSON = (FIXTURES / "cards/lide_ai_v3_zh.json").read_bytes()
ELDORIA = (FIXTURES / "worlds/st_Eldoria_release.json").read_bytes()
CHAT = (FIXTURES / "chats/tavern_Aqua_1673181146000.jsonl").read_bytes()

json_scalars = (
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats(allow_nan=False) | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
string_lists = st.lists(st.text(max_size=10), max_size=3)


def _accepts_or_refuses(parse: Any, data: bytes, filename: str) -> Any:
    """Run a parser; InvalidInput is the only allowed failure (anything else fails the test)."""
    try:
        return parse(data, filename)
    except InvalidInput as e:
        assert e.message
        return None


@st.composite
def mutations(draw: st.DrawFn, data: bytes) -> bytes:
    """The bytes with a few flips, a cut, an insertion or a deleted range."""
    blob = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "cut", "insert", "delete"]))
        pos = draw(st.integers(0, max(len(blob) - 1, 0)))
        if kind == "flip" and blob:
            blob[pos] ^= draw(st.integers(1, 255))
        elif kind == "cut":
            del blob[pos:]
        elif kind == "insert":
            blob[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        else:
            del blob[pos : pos + draw(st.integers(1, 64))]
    return bytes(blob)


def _text_mutation(text: str, draw: st.DrawFn) -> str:
    """A string with a random slice replaced by random text."""
    start = draw(st.integers(0, len(text)))
    end = draw(st.integers(start, min(len(text), start + 40)))
    return text[:start] + draw(st.text(max_size=10)) + text[end:]


# --- cards ------------------------------------------------------------------------------------------


@FUZZ
@given(st.binary(max_size=512))
def test_random_bytes(data: bytes) -> None:
    for parse in (parse_card, parse_world_info, parse_chat):
        _accepts_or_refuses(parse, data, "random")
    _accepts_or_refuses(parse_card, pngchunks.PNG_SIGNATURE + data, "random.png")


@FUZZ
@given(st.data())
def test_mutated_png_cards(data: st.DataObject) -> None:
    source = data.draw(st.sampled_from([SMALL_CARD_PNG, AQUA_PNG]))
    _accepts_or_refuses(parse_card, data.draw(mutations(source)), "mutated.png")


@FUZZ
@given(st.data())
def test_mutated_chunk_text_with_valid_crc(data: st.DataObject) -> None:
    if data.draw(st.booleans()):
        text = base64.b64encode(_text_mutation(CARD_TEXT, data.draw).encode("utf-8", "surrogatepass")).decode()
    else:
        text = _text_mutation(base64.b64encode(CARD_TEXT.encode()).decode(), data.draw)
    keyword = data.draw(st.sampled_from(["chara", "ccv3", "CHARA"]))
    try:
        png = pngchunks.write_text_chunks(TINY, [(keyword, text)])
    except InvalidInput:
        return
    _accepts_or_refuses(parse_card, png, "chunk.png")


@FUZZ
@given(st.data())
def test_mutated_json_cards(data: st.DataObject) -> None:
    _accepts_or_refuses(parse_card, data.draw(mutations(CARD_JSON)), "mutated.json")


@st.composite
def card_objects(draw: st.DrawFn) -> dict[str, Any]:
    """Card-shaped JSON objects whose fields hold values of any type (often the right one)."""
    fields = {f: st.text(max_size=12) | json_values for f in V2_FIELDS}
    fields.update(tags=string_lists | json_values, alternate_greetings=string_lists | json_values)
    fields.update(extensions=st.dictionaries(st.text(max_size=8), json_values, max_size=3) | json_values)
    fields["character_book"] = st.none() | st.fixed_dictionaries({"entries": st.lists(json_values, max_size=2)})
    data = draw(st.fixed_dictionaries({}, optional={**fields, "x_vendor": json_values}))
    data["name"] = draw(st.text(min_size=1, max_size=12) | json_values)
    shape = draw(st.sampled_from(["v2", "v3", "v1", "pygmalion", "other"]))
    if shape == "v1":
        return data
    if shape == "pygmalion":
        return {"char_name": data["name"], "char_persona": data.get("description", ""), "x": 1}
    spec = {"v2": "chara_card_v2", "v3": "chara_card_v3"}.get(shape, draw(json_values))
    return {"spec": spec, "spec_version": draw(json_values), "data": data, "top_extra": draw(json_values)}


@FUZZ
@given(card_objects())
def test_card_objects_parse_or_refuse_and_round_trip(obj: dict[str, Any]) -> None:
    raw = json.dumps(obj).encode()
    first = _accepts_or_refuses(parse_card, raw, "fuzz.json")
    if first is None:
        return
    for exported in (export_card_json(first), export_card_png(first, TINY)):
        again = parse_card(exported, "again")
        assert again.data == first.data
        assert json.dumps(again.data, sort_keys=True) == json.dumps(first.data, sort_keys=True)
        assert again.extra_data == first.extra_data and again.extra_top == first.extra_top


@FUZZ
@given(json_values)
def test_random_json_as_card(value: Any) -> None:
    _accepts_or_refuses(parse_card, json.dumps(value).encode(), "any.json")


# --- lorebooks --------------------------------------------------------------------------------------

WI_FIELD_NAMES = ["key", "keysecondary", "comment", "content", "constant", "selective", "selectiveLogic", "order"]
WI_FIELD_NAMES += ["position", "disable", "probability", "useProbability", "depth", "group", "role"]
BOOK_FIELD_NAMES = ["id", "keys", "secondary_keys", "comment", "content", "constant", "selective"]
BOOK_FIELD_NAMES += ["insertion_order", "enabled", "position", "use_regex", "priority"]
EXT_NAMES = ["position", "selectiveLogic", "probability", "useProbability", "depth", "exclude_recursion", "x"]


def _good_or_any(name: str) -> st.SearchStrategy[Any]:
    """Mostly well-typed values for a known field, sometimes anything."""
    good = {
        "key": string_lists,
        "keys": string_lists,
        "keysecondary": string_lists,
        "secondary_keys": string_lists,
        "position": st.integers(0, 7) | st.sampled_from(["before_char", "after_char"]),
    }.get(name, st.booleans() | st.integers(0, 100) | st.text(max_size=5) | st.none())
    return good | json_values


@st.composite
def world_objects(draw: st.DrawFn) -> dict[str, Any]:
    """World Info objects: entries keyed by uid, fields of any type."""
    entries = {}
    for uid in range(draw(st.integers(0, 3))):
        names = draw(st.lists(st.sampled_from(WI_FIELD_NAMES), unique=True, max_size=8))
        entries[str(uid)] = {"uid": uid, **{n: draw(_good_or_any(n)) for n in names}}
    return {"entries": entries, **draw(st.dictionaries(st.sampled_from(["name", "x"]), json_values, max_size=2))}


@st.composite
def book_objects(draw: st.DrawFn) -> dict[str, Any]:
    """character_book objects with entries of any shape."""
    entries = []
    for _ in range(draw(st.integers(0, 3))):
        names = draw(st.lists(st.sampled_from(BOOK_FIELD_NAMES), unique=True, max_size=8))
        entry: dict[str, Any] = {n: draw(_good_or_any(n)) for n in names}
        if draw(st.booleans()):
            ext_names = draw(st.lists(st.sampled_from(EXT_NAMES), unique=True, max_size=4))
            entry["extensions"] = {n: draw(_good_or_any(n)) for n in ext_names}
        entries.append(entry)
    return {
        "entries": entries,
        **draw(st.dictionaries(st.sampled_from(["name", "scan_depth"]), json_values, max_size=2)),
    }


@FUZZ
@given(world_objects())
def test_world_info_parse_or_refuse_and_is_lossless(obj: dict[str, Any]) -> None:
    book = _accepts_or_refuses(parse_world_info, json.dumps(obj).encode(), "fuzz.json")
    if book is None:
        return
    assert export_world_info(book) == obj
    again = parse_character_book(export_character_book(book))
    assert [{k: e[k] for k in ENTRY_KEYS if k != "uid"} for e in again.entries] == [
        {k: e[k] for k in ENTRY_KEYS if k != "uid"} for e in book.entries
    ]


@FUZZ
@given(book_objects())
def test_character_book_parse_or_refuse_and_is_lossless(obj: dict[str, Any]) -> None:
    try:
        book = parse_character_book(obj)
    except InvalidInput:
        return
    assert export_character_book(book) == obj
    wi = export_world_info(book)
    back = parse_world_info(json.dumps(wi).encode(), "w.json")
    assert export_character_book(back) == obj


@FUZZ
@given(st.data())
def test_mutated_world_files(data: st.DataObject) -> None:
    _accepts_or_refuses(parse_world_info, data.draw(mutations(ELDORIA)), "mutated.json")


# --- chats ------------------------------------------------------------------------------------------

MESSAGE_FIELDS = ["name", "is_user", "is_system", "send_date", "mes", "swipes", "swipe_id", "extra", "title"]


@st.composite
def chat_lines(draw: st.DrawFn) -> bytes:
    """A .jsonl text: maybe a header, then message-like objects and some junk lines."""
    lines: list[str] = []
    if draw(st.booleans()):
        header = {"user_name": draw(_good_or_any("x")), "chat_metadata": draw(json_values)}
        lines.append(json.dumps(header))
    for _ in range(draw(st.integers(0, 4))):
        if draw(st.integers(0, 5)) == 0:
            lines.append(draw(st.text(max_size=20)).replace("\n", " "))
            continue
        names = draw(st.lists(st.sampled_from(MESSAGE_FIELDS), unique=True, max_size=9))
        lines.append(json.dumps({n: draw(_good_or_any(n)) for n in names}))
    return "\n".join(lines).encode()


@FUZZ
@given(chat_lines())
def test_chat_lines_parse_or_refuse_and_round_trip(data: bytes) -> None:
    chat = _accepts_or_refuses(parse_chat, data, "fuzz.jsonl")
    if chat is None:
        return
    again = parse_chat(export_chat(chat), "again.jsonl")
    assert again.header == chat.header
    fields = ("name", "is_user", "text", "is_system", "timestamp", "swipes", "swipe_id", "extra", "other")
    assert [[getattr(m, f) for f in fields] for m in again.messages] == [
        [getattr(m, f) for f in fields] for m in chat.messages
    ]


@FUZZ
@given(st.data())
def test_mutated_chat_files(data: st.DataObject) -> None:
    _accepts_or_refuses(parse_chat, data.draw(mutations(CHAT)), "mutated.jsonl")


@pytest.mark.parametrize("size", [1, 7, 33, 100])
def test_every_truncation_of_a_small_card(size: int) -> None:
    for cut in range(0, len(SMALL_CARD_PNG), size):
        _accepts_or_refuses(parse_card, SMALL_CARD_PNG[:cut], "cut.png")
