"""A transport that fails the way httpcore does when the server closes the connection while it is being opened.

Under uvloop, anyio's socket stream asks the asyncio transport for its socket to read the peer address; once the
connection is lost that socket is None, so httpcore lets an AttributeError through instead of an httpx error:
"'NoneType' object has no attribute 'getpeername'". `DeadSocketTransport` raises exactly that (the same call on
None), counting the requests it got; `BrokenTransport` raises an unrelated AttributeError (a bug, which must not
be hidden).
"""

from __future__ import annotations

from typing import Any

import httpx


class DeadSocketTransport(httpx.AsyncBaseTransport):
    """Every request dies as if the server closed the socket mid-connect."""

    def __init__(self) -> None:
        self.requests = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        lost_socket: Any = None  # what the closed transport reports as its socket
        lost_socket.getpeername()
        raise AssertionError("unreachable")


class BrokenTransport(httpx.AsyncBaseTransport):
    """Every request hits a programming error (an AttributeError that has nothing to do with sockets)."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        settings: Any = object()
        return settings.no_such_setting
