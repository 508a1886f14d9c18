"""Export chats as fine-tuning data (JSONL): Alpaca, ShareGPT and ChatML, as Unsloth reads them.

- ``sharegpt``: one line per chat, ``{"conversations": [{"from": "system"|"human"|"gpt", "value": str}]}``.
  Every turn has exactly the keys ``from`` and ``value`` (Unsloth's ``standardize_sharegpt`` needs
  exactly two string keys); speaker names go into the text ("Name: ...") in group chats, never into ``from``.
- ``chatml``: one line per chat, ``{"messages": [{"role": "system"|"user"|"assistant", "content": str}]}``;
  with ``chatml_text`` instead ``{"text": "<|im_start|>role\\ncontent<|im_end|>\\n..."}``.
- ``alpaca``: one line per reply that follows a user message, ``{"instruction": <user message>,
  "input": <system context + recent history>, "output": <the reply>}``.

Only live messages are exported (archived, deleted and summarized ones are not; summaries can
stand in for them as system context), with the chosen swipe's text; system notes, failed and
empty messages are skipped. Consecutive messages of one role are merged into one turn.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from neuralrp.chats import store, summaries
from neuralrp.chats.service import active_cast
from neuralrp.db.connection import Connection
from neuralrp.errors import InvalidInput
from neuralrp.library.macros import substitute

Format = Literal["alpaca", "sharegpt", "chatml"]
FORMATS: tuple[str, ...] = ("alpaca", "sharegpt", "chatml")
SHAREGPT_ROLES = {"system": "system", "user": "human", "assistant": "gpt"}
_CARD_FIELDS = ("description", "personality", "scenario")


@dataclass(frozen=True)
class TrainingOptions:
    """What goes into the exported examples."""

    include_characters: bool = True
    include_summaries: bool = False
    speaker_names: Literal["auto", "always", "never"] = "auto"
    alpaca_history: int = 10
    chatml_text: bool = False


@dataclass
class Turn:
    """One exported turn: consecutive messages of one role merged."""

    role: str
    text: str
    labelled: str


def system_context(conn: Connection, chat_id: int, options: TrainingOptions) -> str:
    """The system message: active cast cards and, optionally, the live scene summaries."""
    user = store.get_chat(conn, chat_id).user_name
    parts: list[str] = []
    if options.include_characters:
        for char in active_cast(conn, chat_id):
            fields = [substitute(char.field(f).strip(), char.name, user) for f in _CARD_FIELDS]
            body = "\n".join(f for f in fields if f)
            parts.append(f"{char.name}: {body}" if body else char.name)
    if options.include_summaries:
        live = summaries.live_summaries(conn, chat_id)
        if live:
            parts.append("Story so far:\n" + "\n\n".join(s.text.strip() for s in live))
    return "\n\n".join(p for p in parts if p)


def conversation(conn: Connection, chat_id: int, options: TrainingOptions) -> list[Turn]:
    """The chat's live user/assistant messages as merged turns, names in the text when asked."""
    user = store.get_chat(conn, chat_id).user_name
    rows = [m for m in store.list_messages(conn, chat_id)
            if m.role in ("user", "assistant") and m.status in ("complete", "incomplete") and m.content.strip()]
    speakers = {m.speaker_name for m in rows if m.role == "assistant"}
    named = options.speaker_names == "always" or (options.speaker_names == "auto" and len(speakers) > 1)
    turns: list[Turn] = []
    for msg in rows:
        label = f"{msg.speaker_name or (user if msg.role == 'user' else 'Narrator')}: {msg.content.strip()}"
        text = label if named else msg.content.strip()
        if turns and turns[-1].role == msg.role:
            turns[-1].text += "\n\n" + text
            turns[-1].labelled += "\n\n" + label
        else:
            turns.append(Turn(msg.role, text, label))
    return turns


def chat_records(conn: Connection, chat_id: int, fmt: str,
                 options: TrainingOptions | None = None) -> list[dict[str, Any]]:
    """The training examples one chat gives in a format (none if it has no reply)."""
    options = options or TrainingOptions()
    if fmt not in FORMATS:
        raise InvalidInput(f"unknown training format '{fmt}'; use one of {', '.join(FORMATS)}")
    system = system_context(conn, chat_id, options)
    turns = conversation(conn, chat_id, options)
    if not any(t.role == "assistant" for t in turns):
        return []
    if fmt == "alpaca":
        return alpaca(system, turns, options.alpaca_history)
    pairs = ([("system", system)] if system else []) + [(t.role, t.text) for t in turns]
    if fmt == "sharegpt":
        return [{"conversations": [{"from": SHAREGPT_ROLES[r], "value": v} for r, v in pairs]}]
    if options.chatml_text:
        return [{"text": chatml_text(pairs)}]
    return [{"messages": [{"role": r, "content": v} for r, v in pairs]}]


def alpaca(system: str, turns: list[Turn], history: int) -> list[dict[str, str]]:
    """One example per reply that follows a user turn: history in input, the reply as output."""
    rows = []
    for i in range(1, len(turns)):
        if turns[i].role != "assistant" or turns[i - 1].role != "user":
            continue
        earlier = [t.labelled for t in turns[max(0, i - 1 - history):i - 1]] if history > 0 else []
        context = "\n\n".join(p for p in (system, "\n".join(earlier)) if p)
        rows.append({"instruction": turns[i - 1].text, "input": context, "output": turns[i].text})
    return rows


def chatml_text(pairs: list[tuple[str, str]]) -> str:
    """The rendered ChatML text of a conversation (no trailing generation prompt)."""
    return "".join(f"<|im_start|>{role}\n{content}<|im_end|>\n" for role, content in pairs)


def export_training(conn: Connection, chat_ids: list[int], fmt: str, options: TrainingOptions | None = None) -> bytes:
    """JSONL training data for these chats (all chats when none are given)."""
    ids = chat_ids or store.chat_ids(conn)
    lines = []
    for chat_id in ids:
        for record in chat_records(conn, chat_id, fmt, options):
            lines.append(json.dumps(record, ensure_ascii=False))
    return ("\n".join(lines) + "\n").encode("utf-8") if lines else b""
