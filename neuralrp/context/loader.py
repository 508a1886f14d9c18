"""Read a chat's state from the DB for the prompt builder (the builder itself touches no DB)."""

from __future__ import annotations

from typing import Any

from neuralrp.chats import store, summaries, worldlinks
from neuralrp.context.layout import Layout, Pin, layout_of
from neuralrp.context.sections import Prompt
from neuralrp.context.state import CastState, ChatState, Limits, Note, SummaryItem
from neuralrp.db.connection import Connection
from neuralrp.library.characters import Character, get_character
from neuralrp.retrieval.types import LoreEntry, LoreHit

HISTORY_PAGE = 40
LAYOUT_KEY = "prompt_layout"  # the chat setting holding the last reply's prompt layout (context/layout.py)
CHARS_PER_TOKEN_FLOOR = 6  # no real tokenizer packs more characters of prose into a token: never under-load


def prompt_chars(msg: store.Message) -> int:
    """Characters a message brings into a prompt: its text plus the notes kept on it."""
    notes = msg.extra.get("notes") if isinstance(msg.extra, dict) else None
    extra = sum(len(str(n.get("text", ""))) for n in notes if isinstance(n, dict)) if isinstance(notes, list) else 0
    return len(msg.content) + extra


def cast_states(conn: Connection, chat_id: int) -> list[CastState]:
    """The chat's cast with presence bookkeeping, in cast order."""
    return [CastState(character=get_character(conn, m.character_id), active=m.is_active,
                      first_turn=m.first_turn, reset_turn=m.reset_turn,
                      last_present_turn=m.last_present_turn, left_turn=m.left_turn)
            for m in store.cast_members(conn, chat_id)]


def live_summaries(conn: Connection, chat_id: int) -> list[SummaryItem]:
    """Summaries not folded into a newer one, oldest first."""
    return [SummaryItem(s.id, s.text, s.start_turn, s.end_turn, s.first_message_id, s.last_message_id)
            for s in summaries.live_summaries(conn, chat_id)]


def chat_world_ids(conn: Connection, chat_id: int, global_names: list[str] | tuple[str, ...] = ()) -> list[int]:
    """Worlds the chat uses: its own, its active cast's (card link and card book) and the global ones."""
    return [link.world_id for link in worldlinks.world_links(conn, chat_id, global_names)]


def history_for(conn: Connection, chat_id: int, budget: int, *, exclude_message_id: int | None = None,
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
    conn: Connection, chat_id: int, speaker: Character | None, *, budget: int, limits: Limits,
    lore: list[LoreHit] | None = None, canon_law: list[LoreEntry] | None = None,
    exclude_message_id: int | None = None, continue_message_id: int | None = None,
) -> ChatState:
    """Everything the builder needs for this chat's next reply."""
    chat = store.get_chat(conn, chat_id)
    history = history_for(conn, chat_id, budget, exclude_message_id=exclude_message_id,
                          continue_message_id=continue_message_id)
    return ChatState(
        chat_id=chat_id, turn=chat.turn, mode=chat.mode, speaker=speaker, cast=cast_states(conn, chat_id),
        history=history, persona=chat.persona,
        summaries=live_summaries(conn, chat_id), lore=lore or [], canon_law=canon_law or [], limits=limits,
        notes=stored_notes(history), continuing=continue_message_id is not None,
        layout=Layout.from_json(chat.settings.get(LAYOUT_KEY)),
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


def save_notes(conn: Connection, notes: dict[str, Any]) -> None:
    """Keep this turn's notes on the user message they belong to (replacing any earlier ones), and the notes
    earlier messages keep after lore notes were dropped at a planned break."""
    for message_id, kept in notes.get("rewrite", {}).items():
        store.set_extra_key(conn, message_id, "notes", kept)
    message_id = notes.get("message_id")
    if message_id is None:
        return
    store.set_extra_key(conn, message_id, "notes", notes.get("notes", []))


def save_layout(conn: Connection, chat_id: int, prompt: Prompt) -> None:
    """Remember the prompt sent for this reply: the next one is compared with it, and keeps its capsules."""
    store.set_setting_key(conn, chat_id, LAYOUT_KEY, layout_of_prompt(prompt).to_json())


def save_decisions(conn: Connection, chat_id: int, decisions: dict[int, dict[str, Any]]) -> None:
    """Persist first appearances, reset turns and full-card turns the builder decided."""
    for char_id, d in decisions.items():
        store.save_cast_decision(conn, chat_id, char_id, first_turn=d["first_turn"], reset_turn=d["reset_turn"],
                                 full_card_turn=d["turn"] if d["full_card"] else None)


def layout_of_prompt(prompt: Prompt) -> Layout:
    """The layout of a built prompt, with the capsules its head used."""
    pins = {cid: Pin(*pin) for cid, pin in prompt.capsules.items()}
    return layout_of(prompt.sections, pins)
