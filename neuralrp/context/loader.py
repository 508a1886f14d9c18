"""Read a chat's state from the DB for the prompt builder (the builder itself touches no DB)."""

from __future__ import annotations

import json
from typing import Any

from neuralrp.chats import store
from neuralrp.context.state import CastState, ChatState, Limits, Note, SummaryItem
from neuralrp.library.characters import Character, get_character
from neuralrp.retrieval.types import LoreEntry, LoreHit

HISTORY_PAGE = 40
CHARS_PER_TOKEN_FLOOR = 6  # no real tokenizer packs more characters of prose into a token: never under-load


def prompt_chars(msg: store.Message) -> int:
    """Characters a message brings into a prompt: its text plus the notes kept on it."""
    notes = msg.extra.get("notes") if isinstance(msg.extra, dict) else None
    extra = sum(len(str(n.get("text", ""))) for n in notes if isinstance(n, dict)) if isinstance(notes, list) else 0
    return len(msg.content) + extra


def cast_states(conn: Any, chat_id: int) -> list[CastState]:
    """The chat's cast with presence bookkeeping, in cast order."""
    return [CastState(character=get_character(conn, r["character_id"]), active=bool(r["is_active"]),
                      first_turn=r["first_turn"], reset_turn=r["reset_turn"],
                      last_present_turn=r["last_present_turn"], left_turn=r["left_turn"])
            for r in store.cast_rows(conn, chat_id)]


def live_summaries(conn: Any, chat_id: int) -> list[SummaryItem]:
    """Summaries not folded into a newer one, oldest first."""
    rows = conn.execute("SELECT * FROM summaries WHERE chat_id = ? AND archived = 0 ORDER BY start_turn, id",
                        (chat_id,))
    return [SummaryItem(r["id"], r["text"], r["start_turn"], r["end_turn"], r["first_message_id"],
                        r["last_message_id"]) for r in rows]


def chat_world_ids(conn: Any, chat_id: int) -> list[int]:
    """Worlds chosen for the chat plus those that came with the active cast's cards."""
    rows = conn.execute(
        "SELECT world_id AS id FROM chat_worlds WHERE chat_id = ? UNION SELECT w.id FROM worlds w"
        " JOIN chat_cast cc ON cc.character_id = w.character_id WHERE cc.chat_id = ? AND cc.is_active = 1"
        " ORDER BY id", (chat_id, chat_id))
    return [r["id"] for r in rows]


def history_for(conn: Any, chat_id: int, budget: int, *, exclude_message_id: int | None = None,
                continue_message_id: int | None = None) -> list[store.Message]:
    """The newest live messages, page by page until they would fill the budget (unfinished replies left out)."""
    loaded: list[store.Message] = []
    tokens, before = 0, None
    while tokens < budget:
        page = store.list_messages(conn, chat_id, limit=HISTORY_PAGE, before_seq=before)
        if not page:
            break
        loaded = page + loaded
        tokens += sum(prompt_chars(m) // CHARS_PER_TOKEN_FLOOR + 4 for m in page)  # a low estimate: loads enough
        before = page[0].seq
    return [m for m in loaded
            if m.id != exclude_message_id and (m.status != "streaming" or m.id == continue_message_id)]


def load_chat_state(
    conn: Any, chat_id: int, speaker: Character | None, *, budget: int, limits: Limits,
    lore: list[LoreHit] | None = None, canon_law: list[LoreEntry] | None = None,
    exclude_message_id: int | None = None, continue_message_id: int | None = None,
) -> ChatState:
    """Everything the builder needs for this chat's next reply."""
    row = store.get_chat_row(conn, chat_id)
    persona = json.loads(row["persona_json"] or "{}")
    history = history_for(conn, chat_id, budget, exclude_message_id=exclude_message_id,
                          continue_message_id=continue_message_id)
    return ChatState(
        chat_id=chat_id, turn=row["turn"], mode=row["mode"], speaker=speaker, cast=cast_states(conn, chat_id),
        history=history, persona=persona if isinstance(persona, dict) else {},
        summaries=live_summaries(conn, chat_id), lore=lore or [], canon_law=canon_law or [], limits=limits,
        notes=stored_notes(history),
    )


def stored_notes(history: list[store.Message]) -> dict[int, list[Note]]:
    """Notes kept on messages (extra_json["notes"]) by message id."""
    out: dict[int, list[Note]] = {}
    for msg in history:
        raw = msg.extra.get("notes") if isinstance(msg.extra, dict) else None
        if isinstance(raw, list):
            out[msg.id] = [Note(str(n.get("kind", "reminder")), str(n.get("text", "")), dict(n.get("source") or {}))
                           for n in raw if isinstance(n, dict) and n.get("text")]
    return out


def save_notes(conn: Any, notes: dict[str, Any]) -> None:
    """Keep this turn's notes on the user message they belong to (replacing any earlier ones)."""
    message_id = notes.get("message_id")
    if message_id is None:
        return
    row = conn.execute("SELECT extra_json FROM messages WHERE id = ?", (message_id,)).fetchone()
    extra = json.loads(row["extra_json"] or "{}") if row else {}
    extra["notes"] = notes.get("notes", [])
    conn.execute("UPDATE messages SET extra_json = ? WHERE id = ?", (json.dumps(extra, ensure_ascii=False),
                                                                     message_id))


def save_decisions(conn: Any, chat_id: int, decisions: dict[int, dict[str, Any]]) -> None:
    """Persist first appearances, reset turns and full-card turns the builder decided."""
    for char_id, d in decisions.items():
        full_turn = d["turn"] if d["full_card"] else None
        conn.execute("UPDATE chat_cast SET first_turn = coalesce(first_turn, ?), reset_turn = coalesce(reset_turn, ?),"
                     " last_full_card_turn = coalesce(?, last_full_card_turn),"
                     " last_present_turn = coalesce(last_present_turn, ?) WHERE chat_id = ? AND character_id = ?",
                     (d["first_turn"], d["reset_turn"], full_turn, d["first_turn"], chat_id, char_id))
