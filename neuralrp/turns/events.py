"""Typed reply events and their one wire form.

A reply is a sequence of events: `user` (only when a sent message started it), `start`, any number of
`token`, then exactly one final event, `done` or `error`. In Auto mode several addressed characters may answer
in turn: a `done` with `more: true` is followed by the next reply's `start`, tokens and `done`.
`GET /api/chats/{id}/stream` answers `idle` when no reply runs. Every route sends events through `payload()`
(the JSON object, `type` first) and `sse()` (that object framed for text/event-stream); `json_outcome()` is the
answer of a reply that is not streamed (or failed before its first token), built from the same payloads.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from typing import Any, ClassVar

MessageData = dict[str, Any]  # a stored message as the API shows it (store.Message.public())


@dataclass(frozen=True)
class UserSaved:
    """The user's message was saved (before the reply row exists)."""

    message: MessageData
    type: ClassVar[str] = "user"


@dataclass(frozen=True)
class Start:
    """The reply row exists; `message` is its state when writing began."""

    message: MessageData
    type: ClassVar[str] = "start"


@dataclass(frozen=True)
class Token:
    """A piece of text, already stored on the reply row."""

    text: str
    type: ClassVar[str] = "token"


@dataclass(frozen=True)
class Done:
    """The reply ended normally or by Stop; `message` is None when Stop left nothing (the row is gone).

    `more`: another character answers next (Auto mode, several addressed): a `start` of that reply follows, and
    this `done` does not end the stream."""

    message: MessageData | None
    stopped: bool
    more: bool = False
    type: ClassVar[str] = "done"


@dataclass(frozen=True)
class Failed:
    """The reply failed: `detail` is the sentence to show, `status` the HTTP status it maps to."""

    detail: str
    status: int
    error: str
    message: MessageData | None
    type: ClassVar[str] = "error"


@dataclass(frozen=True)
class Idle:
    """No reply is running in this chat (answer of the stream route)."""

    chat_id: int
    type: ClassVar[str] = "idle"


ReplyEvent = UserSaved | Start | Token | Done | Failed
Event = ReplyEvent | Idle


def is_final(event: Event) -> bool:
    """Whether the event ends the reply stream (error, or a done with no reply after it)."""
    return isinstance(event, Failed) or (isinstance(event, Done) and not event.more)


def payload(event: Event) -> dict[str, Any]:
    """The event as JSON data: its type, then its fields."""
    return {"type": event.type, **{f.name: getattr(event, f.name) for f in fields(event)}}


def sse(event: Event) -> dict[str, str]:
    """The event as one Server-Sent Event (`event:` is the type, `data:` the payload)."""
    return {"event": event.type, "data": json.dumps(payload(event), ensure_ascii=False)}


def json_outcome(events: list[ReplyEvent]) -> tuple[int, dict[str, Any]]:
    """The HTTP status and JSON body that sum up a finished (or failed) reply.

    Success is 201 with `user` (when sent), `reply` (the last one), `replies` (each one, when several characters
    answered in turn) and `stopped`; a failure is the error payload with its status, plus `user` and `replies`.
    """
    status = 201
    body: dict[str, Any] = {}
    for event in events:
        if isinstance(event, UserSaved):
            body["user"] = event.message
        elif isinstance(event, Done):
            body.update(reply=event.message, stopped=event.stopped)
            body["replies"] = [*body.get("replies", []), *([event.message] if event.message else [])]
        elif isinstance(event, Failed):
            status = event.status
            body.update(payload(event))
    return status, body
