"""Character card files: parsing, validation, PNG chunks and lossless round trips."""

from __future__ import annotations

import base64
import io
import json
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from neuralrp.errors import InvalidInput
from neuralrp.library import pngchunks
from neuralrp.library.cardfile import (
    V2_FIELDS,
    card_from_object,
    export_card_json,
    export_card_png,
    parse_card,
    placeholder_avatar,
)
from neuralrp.library.safejson import load_json
from tests.conftest import FIXTURES

CARDS = sorted((FIXTURES / "cards").iterdir())
EXPECTED_SPEC = {
    "lide_ai_v3_zh.json": "v3",
    "ooba_Example_pygmalion.json": "pygmalion",
    "st_default_Seraphina.png": "v2",
    "stc_Sakana_book.png": "v2",
    "tavern_v1_Aqua.png": "v1",
}


def _b64(obj: Any) -> str:
    """Card JSON as a chunk text."""
    return base64.b64encode(json.dumps(obj).encode("utf-8")).decode("ascii")


def _tiny_png() -> bytes:
    """A 2x2 PNG without text chunks."""
    out = io.BytesIO()
    Image.new("RGB", (2, 2), (10, 20, 30)).save(out, format="PNG")
    return out.getvalue()


def _png_with(*texts: tuple[str, str]) -> bytes:
    """A tiny PNG carrying the given tEXt chunks."""
    return pngchunks.write_text_chunks(_tiny_png(), list(texts))


def _v2(**data: Any) -> dict[str, Any]:
    """A minimal V2 card."""
    return {"spec": "chara_card_v2", "spec_version": "2.0", "data": {"name": "Mira", **data}}


