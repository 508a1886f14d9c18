"""Plain-data builders for context tests (no DB)."""

from __future__ import annotations

from typing import Any

from neuralrp.chats.store import Message
from neuralrp.context.state import CastState, ChatState, Limits, SummaryItem
from neuralrp.library.characters import Character
from neuralrp.retrieval.types import LoreEntry, LoreHit


def char(cid: int, name: str, **data: Any) -> Character:
    fields = {"name": name, "description": f"{name} is a wandering {name.lower()}-mage of the north.",
              "personality": "brave, stubborn, loyal, funny", "scenario": "", "mes_example":
              f"<START>\n{{{{char}}}}: I am {name}, and I do not yield.", **data}
    return Character(id=cid, uid=f"u{cid}", name=name, card={"spec": "chara_card_v2", "data": fields})


def msg(mid: int, role: str, text: str, turn: int, speaker: str = "") -> Message:
    return Message(id=mid, chat_id=1, seq=mid, turn=turn, role=role, character_id=None,
                   speaker_name=speaker, content=text, status="complete")


def conversation(turns: int, words: int = 12) -> list[Message]:
    out: list[Message] = []
    for t in range(1, turns + 1):
        out.append(msg(len(out) + 1, "user", f"User line {t}: " + "walk " * words, t))
        out.append(msg(len(out) + 1, "assistant", f"Reply {t}: " + "answer " * words, t, "Ayla"))
    return out


def entry(eid: int, content: str, *, canon: bool = False, keys: tuple[str, ...] = ("x",)) -> LoreEntry:
    return LoreEntry(id=eid, world_id=1, keys=keys, content=content, canon_law=canon)


def hit(eid: int, content: str, reason: str = "keyword", score: float = 1.0) -> LoreHit:
    return LoreHit(entry=entry(eid, content), reason=reason, score=score, matched=("x",))  # type: ignore[arg-type]


def state(turn: int, cast: list[CastState], history: list[Message], **kw: Any) -> ChatState:
    speaker = kw.pop("speaker", cast[0].character if cast else None)
    return ChatState(chat_id=1, turn=turn, mode=kw.pop("mode", "focus"), speaker=speaker, cast=cast,
                     history=history, persona=kw.pop("persona", {"name": "Ari", "description": "a curious scribe"}),
                     limits=kw.pop("limits", Limits()), **kw)


def summary(sid: int, start: int, end: int, text: str) -> SummaryItem:
    return SummaryItem(id=sid, text=text, start_turn=start, end_turn=end, first_message_id=start * 2 - 1,
                       last_message_id=end * 2)
