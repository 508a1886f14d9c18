"""Shared plumbing of the fake servers: request recording, armed faults and KoboldCpp's 404.

`FakeServerBase` builds a FastAPI app in `.app` wrapped in an ASGI middleware that records every request as a
`RecordedRequest` and collects the armed faults matching its path (`Faults`, `{kind: params}`).  Subclasses
declare `fault_kinds` (kind -> allowed parameters) and `default_fault_paths`, and may override
`_early_response` to answer before routing (auth failures, `status` faults).  `FakeLLM` and `FakeA1111` build on it.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, Response

from .sse import Message, Receive, Scope, Send

Faults = dict[str, dict[str, Any]]


@dataclass
class RecordedRequest:
    """One request as the fake saw it."""

    method: str
    path: str
    headers: dict[str, str]
    json: Any
    time: float
    query: str = ""
    body: bytes = b""


@dataclass
class Fault:
    """An armed fault: `kind` with `params`, for `times` more requests (None = persistent) on `path`."""

    kind: str
    params: dict[str, Any]
    times: int | None = 1
    path: str | None = None


async def _read_body(receive: Receive) -> bytes:
    """Read the whole request body from an ASGI receive callable."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive callable that yields the buffered body once, then defers to the real one."""
    sent = False

    async def inner() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return inner


def parse_json(body: bytes) -> Any:
    """Parse a JSON body, or None when empty or invalid."""
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


class _Recorder:
    """ASGI middleware: records each request, applies early faults, then calls the app."""

    def __init__(self, app: Any, owner: FakeServerBase) -> None:
        self.app = app
        self.owner = owner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Record and dispatch one ASGI call."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        record = self.owner._record(scope, body)
        faults = self.owner.take_faults(record.path)
        early = self.owner._early_response(record, faults)
        if early is not None:
            await early(scope, _replay(body, receive), send)
            return
        scope["fake.faults"] = faults
        await self.app(scope, _replay(body, receive), send)


class FakeServerBase:
    """Shared recording and fault bookkeeping for the fake servers."""

    fault_kinds: dict[str, frozenset[str]] = {}
    default_fault_paths: tuple[str, ...] = ()

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self.app = FastAPI()
        self.app.add_middleware(_Recorder, owner=self)

    def fault(self, kind: str, *, times: int | None = 1, path: str | None = None, **params: Any) -> Fault:
        """Arm a fault for the next `times` matching requests (None = until cleared)."""
        allowed = self.fault_kinds.get(kind)
        if allowed is None:
            raise ValueError(f"unknown fault kind {kind!r}; known: {sorted(self.fault_kinds)}")
        unknown = set(params) - allowed
        if unknown:
            raise ValueError(f"fault {kind!r} does not take {sorted(unknown)}")
        armed = Fault(kind, dict(params), times, path)
        with self._lock:
            self._faults.append(armed)
        return armed

    def set_fault(self, kind: str, *, path: str | None = None, **params: Any) -> Fault:
        """Arm a persistent fault (until `clear_faults()`)."""
        return self.fault(kind, times=None, path=path, **params)

    def clear_faults(self) -> None:
        """Disarm every fault."""
        with self._lock:
            self._faults.clear()

    def take_faults(self, path: str) -> Faults:
        """Collect the faults matching `path` as {kind: params}, using up one-shot ones."""
        taken: Faults = {}
        with self._lock:
            for armed in list(self._faults):
                hit = path == armed.path if armed.path else path in self.default_fault_paths
                if not hit:
                    continue
                taken.setdefault(armed.kind, {}).update(armed.params)
                if armed.times is not None:
                    armed.times -= 1
                    if armed.times <= 0:
                        self._faults.remove(armed)
        return taken

    def requests_to(self, path: str, method: str | None = None) -> list[RecordedRequest]:
        """All recorded requests to `path` (optionally only with `method`)."""
        return [r for r in self.requests if r.path == path and (method is None or r.method == method)]

    def last_request(self, path: str | None = None) -> RecordedRequest:
        """The most recent request (to `path` if given); AssertionError when there is none."""
        found = self.requests if path is None else self.requests_to(path)
        assert found, f"no request recorded{'' if path is None else ' to ' + path}"
        return found[-1]

    def reset(self) -> None:
        """Forget recorded requests and faults."""
        self.requests.clear()
        self.clear_faults()

    def _record(self, scope: Scope, body: bytes) -> RecordedRequest:
        """Append a RecordedRequest for this ASGI scope."""
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        record = RecordedRequest(
            method=scope["method"],
            path=scope["path"],
            headers=headers,
            json=parse_json(body),
            time=time.time(),
            query=scope.get("query_string", b"").decode("latin-1"),
            body=body,
        )
        self.requests.append(record)
        return record

    def _early_response(self, record: RecordedRequest, faults: Faults) -> Response | None:
        """A response to send instead of calling the app (auth failures, status faults)."""
        return None


def kobold_not_found(method: str) -> Response:
    """KoboldCpp's answer to an unknown route: 404 text/html for GET, an empty 404 otherwise."""
    if method == "GET":
        text = "Error: KoboldCpp HTTP Server is running, but this endpoint does not exist. Please check the URL."
        return HTMLResponse(text, status_code=404)
    return Response(status_code=404)