def _canon(value: Any) -> str:
    """JSON text with sorted keys, for byte-for-byte comparison of JSON values."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _error(data: bytes, filename: str = "card.png", **kwargs: Any) -> str:
    """Parse, expect InvalidInput, return its message."""
    with pytest.raises(InvalidInput) as info:
        parse_card(data, filename, **kwargs)
    return info.value.message


# --- fixtures ---------------------------------------------------------------------------------------


def test_fixture_list_is_complete() -> None:
    assert {p.name for p in CARDS} == set(EXPECTED_SPEC)


@pytest.mark.parametrize("path", CARDS, ids=lambda p: p.name)
def test_parse_fixture(path: Path) -> None:
    card = parse_card(path.read_bytes(), path.name)
    assert card.spec == EXPECTED_SPEC[path.name]
    assert tuple(card.data) == V2_FIELDS
    assert card.name.strip()
    assert (card.avatar_png is not None) == path.name.endswith(".png")


@pytest.mark.parametrize("path", CARDS, ids=lambda p: p.name)
@pytest.mark.parametrize("kind", ["json", "png"])
def test_round_trip_is_lossless(path: Path, kind: str) -> None:
    first = parse_card(path.read_bytes(), path.name)
    if kind == "json":
        again = parse_card(export_card_json(first.to_card()), "again.json")
    else:
        again = parse_card(export_card_png(first.to_card(), first.avatar_png), "again.png")
    assert again.data == first.data
    assert _canon(again.data) == _canon(first.data)
    assert _canon(again.data["extensions"]) == _canon(first.data["extensions"])
    assert again.extra_data == first.extra_data
    assert again.extra_top == first.extra_top
    if first.spec in ("v2", "v3"):
        assert _canon(again.raw["data"]) == _canon(first.raw["data"])


@pytest.mark.parametrize("path", CARDS, ids=lambda p: p.name)
def test_export_from_raw_object_equals_export_from_parsed(path: Path) -> None:
    card = parse_card(path.read_bytes(), path.name)
    assert export_card_json(card.raw) == export_card_json(card)


def test_v2_png_fixture_details() -> None:
    card = parse_card((FIXTURES / "cards/st_default_Seraphina.png").read_bytes(), "Seraphina.png")
    assert card.source == "png:chara"
    assert card.data["extensions"] == {"talkativeness": "0.5", "fav": False, "world": "Eldoria"}
    assert len(card.character_book["entries"]) == 4
    assert card.extra_top["avatar"] == "none"
    keywords = [c.keyword for c in pngchunks.read_text_chunks(card.avatar_png or b"")]
    assert "chara" not in keywords and "ccv3" not in keywords


def test_avatar_keeps_other_chunks() -> None:
    card = parse_card((FIXTURES / "cards/stc_Sakana_book.png").read_bytes(), "Sakana.png")
    types = [c.type for c in pngchunks.read_chunks(card.avatar_png or b"")]
    assert b"eXIf" in types and b"IDAT" in types
    assert not any(c.keyword() for c in pngchunks.read_chunks(card.avatar_png or b""))


def test_v1_fixture_extras_survive_export() -> None:
    card = parse_card((FIXTURES / "cards/tavern_v1_Aqua.png").read_bytes(), "Aqua.png")
    assert "\r\n" in card.data["mes_example"]
    exported = json.loads(export_card_json(card))
    assert exported["spec"] == "chara_card_v2"
    assert exported["create_date"] == card.raw["create_date"]
    assert exported["chat"] == card.raw["chat"]
    assert exported["name"] == exported["data"]["name"] == "Aqua"


def test_pygmalion_mapping() -> None:
    card = parse_card((FIXTURES / "cards/ooba_Example_pygmalion.json").read_bytes(), "Example.json")
    raw = card.raw
    assert card.data["name"] == raw["char_name"] == "Chiharu Yamada"
    assert card.data["description"] == raw["char_persona"]
    assert card.data["first_mes"] == raw["char_greeting"]
    assert card.data["scenario"] == raw["world_scenario"]
    assert card.data["mes_example"] == raw["example_dialogue"]


def test_v3_json_stays_v3_and_can_be_v2() -> None:
    card = parse_card((FIXTURES / "cards/lide_ai_v3_zh.json").read_bytes(), "ai.json")
    assert json.loads(export_card_json(card))["spec"] == "chara_card_v3"
    v2 = json.loads(export_card_json(card, spec="v2"))
    assert (v2["spec"], v2["spec_version"]) == ("chara_card_v2", "2.0")
    assert "爱" in export_card_json(card).decode("utf-8")


# --- PNG writing and reading ------------------------------------------------------------------------


def test_export_png_writes_chara_v2_with_mirror_and_ccv3() -> None:
    card = _v2(description="d", tags=["a"], extensions={"talkativeness": 0.7})
    png = export_card_png(card, None)
    chunks = {c.keyword: c.text for c in pngchunks.read_text_chunks(png)}
    chara = json.loads(base64.b64decode(chunks["chara"]))
    ccv3 = json.loads(base64.b64decode(chunks["ccv3"]))
    assert chara["spec"] == "chara_card_v2" and ccv3["spec"] == "chara_card_v3"
    assert ccv3["spec_version"] == "3.0"
    assert chara["name"] == "Mira" and chara["description"] == "d" and chara["tags"] == ["a"]
    assert chara["talkativeness"] == 0.7
    assert chara["data"] == ccv3["data"]
    assert pngchunks.read_chunks(png)[-1].type == b"IEND"
    with Image.open(io.BytesIO(png)) as img:
        assert img.size == (400, 600)


def test_export_png_replaces_old_card_chunks_and_keeps_others() -> None:
    old = _png_with(("chara", _b64(_v2(name="Old"))), ("prompt", "comfy"), ("CCV3", _b64(_v2(name="Old"))))
    png = export_card_png(_v2(), old)
    keywords = [c.keyword for c in pngchunks.read_text_chunks(png)]
    assert keywords == ["prompt", "chara", "ccv3"]
    assert parse_card(png, "x.png").name == "Mira"


def test_export_png_converts_other_image_types() -> None:
    out = io.BytesIO()
    Image.new("RGB", (3, 4), "red").save(out, format="JPEG")
    png = export_card_png(_v2(), out.getvalue())
    assert parse_card(png, "x.png").name == "Mira"
    with Image.open(io.BytesIO(png)) as img:
        assert img.size == (3, 4)


def test_export_png_refuses_unreadable_avatar() -> None:
    with pytest.raises(InvalidInput, match="avatar image cannot be read"):
        export_card_png(_v2(), b"not an image at all")


def test_placeholder_is_deterministic_png() -> None:
    assert placeholder_avatar("Mira") == placeholder_avatar("Mira")
    assert placeholder_avatar("Mira").startswith(pngchunks.PNG_SIGNATURE)


def test_ccv3_is_preferred_over_chara() -> None:
    png = _png_with(("chara", _b64(_v2(name="FromChara"))), ("ccv3", _b64(_v2(name="FromCcv3"))))
    card = parse_card(png, "x.png")
    assert (card.name, card.source) == ("FromCcv3", "png:ccv3")


def test_keyword_case_is_ignored() -> None:
    assert parse_card(_png_with(("Chara", _b64(_v2()))), "x.png").name == "Mira"


def test_broken_ccv3_falls_back_to_chara() -> None:
    png = _png_with(("chara", _b64(_v2(name="Backup"))), ("ccv3", "!!!not base64!!!"))
    assert parse_card(png, "x.png").name == "Backup"


def test_chara_chunk_holding_v3() -> None:
    card = {"spec": "chara_card_v3", "spec_version": "3.0", "data": {"name": "V", "assets": [], "nickname": "v"}}
    parsed = parse_card(_png_with(("chara", _b64(card))), "x.png")
    assert parsed.spec == "v3"
    assert parsed.extra_data == {"assets": [], "nickname": "v"}


def test_plain_json_in_chunk_is_tolerated() -> None:
    assert parse_card(_png_with(("chara", json.dumps(_v2()))), "x.png").name == "Mira"


def test_ztxt_and_itxt_chunks_are_read() -> None:
    text = _b64(_v2(name="Zed")).encode("ascii")
    ztxt = pngchunks.make_chunk(b"zTXt", b"chara\0\0" + zlib.compress(text))
    itxt = pngchunks.make_chunk(b"iTXt", b"ccv3\0\1\0\0\0" + zlib.compress(_b64(_v2(name="Ida")).encode()))
    base = _tiny_png()
    iend = base.rindex(b"IEND") - 4
    assert parse_card(base[:iend] + ztxt + base[iend:], "z.png").name == "Zed"
    assert parse_card(base[:iend] + ztxt + itxt + base[iend:], "i.png").name == "Ida"


# --- bad input --------------------------------------------------------------------------------------


def test_truncated_png() -> None:
    data = (FIXTURES / "cards/st_default_Seraphina.png").read_bytes()[:5000]
    message = _error(data, "Seraphina.png")
    assert message == "Seraphina.png: PNG is truncated at byte 5000"


def test_png_without_card_chunk() -> None:
    assert "PNG has no 'chara' or 'ccv3' text chunk" in _error(_png_with(("prompt", "x")))


def test_bad_base64() -> None:
    assert "'chara' chunk is not valid base64" in _error(_png_with(("chara", "abc$%^")))


def test_empty_chunk() -> None:
    assert "'chara' chunk is empty" in _error(_png_with(("chara", "  ")))


def test_invalid_json_in_chunk() -> None:
    text = base64.b64encode(b'{"spec": "chara_card_v2",\n "data": {"name": "x"\n "tags": []}}').decode()
    message = _error(_png_with(("chara", text)))
    assert "card JSON in 'chara' chunk is invalid: Expecting ',' delimiter at line 3 column 2" in message


def test_invalid_json_file() -> None:
    message = _error(b'{"name": "x",\n\n "description": }', "bad.json")
    assert message.startswith("bad.json: card JSON is invalid: Expecting value at line 3")


def test_not_utf8() -> None:
    assert "not valid UTF-8" in _error(b'{"name": "\xff\xfe"}', "x.json")


def test_bad_crc() -> None:
    data = bytearray(_png_with(("chara", _b64(_v2()))))
    data[50] ^= 0xFF
    assert "PNG chunk 'IDAT' at byte 33 has a bad CRC (file is corrupt)" in _error(bytes(data))


def test_bad_signature_and_other_formats() -> None:
    assert "neither a PNG nor a JSON" in _error(b"hello world")
    assert "file is empty" in _error(b"")
    assert "JPEG" in _error(b"\xff\xd8\xff\xe0 rest")
    assert "CHARX" in _error(b"PK\x03\x04 rest")
    assert "WebP" in _error(b"RIFF\0\0\0\0WEBPVP8 ")


def test_missing_ihdr() -> None:
    data = pngchunks.PNG_SIGNATURE + pngchunks.make_chunk(b"IEND", b"")
    assert "IHDR" in _error(data)


def test_huge_chunk_over_default_limit() -> None:
    huge = "A" * (pngchunks.DEFAULT_MAX_CHUNK + 16)
    data = pngchunks.write_text_chunks(_tiny_png(), [("chara", huge)], max_chunk_size=2**30)
    message = _error(data, "big.png")
    assert message == f"big.png: 'chara' chunk is {len(huge) + 6} bytes, over the 20 MiB limit"


def test_chunk_limit_is_configurable_and_checked_before_reading() -> None:
    data = _png_with(("chara", "A" * 5000))
    assert "'chara' chunk is 5006 bytes, over the 4096 bytes limit" in _error(data, max_chunk_size=4096)
    header = pngchunks.PNG_SIGNATURE + _tiny_png()[8:33] + struct.pack(">I", 50 * 2**20) + b"tEXtchara\0"
    assert "'chara' chunk is 52428800 bytes, over the 20 MiB limit" in _error(header)


def test_total_size_limit() -> None:
    data = _png_with(("chara", _b64(_v2())))
    assert "over the 100 bytes limit" in _error(data, max_total_size=100)
    assert "over the 10 bytes limit" in _error(b'{"name": "abcdefghij"}', "x.json", max_total_size=10)


def test_deep_nesting() -> None:
    deep = '{"name": "x", "extensions": ' + "[" * 100 + "]" * 100 + "}"
    assert "nested more than 64 levels deep" in _error(deep.encode(), "deep.json")
    very_deep = "[" * 100000 + "]" * 100000
    assert "nested more than 64 levels deep" in _error(b'{"a": ' + very_deep.encode() + b"}", "d.json")


def test_nan_and_lone_surrogates_are_refused() -> None:
    assert "NaN" in _error(b'{"name": "x", "talkativeness": NaN}', "x.json")
    assert "lone surrogate" in _error(b'{"name": "\\ud800"}', "x.json")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"tags": 3}, "field 'data.tags' must be a list of strings, got int"),
        ({"tags": ["a", 2]}, "field 'data.tags[1]' must be a string, got int"),
        ({"alternate_greetings": "hi"}, "field 'data.alternate_greetings' must be a list of strings, got string"),
        ({"extensions": []}, "field 'data.extensions' must be an object, got list"),
        ({"description": {"a": 1}}, "field 'data.description' must be a string, got object"),
        ({"system_prompt": True}, "field 'data.system_prompt' must be a string, got bool"),
        ({"character_book": []}, "field 'data.character_book' must be an object, got list"),
        ({"character_book": {"entries": {}}}, "field 'data.character_book.entries' must be a list, got object"),
        ({"character_book": {"entries": [1]}}, "field 'data.character_book.entries[0]' must be an object, got int"),
        ({"name": 5}, "field 'data.name' must be a string, got int"),
        ({"name": "  "}, "field 'data.name' is empty: the card has no name"),
    ],
)
def test_wrong_field_types(data: dict[str, Any], message: str) -> None:
    card = _v2(**data)
    assert _error(json.dumps(card).encode(), "c.json") == f"c.json: {message}"
    assert message in _error(_png_with(("chara", _b64(card))), "c.png")


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ([1, 2], "card JSON must be an object, got list"),
        ({"spec": "chara_card_v2", "data": []}, "field 'data' must be an object, got list"),
        ({"spec": "lorebook_v3", "data": {}}, "lorebook"),
        ({"spec": "something_else"}, "unsupported card spec 'something_else'"),
        ({"spec": 2}, "field 'spec' must be a string, got int"),
        ({"hello": "world"}, "not a character card"),
        ({"name": "x", "tags": "a,b"}, "field 'tags' must be a list of strings, got string"),
        ({"char_name": 1}, "field 'char_name' must be a string, got int"),
    ],
)
def test_bad_card_objects(obj: Any, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        card_from_object(obj)


def test_lenient_values() -> None:
    card = card_from_object(_v2(description=None, tags=None, extensions=None, character_version=1.5))
    assert card.data["description"] == "" and card.data["tags"] == [] and card.data["extensions"] == {}
    assert card.data["character_version"] == "1.5"
    assert card_from_object({"spec": "chara_card_v2", "name": "Top", "data": {}}).name == "Top"


def test_unknown_keys_everywhere_survive() -> None:
    vendor = {"nested": [1, 2.5, None, True, {"deep": "ü"}], "empty": {}}
    card = _v2(extensions={"risu/x": vendor, "world": "W"}, x_data={"k": [1]}, group_only_greetings=["g"])
    card["x_top"] = {"y": 1}
    for data in (export_card_json(card), export_card_png(card, None)):
        again = parse_card(data, "x")
        assert again.data["extensions"]["risu/x"] == vendor
        assert again.extra_data == {"x_data": {"k": [1]}, "group_only_greetings": ["g"]}
        assert again.extra_top == {"x_top": {"y": 1}}


def test_load_json_errors_name_the_thing() -> None:
    with pytest.raises(InvalidInput, match="thing is invalid"):
        load_json(b"{", "thing")
    with pytest.raises(InvalidInput, match="thing is invalid"):
        load_json("1" * 5000, "thing")


def test_export_refuses_unserializable_values() -> None:
    card = _v2(extensions={"bad": float("nan")})
    with pytest.raises(InvalidInput, match="NaN or Infinity"):
        export_card_json(card)
    with pytest.raises(InvalidInput, match="cannot be written as JSON"):
        export_card_json(_v2(extensions={"bad": {1, 2}}))
    with pytest.raises(InvalidInput, match="cannot export card spec"):
        export_card_json(_v2(), spec="v9")


# --- pngchunks details ------------------------------------------------------------------------------


def _insert_before_iend(*chunks: bytes) -> bytes:
    """The tiny PNG with raw chunks added before IEND."""
    base = _tiny_png()
    iend = base.rindex(b"IEND") - 4
    return base[:iend] + b"".join(chunks) + base[iend:]


def test_compressed_chunk_bomb_is_refused() -> None:
    bomb = zlib.compress(b"A" * (pngchunks.DEFAULT_MAX_CHUNK + 1024), 9)
    data = _insert_before_iend(pngchunks.make_chunk(b"zTXt", b"chara\0\0" + bomb))
    assert "'chara' chunk inflates to over the 20 MiB limit" in _error(data)


@pytest.mark.parametrize(
    ("chunk", "message"),
    [
        (pngchunks.make_chunk(b"zTXt", b"chara\0\1abc"), "unknown compression method"),
        (pngchunks.make_chunk(b"zTXt", b"chara\0\0not zlib"), "cannot be decompressed"),
        (pngchunks.make_chunk(b"zTXt", b"chara\0\0" + zlib.compress(b"abc")[:-3]), "truncated compressed data"),
        (pngchunks.make_chunk(b"iTXt", b"chara\0"), "iTXt chunk is too short"),
        (pngchunks.make_chunk(b"iTXt", b"chara\0\0\0en"), "missing its language or translated keyword"),
        (pngchunks.make_chunk(b"iTXt", b"chara\0\0\0\0\0\xff\xfe"), "iTXt chunk is not valid UTF-8"),
        (pngchunks.make_chunk(b"iTXt", b"chara\0\2\0\0\0x"), "invalid compression flag"),
        (pngchunks.make_chunk(b"iTXt", b"chara\0\1\1\0\0x"), "unknown compression method"),
        (pngchunks.make_chunk(b"tE\xffX", b"x"), "invalid type"),
    ],
)
def test_malformed_text_chunks(chunk: bytes, message: str) -> None:
    assert message in _error(_insert_before_iend(chunk))


def test_unrelated_malformed_text_chunks_are_ignored() -> None:
    junk = pngchunks.make_chunk(b"zTXt", b"Comment\0\0garbage") + pngchunks.make_chunk(b"tEXt", b"no separator")
    data = _insert_before_iend(junk, pngchunks.make_chunk(b"tEXt", b"chara\0" + _b64(_v2()).encode()))
    assert parse_card(data, "x.png").name == "Mira"


def test_text_chunk_writer_validates_keyword_and_text() -> None:
    with pytest.raises(InvalidInput, match="keyword"):
        pngchunks.make_text_chunk("", "x")
    with pytest.raises(InvalidInput, match="keyword"):
        pngchunks.make_text_chunk("k" * 80, "x")
    with pytest.raises(InvalidInput, match="not Latin-1"):
        pngchunks.make_text_chunk("chara", "snow ☃")
    with pytest.raises(InvalidInput, match="over the 10 bytes limit"):
        pngchunks.write_text_chunks(_tiny_png(), {"chara": "x" * 20}, max_chunk_size=10)


def test_text_chunks_round_trip_and_trailing_bytes_are_ignored() -> None:
    png = pngchunks.write_text_chunks(_tiny_png(), {"a": "1", "b": "2"}) + b"trailing junk"
    assert [(c.keyword, c.text, c.kind) for c in pngchunks.read_text_chunks(png)] == [
        ("a", "1", "tEXt"),
        ("b", "2", "tEXt"),
    ]
    stripped = pngchunks.strip_text_chunks(png, ["A"])
    assert [c.keyword for c in pngchunks.read_text_chunks(stripped)] == ["b"]


def test_export_validates_edited_parsed_cards() -> None:
    card = parse_card(json.dumps(_v2()).encode(), "x.json")
    card.data["tags"] = "not a list"
    with pytest.raises(InvalidInput, match="field 'data.tags' must be a list of strings, got string"):
        export_card_json(card)
    card.data = {"name": "Only a name"}
    assert json.loads(export_card_json(card))["data"]["description"] == ""
    card.extra_top = []  # type: ignore[assignment]
    with pytest.raises(InvalidInput, match="card extra_top must be an object"):
        export_card_png(card, None)
