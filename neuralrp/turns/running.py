"""One running reply: the message it writes into (Target), its text so far (Draft), and its event log that
any number of listeners follow (Generation). The GenerationManager (generation.py) drives them."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Literal

from neuralrp.turns.events import Done, Failed, ReplyEvent, Token, is_final
from neuralrp.turns.hygiene import Voice

log = logging.getLogger(__name__)

Kind = Literal["reply", "regenerate", "continue"]
Phase = Literal["opening", "writing", "ending"]


@dataclass
class Target:
    """The message a generation writes into and what it started from."""

    message_id: int
    base_text: str
    swipe_idx: int | None
    previous_text: str
    voice: Voice | None = None  # whose reply this is (neuralrp/turns/hygiene.py)


@dataclass
class Draft:
    """The reply text so far and the row write still in flight, if any."""

    target: Target
    text: str = ""
    pending: asyncio.Future[None] | None = field(default=None, repr=False)

    @property
    def grew(self) -> bool:
        """Whether any text was written since the reply began."""
        return self.text != self.target.base_text


class Generation:
    """One running reply: an event log that any number of listeners can follow."""

    def __init__(self, chat_id: int, kind: Kind) -> None:
        self.chat_id = chat_id
        self.kind = kind
        self.events: list[ReplyEvent] = []
        self.finished = asyncio.Event()
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.phase: Phase = "opening"
        self.stop_requested = False
        self.speaker_id: int | None = None  # "speak next": the cast member asked to answer
        self.next_speaker: int | None = None  # Auto mode: the next addressed character to answer in turn
        self.task: asyncio.Task[None] | None = None
        self.on_end: Callable[[], None] = lambda: None
        self._wakeup = asyncio.Event()

    def publish(self, event: ReplyEvent) -> None:
        """Append an event and wake listeners; a final event first frees the chat for the next reply."""
        if self.finished.is_set():
            log.error("chat %d: %s event after the reply ended was dropped", self.chat_id, event.type)
            return
        self.events.append(event)
        if is_final(event):
            self.on_end()
            self.finished.set()
        wake, self._wakeup = self._wakeup, asyncio.Event()
        wake.set()

    async def follow(self) -> AsyncIterator[ReplyEvent]:
        """All events from the first, then new ones until the reply ends."""
        index = 0
        while True:
            while index < len(self.events):
                event = self.events[index]
                index += 1
                yield event
                if is_final(event):
                    return
            await self._wakeup.wait()

    async def first_outcome(self) -> ReplyEvent:
        """The first token, done or error event (whichever comes first)."""
        async for event in self.follow():
            if isinstance(event, Token | Done | Failed):
                return event
        raise RuntimeError("event stream ended without an outcome")

    def request_stop(self) -> None:
        """Stop: cancel the task while it writes; before that it stops by itself, after that it is ending."""
        self.stop_requested = True
        if self.phase == "writing" and self.task is not None:
            self.task.cancel()
