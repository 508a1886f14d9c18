"""SillyTavern chat files (.jsonl) in and out: single and group chats, old and new headers."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from neuralrp.chats import store
from neuralrp.clock import iso
from neuralrp.db.connection import transaction
from neuralrp.errors import InvalidInput, NotFound
from neuralrp.library import characters as chars
from neuralrp.library.chatfile import ChatMessage, ParsedChat, export_chat, new_header, parse_chat


def _cast_for(conn: Any, parsed: ParsedChat) -> tuple[dict[str, int], list[str]]:
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
    return {"send_date": msg.send_date, "extra": msg.extra, "other": msg.other, "key_order": list(msg.key_order),
            "swipe_id": msg.swipe_id, "has_swipes": msg.swipes is not None, "is_system": msg.is_system}


def _insert(conn: Any, chat_id: int, msg: ChatMessage, turn: int, ids: dict[str, int], user: str) -> int:
    role = "system" if msg.is_system else ("user" if msg.is_user else "assistant")
    mid = store.insert_message(conn, chat_id, role=role, content=msg.text, turn=turn,
                               character_id=ids.get(msg.name) if role == "assistant" else None,
                               speaker_name=msg.name or (user if msg.is_user else ""))
    stamp = iso(msg.timestamp) if msg.timestamp else iso()
    conn.execute("UPDATE messages SET extra_json = ?, created_at = ? WHERE id = ?",
                 (json.dumps({"st": _st_bag(msg)}, ensure_ascii=False, default=str), stamp, mid))
    for idx, text in enumerate(msg.swipes or []):
        store.save_swipe(conn, mid, idx, text)
    if msg.swipes:
        store.set_swipe_index(conn, mid, msg.swipe_id or 0)
    return mid


def import_st_chat(conn: Any, data: bytes, filename: str) -> tuple[int, str]:
    """Store a .jsonl chat as a new chat; returns (chat id, a note for the user)."""
    parsed = parse_chat(data, filename)
    user = parsed.user_name if parsed.user_name not in (None, "unused") else "User"
    with transaction(conn):
        ids, notes = _cast_for(conn, parsed)
        if not ids:
            raise InvalidInput(f"{filename}: the chat has no character messages and no character name")
        title = filename.rsplit("/", 1)[-1].rsplit(".", 1)[0]
        chat_id = store.insert_chat(conn, title=title, persona={"name": user})
        for cid in ids.values():
            store.add_cast_member(conn, chat_id, cid)
        turn = 0
        for msg in parsed.messages:
            turn += 1 if (msg.is_user and not msg.is_system) else 0
            _insert(conn, chat_id, msg, turn, ids, user)
        conn.execute("UPDATE chats SET turn = ?, settings_json = ? WHERE id = ?",
                     (turn, json.dumps({"st_header": parsed.header}, ensure_ascii=False), chat_id))
    skipped = f"; skipped unreadable lines {parsed.skipped_lines}" if parsed.skipped_lines else ""
    return chat_id, f"{len(parsed.messages)} messages" + "".join(f"; {n}" for n in notes) + skipped


def _st_message(msg: store.Message, swipes: list[dict[str, Any]]) -> ChatMessage:
    bag = msg.extra.get("st") or {}
    moment = datetime.fromisoformat(msg.created_at) if msg.created_at else datetime.now(UTC)
    send_date = bag.get("send_date") if "send_date" in bag else int(moment.timestamp() * 1000)
    return ChatMessage(
        name=msg.speaker_name, is_user=msg.role == "user", text=msg.content,
        is_system=bool(bag.get("is_system", msg.role == "system")), timestamp=moment, send_date=send_date,
        swipes=[s["content"] for s in swipes] if (swipes or bag.get("has_swipes")) else None,
        swipe_id=msg.swipe_index if swipes else bag.get("swipe_id"), extra=bag.get("extra"),
        other=bag.get("other") or {}, key_order=tuple(bag.get("key_order") or ()))


def export_st_chat(conn: Any, chat_id: int) -> tuple[bytes, str]:
    """A chat as SillyTavern .jsonl bytes and a file name."""
    row = store.get_chat_row(conn, chat_id)
    settings = json.loads(row["settings_json"] or "{}")
    header = settings.get("st_header")
    if header is None:
        cast = store.cast_rows(conn, chat_id)
        persona = json.loads(row["persona_json"] or "{}")
        header = new_header(persona.get("name") or "User", cast[0]["name"] if cast else "unused")
    messages = [_st_message(m, store.swipes(conn, m.id)) for m in store.list_messages(conn, chat_id)]
    name = (row["title"] or f"chat-{chat_id}").replace("/", "_")
    return export_chat(ParsedChat(header=header, messages=messages)), f"{name}.jsonl"
