"""The write gate: while a restore runs, every write request under /api is refused with a 409 sentence.

A pure-ASGI middleware (streaming responses pass through untouched). A POST/PUT/PATCH/DELETE under /api
passes `Services.writes` (an Admission): refused with MaintenanceMode while a restore runs, else counted until
its response starts, so the restore can wait for writes already running before it swaps the database. The
restore itself and requests that change nothing stored (login, Stop, exports, card drafts, image interrupts)
are not gated.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from neuralrp.errors import MaintenanceMode
from neuralrp.services import Services
from neuralrp.workers import Admission

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
NOT_GATED = re.compile(
    r"^/api/(?:backups/[^/]+/restore|auth/log(?:in|out)|chats/\d+/stop|chats/export/training|images/interrupt"
    r"|cardgen/(?:character|field|from-chat|world))/?$"
)


def gated(method: str, path: str) -> bool:
    """Whether a request is a write the gate holds back during a restore."""
    return method in WRITE_METHODS and path.startswith("/api/") and not NOT_GATED.match(path)


async def _refuse(send: Send, error: MaintenanceMode) -> None:
    body = json.dumps({"error": type(error).__name__, "detail": error.message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": error.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class WriteGate:
    """Refuses gated writes while a restore runs; counts the admitted ones until their response starts."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        door = _door(scope)
        if door is None:
            await self.app(scope, receive, send)
            return
        try:
            door.admit()
        except MaintenanceMode as e:
            await _refuse(send, e)
            return
        inside = True

        def leave() -> None:
            nonlocal inside
            if inside:
                inside = False
                door.leave()

        async def send_then_leave(message: Message) -> None:
            if message["type"] == "http.response.start":
                leave()  # the handler's writes are done; a streamed reply is the GenerationManager's to stop
            await send(message)

        try:
            await self.app(scope, receive, send_then_leave)
        finally:
            leave()


def _door(scope: Scope) -> Admission | None:
    """The running app's write door for a gated request, else None."""
    if scope["type"] != "http" or not gated(scope["method"], scope["path"]):
        return None
    app = scope.get("app")
    services = getattr(getattr(app, "state", None), "services", None)
    return services.writes if isinstance(services, Services) else None
