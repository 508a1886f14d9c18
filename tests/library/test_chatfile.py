"""SillyTavern .jsonl chats: old and new headers, group chats, swipes, lossless export."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from neuralrp.errors import InvalidInput
from neuralrp.library.chatfile import (
    ChatMessage,
    ParsedChat,
    export_chat,
    format_send_date,
    new_header,
    parse_chat,
    parse_send_date,
)
from tests.conftest import FIXTURES

AQUA = FIXTURES / "chats/tavern_Aqua_1673181146000.jsonl"

NEW_STYLE = [
    {
        "chat_metadata": {
            "integrity": "5b0c2f5e-1d8e-4f7a-9a4e-2f4a1c0b9d11",
            "note_prompt": "",
            "note_interval": 1,
            "timedWorldInfo": {"sticky": {}, "cooldown": {}},
            "variables": {"mood": "calm"},
        },
        "user_name": "unused",
        "character_name": "unused",
    },
    {
        "name": "Seraphina",
        "is_user": False,
        "is_system": False,
        "send_date": "2025-09-26T07:04:12.006Z",
        "mes": "Welcome, traveler.",
        "swipes": ["Welcome, traveler.", "Oh! You are awake."],
        "swipe_id": 0,
        "swipe_info": [{"send_date": "2025-09-26T07:04:12.006Z", "extra": {}}, {"send_date": "x", "extra": {}}],
        "extra": {"api": "koboldcpp", "model": "gemma", "token_count": 5, "reasoning": "", "gen_id": 17},
        "title": "",
        "force_avatar": "characters/Seraphina.png",
    },
    {
        "name": "Alex",
        "is_user": True,
        "send_date": "September 28, 2024 1:02am",
        "mes": "Where am I?",
        "extra": {"isSmallSys": False},
    },
    {
        "name": "Narrator",
        "is_user": False,
        "is_system": True,
        "send_date": "2025-09-26T07:05:00.000Z",
        "mes": "(hidden note)",
        "extra": {"type": "narrator"},
    },
]

GROUP_OLD = [
    {
        "name": "Alice",
        "is_user": False,
        "send_date": 1700000000000,
        "mes": "Hi, I'm Alice.",
        "original_avatar": "a.png",
    },
    {"name": "Bob", "is_user": False, "send_date": 1700000001000, "mes": "And I'm Bob.", "original_avatar": "b.png"},
    {"name": "You", "is_user": True, "send_date": 1700000002000, "mes": "Hello both."},
    {"name": "Alice", "is_user": False, "send_date": 1700000003000, "mes": "Welcome!", "extra": {"gen_id": 9}},
]


def _jsonl(lines: list[dict[str, Any]]) -> bytes:
    """Objects as SillyTavern writes them: compact JSON lines joined by newlines."""
    return "\n".join(json.dumps(o, ensure_ascii=False, separators=(",", ":")) for o in lines).encode()


def _lines(data: bytes) -> list[Any]:
    """Each line of a .jsonl file decoded."""
    return [json.loads(line) for line in data.decode().split("\n")]


def _error(data: bytes, filename: str = "chat.jsonl") -> str:
    """Parse, expect InvalidInput, return its message."""
    with pytest.raises(InvalidInput) as info:
        parse_chat(data, filename)
    return info.value.message


def test_tavern_fixture() -> None:
    data = AQUA.read_bytes()
    chat = parse_chat(data, AQUA.name)
    assert (chat.user_name, chat.character_name) == ("You", "Aqua")
    assert chat.create_date == datetime(2023, 1, 24, 11, 31, 36, 839000, tzinfo=UTC)
    assert len(chat.messages) == 1 and not chat.is_group
    msg = chat.messages[0]
    assert (msg.name, msg.is_user, msg.is_system) == ("Aqua", False, False)
    assert msg.text.startswith("*I am in the town square")
    assert msg.timestamp == datetime(2023, 1, 24, 12, 29, 31, 558000, tzinfo=UTC)
    assert msg.swipes is None and msg.other == {"is_name": True}
    assert export_chat(chat) == data


def test_new_style_chat_round_trip() -> None:
    data = _jsonl(NEW_STYLE)
    chat = parse_chat(data, "Seraphina - 2025-09-26@07h04m12s.jsonl")
    assert chat.chat_metadata["variables"] == {"mood": "calm"}
    assert chat.create_date is None and chat.user_name == "unused"
    first, user, hidden = chat.messages
    assert first.swipes == ["Welcome, traveler.", "Oh! You are awake."] and first.swipe_id == 0
    assert first.extra == NEW_STYLE[1]["extra"]
    assert set(first.other) == {"swipe_info", "title", "force_avatar"}
    assert first.timestamp == datetime(2025, 9, 26, 7, 4, 12, 6000, tzinfo=UTC)
    assert user.is_user and user.timestamp == datetime(2024, 9, 28, 1, 2, tzinfo=UTC)
    assert hidden.is_system and chat.speakers == ["Seraphina"] and not chat.is_group
    assert export_chat(chat) == data
    assert _lines(export_chat(chat)) == NEW_STYLE


def test_old_group_chat_without_header() -> None:
    chat = parse_chat(_jsonl(GROUP_OLD), "group.jsonl")
    assert chat.header is None and chat.is_group
    assert chat.speakers == ["Alice", "Bob"]
    assert [m.name for m in chat.messages] == ["Alice", "Bob", "You", "Alice"]
    assert chat.messages[0].other == {"original_avatar": "a.png"}
    assert export_chat(chat) == _jsonl(GROUP_OLD)


def test_new_group_chat_with_header() -> None:
    lines = [{"chat_metadata": {"integrity": "abc"}, "user_name": "unused", "character_name": "unused"}, *GROUP_OLD]
    chat = parse_chat(_jsonl(lines), "group.jsonl")
    assert chat.header == lines[0] and chat.is_group and len(chat.messages) == 4
    assert _lines(export_chat(chat)) == lines


def test_unreadable_lines_are_skipped_and_reported() -> None:
    data = _jsonl(GROUP_OLD[:2]) + b"\nnot json at all\n[1, 2]\n\n" + _jsonl(GROUP_OLD[2:]) + b"\n"
    chat = parse_chat(data, "g.jsonl")
    assert chat.skipped_lines == [3, 4] and len(chat.messages) == 4


def test_crlf_and_bom_are_tolerated() -> None:
    data = b"\xef\xbb\xbf" + _jsonl(NEW_STYLE).replace(b"\n", b"\r\n")
    assert len(parse_chat(data, "c.jsonl").messages) == 3


def test_chub_style_messages_are_flattened() -> None:
    line = {"name": "C", "is_user": False, "mes": {"message": "hi"}, "swipes": [{"message": "hi"}, "yo"]}
    msg = parse_chat(_jsonl([line]), "chub.jsonl").messages[0]
    assert msg.text == "hi" and msg.swipes == ["hi", "yo"]


def test_edits_are_exported() -> None:
    chat = parse_chat(_jsonl(NEW_STYLE), "c.jsonl")
    msg = chat.messages[0]
    msg.text = "Edited."
    msg.swipes = ["Edited.", "Oh! You are awake."]
    msg.timestamp = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    line = _lines(export_chat(chat))[1]
    assert line["mes"] == "Edited." and line["swipes"][0] == "Edited."
    assert line["send_date"] == "2026-01-02T03:04:05.000Z"
    assert list(line)[:4] == ["name", "is_user", "is_system", "send_date"]


def test_building_a_chat_from_scratch() -> None:
    created = datetime(2024, 9, 28, 1, 2, 36, tzinfo=UTC)
    header = new_header("Alex", "Seraphina", {"note_prompt": "x"}, created)
    assert header["create_date"] == "2024-09-28@01h02m36s"
    chat = ParsedChat(
        header=header,
        messages=[
            ChatMessage(name="Seraphina", is_user=False, text="Hello", timestamp=created, swipes=["Hello", "Hi"]),
            ChatMessage(name="Alex", is_user=True, text="Hey", is_system=True),
        ],
    )
    data = export_chat(chat)
    assert not data.endswith(b"\n")
    lines = _lines(data)
    assert lines[1] == {
        "name": "Seraphina",
        "is_user": False,
        "send_date": "2024-09-28T01:02:36.000Z",
        "mes": "Hello",
        "swipes": ["Hello", "Hi"],
    }
    assert lines[2] == {"name": "Alex", "is_user": True, "is_system": True, "mes": "Hey"}
    again = parse_chat(data, "x.jsonl")
    assert again.create_date == created and again.messages[0].timestamp == created


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1673181146000, datetime(2023, 1, 8, 12, 32, 26, tzinfo=UTC)),
        ("1673181146000", datetime(2023, 1, 8, 12, 32, 26, tzinfo=UTC)),
        (1673181146, datetime(2023, 1, 8, 12, 32, 26, tzinfo=UTC)),
        ("2025-09-26T07:04:12.006Z", datetime(2025, 9, 26, 7, 4, 12, 6000, tzinfo=UTC)),
        ("2025-09-26T09:04:12+02:00", datetime(2025, 9, 26, 7, 4, 12, tzinfo=UTC)),
        ("September 28, 2024 1:02am", datetime(2024, 9, 28, 1, 2, tzinfo=UTC)),
        ("September 28, 2024 1:02pm", datetime(2024, 9, 28, 13, 2, tzinfo=UTC)),
        ("2024-09-28@01h02m36s", datetime(2024, 9, 28, 1, 2, 36, tzinfo=UTC)),
        ("2024-09-28@15h04m33s123ms", datetime(2024, 9, 28, 15, 4, 33, 123000, tzinfo=UTC)),
        ("yesterday", None),
        ("2024-13-45@99h99m99s", None),
        (10**30, None),
        (True, None),
        (None, None),
        ([1], None),
    ],
)
def test_parse_send_date(value: Any, expected: datetime | None) -> None:
    assert parse_send_date(value) == expected


def test_format_send_date() -> None:
    assert format_send_date(datetime(2025, 1, 2, 3, 4, 5, 6000, tzinfo=UTC)) == "2025-01-02T03:04:05.006Z"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ({"name": "A", "mes": 5}, "line 2: field 'mes' must be a string, got int"),
        ({"name": 5, "mes": ""}, "line 2: field 'name' must be a string, got int"),
        ({"name": "A", "mes": "", "is_user": "yes"}, "line 2: field 'is_user' must be true or false, got string"),
        ({"name": "A", "mes": "", "swipes": "a"}, "line 2: field 'swipes' must be a list of strings, got string"),
        ({"name": "A", "mes": "", "swipes": ["a", 1]}, "line 2: field 'swipes[1]' must be a string, got int"),
        ({"name": "A", "mes": "", "swipe_id": "0"}, "line 2: field 'swipe_id' must be an integer, got string"),
        ({"name": "A", "mes": "", "extra": []}, "line 2: field 'extra' must be an object, got list"),
        (
            {"name": "A", "mes": "", "send_date": {}},
            "line 2: field 'send_date' must be a string or a number, got object",
        ),
    ],
)
def test_wrong_message_types(line: dict[str, Any], message: str) -> None:
    header = {"user_name": "You", "character_name": "A"}
    assert _error(_jsonl([header, line]), "A.jsonl") == f"A.jsonl: {message}"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "chat file has no valid JSON lines"),
        (b"garbage\nmore garbage", "chat file has no valid JSON lines"),
        (b"\xff\xfe\x00", "chat file is not valid UTF-8 text"),
        (b'{"user_name": "a", "chat_metadata": []}', "line 1: field 'chat_metadata' must be an object, got list"),
        (b'{"user_name": 3}', "line 1: field 'user_name' must be a string, got int"),
    ],
)
def test_bad_chat_files(data: bytes, message: str) -> None:
    assert message in _error(data)


def test_size_limit_and_deep_lines() -> None:
    with pytest.raises(InvalidInput, match="over the"):
        parse_chat(_jsonl(GROUP_OLD), "g.jsonl", max_size=10)
    deep = b'{"name": "A", "mes": "", "extra": ' + b"[" * 200 + b"]" * 200 + b"}"
    chat = parse_chat(_jsonl(GROUP_OLD) + b"\n" + deep, "g.jsonl")
    assert chat.skipped_lines == [5]
