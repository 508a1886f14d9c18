"""SillyTavern chat files (.jsonl) in and out: single and group chats, old and new headers.

An import is one transaction of bulk inserts; search indexing and token counting wait for chats/backfill.py.
Each message keeps every SillyTavern field it had in its `extra_json` ("st" bag), so an export writes back the
same lines: hidden messages (is_user + is_system), swipes with swipe_info, `extra`, force_avatar, send_date as
found (text or number).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from neuralrp.chats import store
from neuralrp.clock import iso
from neuralrp.db.connection import Connection, transaction
from neuralrp.db.history import record_change
from neuralrp.errors import InvalidInput, NotFound
from neuralrp.library import characters as chars
from neuralrp.library.chatfile import (
    ChatMessage,
    ParsedChat,
    export_chat,
    new_header,
    parse_chat,
    parse_send_date,
)
from neuralrp.library.files import safe_stem


def _cast_for(conn: Connection, parsed: ParsedChat) -> tuple[dict[str, int], list[str]]:
    """Character ids by speaker name; unknown speakers get a minimal card (reported in notes)."""
    names = [n for n in dict.fromkeys(m.name for m in parsed.messages if not m.is_user and not m.is_system) if n]
    if not names and parsed.character_name and parsed.character_name != "unused":
        names = [parsed.character_name]
    ids: dict[str, int] = {}
    notes: list[str] = []
    for name in names:
        try:
            ids[name] = chars.character_by_name(conn, name).id
        except NotFound:
            ids[name] = chars.insert_character(conn, {"name": name})
            notes.append(f"created a placeholder card for '{name}'")
    return ids, notes


def _st_bag(msg: ChatMessage) -> dict[str, Any]:
    """The SillyTavern fields of a message that the messages table has no column for."""
    return {"send_date": msg.send_date, "extra": msg.extra, "other": msg.other, "key_order": list(msg.key_order),
            "swipe_id": msg.swipe_id, "has_swipes": msg.swipes is not None, "is_system": msg.is_system,
            "is_user": msg.is_user}


def _rows(parsed: ParsedChat, ids: dict[str, int], user: str) -> tuple[list[store.ImportedRow], int]:
    """One messages row per message, and the turn the chat ends on (each visible user message starts a turn)."""
    now = iso()
    rows: list[store.ImportedRow] = []
    turn = 0
    for msg in parsed.messages:
        turn += 1 if (msg.is_user and not msg.is_system) else 0
        role = "system" if msg.is_system else ("user" if msg.is_user else "assistant")
        bag = json.dumps({"st": _st_bag(msg)}, ensure_ascii=False)
        rows.append((turn, role, ids.get(msg.name) if role == "assistant" else None,
                     msg.name or (user if msg.is_user else ""), msg.text, (msg.swipe_id or 0) if msg.swipes else 0,
                     bag, iso(msg.timestamp) if msg.timestamp else now))
    return rows, turn


def _swipe_rows(message_ids: list[int], messages: list[ChatMessage],
                rows: list[store.ImportedRow]) -> list[tuple[int, int, str, str]]:
    """(message id, index, text, time) of every swipe, stamped with its message's time."""
    return [(mid, idx, text, row[7]) for mid, msg, row in zip(message_ids, messages, rows, strict=True)
            for idx, text in enumerate(msg.swipes or [])]


def import_st_chat(conn: Connection, data: bytes, filename: str) -> tuple[int, str]:
    """Store a .jsonl chat as a new chat in one transaction; returns (chat id, a note for the user).

    Search indexing and token counting are left to chats/backfill.py (kick its worker afterwards).
    """
    parsed = parse_chat(data, filename)
    user = parsed.user_name if parsed.user_name not in (None, "unused") else "User"
    name = filename.rsplit("/", 1)[-1]
    with transaction(conn):
        ids, notes = _cast_for(conn, parsed)
        if not ids:
            raise InvalidInput(f"{filename}: the chat has no character messages and no character name")
        chat_id = store.insert_chat(conn, title=name.rsplit(".", 1)[0], persona={"name": user})
        for cid in ids.values():
            store.add_cast_member(conn, chat_id, cid)
        rows, turn = _rows(parsed, ids, user)
        message_ids = store.insert_imported_messages(conn, chat_id, rows) if rows else []
        store.insert_swipes(conn, _swipe_rows(message_ids, parsed.messages, rows))
        store.set_imported_state(conn, chat_id, turn, {"st_header": parsed.header})
        record_change(conn, "chat", chat_id, "create", None, {"imported_from": name})
    skipped = f"; skipped unreadable lines {parsed.skipped_lines}" if parsed.skipped_lines else ""
    count = len(parsed.messages)
    return chat_id, f"{count} message{'' if count == 1 else 's'}" + "".join(f"; {n}" for n in notes) + skipped


def _st_message(msg: store.Message, swipes: list[store.Swipe]) -> ChatMessage:
    """A stored message as a SillyTavern line: the fields it was imported with, its current text and swipes."""
    bag = msg.extra.get("st") or {}
    stored = datetime.fromisoformat(msg.created_at) if msg.created_at else datetime.now(UTC)
    send_date = bag.get("send_date") if "send_date" in bag else int(stored.timestamp() * 1000)
    found = parse_send_date(send_date)
    moment: datetime | None = stored
    if "send_date" in bag and (found is None or iso(found) == msg.created_at):
        moment = found  # the time is still the file's own: keep its value and form (or its absence)
    return ChatMessage(
        name=msg.speaker_name, is_user=bool(bag.get("is_user", msg.role == "user")), text=msg.content,
        is_system=bool(bag.get("is_system", msg.role == "system")), timestamp=moment, send_date=send_date,
        swipes=[s.content for s in swipes] if (swipes or bag.get("has_swipes")) else None,
        swipe_id=msg.swipe_index if swipes else bag.get("swipe_id"), extra=bag.get("extra"),
        other=bag.get("other") or {}, key_order=tuple(bag.get("key_order") or ()))


def export_st_chat(conn: Connection, chat_id: int) -> tuple[bytes, str]:
    """A chat as SillyTavern .jsonl bytes and a file name."""
    chat = store.get_chat(conn, chat_id)
    header = chat.settings.get("st_header")
    cast = store.cast_members(conn, chat_id)
    created = datetime.fromisoformat(chat.created_at)
    if header is None and "st_header" not in chat.settings:  # an imported old group chat had no header line
        header = new_header(chat.user_name, cast[0].name if cast else "unused", created=created)
    messages = [_st_message(m, store.swipes(conn, m.id)) for m in store.list_messages(conn, chat_id)]
    return export_chat(ParsedChat(header=header, messages=messages)), f"{_file_stem(chat, cast, header or {})}.jsonl"


def export_file_stem(conn: Connection, chat_id: int) -> str:
    """The name of a chat's export files without extension, SillyTavern style: "Seraphina - 2025-03-01@14h03m22s"."""
    chat = store.get_chat(conn, chat_id)
    return _file_stem(chat, store.cast_members(conn, chat_id), chat.settings.get("st_header") or {})


def _file_stem(chat: store.Chat, cast: list[store.CastMember], header: dict[str, Any]) -> str:
    """"<character> - <created>" (the title when there is no cast); created is the imported header's date if any."""
    created = parse_send_date(header.get("create_date")) or datetime.fromisoformat(chat.created_at)
    who = cast[0].name if cast else (chat.title or f"Chat {chat.id}")
    return f"{safe_stem(who, 'chat')} - {created.astimezone(UTC).strftime('%Y-%m-%d@%Hh%Mm%Ss')}"
