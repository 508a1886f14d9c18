"""Reachability probes shared by the status API and `neuralrp doctor`."""

from __future__ import annotations

import functools
import logging
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any

import httpx

log = logging.getLogger(__name__)


@dataclass
class Probe:
    """What one backend check found."""

    name: str
    configured: bool
    reachable: bool | None
    url: str | None
    detail: str
    hint: str = ""

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form."""
        return asdict(self)


@functools.cache
def _tls() -> ssl.SSLContext:
    """One TLS context for every client and probe: building one loads the CA bundle, tens of ms on the loop."""
    return httpx.create_ssl_context()


# What anyio's socket stream reads first from its socket when asked for connection details: when the server
# closed the connection while httpcore was opening it, that socket is already None.
_SOCKET_ATTRIBUTES = frozenset({"getpeername", "getsockname", "family"})


def is_dead_socket(exc: AttributeError) -> bool:
    """True for the AttributeError httpcore lets through when the server closed the connection while it was
    being opened ("'NoneType' object has no attribute 'getpeername'"); any other AttributeError is a bug."""
    return exc.obj is None and exc.name in _SOCKET_ATTRIBUTES


class GuardedTransport(httpx.AsyncBaseTransport):
    """A transport whose dead-socket AttributeError (see is_dead_socket) comes out as httpx.ConnectError, so
    every `except httpx.HTTPError` sees a server that died mid-connect as what it is."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send through the wrapped transport."""
        try:
            return await self._inner.handle_async_request(request)
        except AttributeError as e:
            if not is_dead_socket(e):
                raise
            raise httpx.ConnectError("the server closed the connection while it was being opened",
                                     request=request) from e

    async def aclose(self) -> None:
        """Close the wrapped transport."""
        await self._inner.aclose()


def guarded(transport: httpx.AsyncBaseTransport | None) -> GuardedTransport:
    """`transport` (a test seam), else httpx's own with the shared TLS context, wrapped in GuardedTransport."""
    inner = transport if transport is not None else httpx.AsyncHTTPTransport(verify=_tls(), trust_env=False)
    return GuardedTransport(inner)


async def probe_http(
    name: str,
    base_url: str | None,
    path: str,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    timeout_s: float = 3.0,
    not_configured_hint: str = "",
) -> Probe:
    """GET base_url+path and report whether the server answered sensibly."""
    if not base_url:
        return Probe(name, False, None, None, "not configured", not_configured_hint)
    url = base_url.rstrip("/") + path
    try:
        async with httpx.AsyncClient(transport=guarded(transport), timeout=timeout_s, trust_env=False) as client:
            resp = await client.get(url)
    except httpx.TimeoutException:
        return Probe(name, True, False, base_url, f"no answer from {url} within {timeout_s:g} s",
                     "is the server still loading a model? check its console")
    except httpx.HTTPError as e:
        return Probe(name, True, False, base_url, f"cannot connect to {url} ({type(e).__name__})",
                     f"start the {name} server or fix {name}.base_url")
    if resp.status_code >= 400:
        return Probe(name, True, False, base_url, f"{url} answered HTTP {resp.status_code}",
                     _status_hint(name, resp.status_code))
    return Probe(name, True, True, base_url, f"{url} answered HTTP {resp.status_code}")


def _status_hint(name: str, status: int) -> str:
    if status in (401, 403):
        return f"the server wants a key: set {name}.api_key" if name == "llm" else "check the server's auth"
    if status == 404 and name == "images":
        return "start AUTOMATIC1111 with --api (or use Forge / SD.Next / KoboldCpp with an image model)"
    return "check the server's console for errors"


class ProbeCache:
    """The last probe of a server, reused for `ttl_s` seconds and while the server is busy generating.

    A single-slot LLM server answers any request (even GET /v1/models) only between generations, and
    llama-cpp-python's would even cut the running one: a page open must not ask it each time.
    """

    def __init__(self, ttl_s: float = 15.0) -> None:
        self.ttl_s = ttl_s
        self._last: Probe | None = None
        self._at = 0.0
        self._url: str | None = None

    def clear(self) -> None:
        """Forget the last probe (the server's address changed)."""
        self._last = None

    async def get(self, fresh: Callable[[], Awaitable[Probe]], *, busy: bool, url: str | None) -> Probe:
        """The cached probe when recent and of the same `url` (or when busy); else a fresh one (reachable answers
        are kept)."""
        now = time.monotonic()
        if busy:
            return self._while_busy(url)
        if self._last is not None and url == self._url and now - self._at < self.ttl_s:
            return self._last
        probe = await fresh()
        self._last, self._at, self._url = (probe, now, url) if probe.reachable else (None, 0.0, None)
        return probe

    def _while_busy(self, url: str | None) -> Probe:
        detail = "generating now; not asked, so the reply is not held up"
        if self._last is None:  # a generation in flight is the evidence that it answers
            return Probe("llm", True, True, url, detail)
        return Probe(self._last.name, True, self._last.reachable, self._last.url, f"{self._last.detail} ({detail})",
                     self._last.hint)
