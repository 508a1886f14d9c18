"""Access control and cross-site protection: bind check, token login, Host/Origin guards, JSON limits.

One pure-ASGI middleware (streaming responses pass through untouched) applies, in order:

1. DNS-rebinding guard: the `Host` header must be an IP literal, `localhost` (or `*.localhost`), the
   configured `server.host`, one of `security.allowed_hosts`, or the name the ASGI server reports for its
   own socket (`scope["server"]`; uvicorn reports the socket's IP, Starlette's TestClient `testserver`).
   A rebinding attack always carries the attacker's DNS name, which none of these match.
2. Cross-site guard: a POST/PUT/PATCH/DELETE whose `Origin` (else `Referer`) names another host:port is
   refused; requests carrying neither (curl, scripts) pass.  No CORS headers are ever sent.
3. Access token (only when `security.access_token` is set): `Authorization: Bearer <token>` or the
   HttpOnly cookie set by `POST /api/auth/login`; unauthenticated page loads go to /login.html.
4. JSON request bodies deeper than `security.max_json_depth` are refused before any parser sees them (a big
   body is checked on a worker thread, so the event loop keeps answering meanwhile).
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import re
import secrets
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Iterator, MutableMapping
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Body, FastAPI, Request, Response
from fastapi.responses import JSONResponse

from neuralrp.config import Settings
from neuralrp.sessions import LoginLimiter, SessionStore

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

TOKEN_ENV = "NEURALRP_SECURITY_ACCESS_TOKEN"
MIN_TOKEN_CHARS = 16  # an exposed server's token: shorter ones are refused at start
COOKIE = "neuralrp_session"
LOGIN_PAGE = "/login.html"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
OPEN_PATHS = frozenset({"/api/system/health", "/api/auth/login", "/api/auth/logout", LOGIN_PAGE,
                        "/js/login.js", "/favicon.svg", "/css/app.css"})
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"content-security-policy", CSP.encode()),
]


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost (with or without brackets)."""
    name = host.strip().strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def has_token(settings: Settings) -> bool:
    """True when a non-blank access token is configured."""
    return bool((settings.security.access_token or "").strip())


def bind_problem(settings: Settings) -> str | None:
    """Why serving on `server.host` is refused (non-loopback without a token), or None when it is fine."""
    host = settings.server.host
    token = (settings.security.access_token or "").strip()
    if token and len(token) < MIN_TOKEN_CHARS and not is_loopback(host):
        return (f"refusing to listen on {host}: the access token has {len(token)} characters; an exposed server "
                f"needs at least {MIN_TOKEN_CHARS} (set security.access_token or {TOKEN_ENV}, or unset it to have "
                "one generated and printed at start)")
    if is_loopback(host) or has_token(settings):
        return None
    return (f"refusing to listen on {host}: that address is reachable from other machines, so NeuralRP needs an "
            f"access token. Set security.access_token in config.yaml or the {TOKEN_ENV} environment variable "
            "(anyone with the token can use NeuralRP), or serve on 127.0.0.1.")


def generated_token() -> str:
    """A fresh random access token (32 URL-safe characters) for an exposed server started without one."""
    return secrets.token_urlsafe(24)


def _split_host(value: str) -> str:
    """The host name of a Host header or netloc, lower-case, without port or brackets."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:].split("]", 1)[0]
    if value.count(":") > 1:
        return value
    return value.split(":", 1)[0]


def _is_ip(name: str) -> bool:
    """True when `name` is an IPv4/IPv6 literal."""
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def host_allowed(host_header: str, settings: Settings, server_name: str | None) -> bool:
    """DNS-rebinding guard: is this Host one NeuralRP answers to?"""
    name = _split_host(host_header).rstrip(".")
    if not name or _is_ip(name) or is_loopback(name):
        return True
    allowed = {h.strip().lower().rstrip(".") for h in settings.security.allowed_hosts}
    allowed.add(_split_host(settings.server.host))
    if server_name:
        allowed.add(server_name.lower())
    return name in allowed or "*" in allowed


def origin_problem(method: str, headers: dict[str, str]) -> str | None:
    """Why a state-changing request looks cross-site, or None when it is same-origin or not from a browser."""
    if method not in UNSAFE_METHODS:
        return None
    origin = headers.get("origin")
    source = "Origin"
    if origin is None and headers.get("referer"):
        origin, source = headers["referer"], "Referer"
    if origin is None:
        return None
    if origin.strip() == "null":
        return "the request comes from an opaque origin (Origin: null); cross-site requests are refused"
    netloc = urlsplit(origin.strip()).netloc.lower()
    host = headers.get("host", "").lower()
    if netloc and netloc == host:
        return None
    return f"the {source} header ({origin[:200]}) does not match this server ({host}); cross-site requests are refused"


def authenticated(headers: dict[str, str], token: str, sessions: SessionStore) -> bool:
    """True when the request carries the bearer token (constant-time compare) or a live session cookie."""
    auth = headers.get("authorization", "")
    if auth[:7].lower() == "bearer " and hmac.compare_digest(auth[7:].strip().encode(), token.encode()):
        return True
    cookie = _cookie(headers.get("cookie", ""), COOKIE)
    return cookie is not None and sessions.valid(cookie, token)


def _cookie(header: str, name: str) -> str | None:
    """One cookie's value from a Cookie header."""
    for part in header.split(";"):
        key, sep, value = part.strip().partition("=")
        if sep and key == name:
            return value.strip().strip('"')
    return None


_SQUARE = bytes.maketrans(b"{}", b"[]")
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'"[]{}')
_RUNS = re.compile(rb"\[+|\]+")
DEPTH_SLICE = 1 << 20  # bytes per pass: each C-level step holds the GIL for a few milliseconds at most
INLINE_CHECK_BYTES = 64 * 1024  # bodies above this are checked on a worker thread, not on the event loop


def _pieces(chunks: Iterable[bytes], size: int) -> Iterator[bytes]:
    """The text of `chunks` in pieces of about `size` bytes; a run of backslashes and the byte after it always
    stay in one piece, so each piece can drop its escapes on its own."""
    carry = b""
    for chunk in chunks:
        data = carry + chunk if carry else chunk
        carry = b""
        start = 0
        while start < len(data):
            end = min(start + size, len(data))
            while end < len(data) and data[end - 1] == 0x5C:
                end += 1
            if data[end - 1] == 0x5C:  # the chunk ends inside a run of backslashes: finish it with the next
                run = len(data[start:end].rstrip(b"\\"))
                if run:
                    yield data[start:start + run]
                carry = data[start + run:end]
                break
            yield data[start:end]
            start = end
    if carry:
        yield carry


def _deepest(brackets: bytes, depth: int, limit: int) -> int | None:
    """The depth after a run of `[`/`]`, or None when it goes past `limit` on the way."""
    opens = brackets.count(b"[")
    if depth + opens <= limit:
        return depth + opens - (len(brackets) - opens)
    for run in _RUNS.findall(brackets):
        if run[0] == 0x5B:
            depth += len(run)
            if depth > limit:
                return None
        else:
            depth -= len(run)
    return depth


def json_depth_exceeds(body: bytes | Iterable[bytes], limit: int, *, slice_bytes: int = DEPTH_SLICE) -> bool:
    """True when JSON text (bytes, or the chunks it arrived in) nests arrays/objects deeper than `limit`.

    Linear and C-speed: per slice, escapes are dropped, everything but quotes and brackets is deleted, the text
    between quotes goes, and only the runs of brackets left are counted in Python. Strings are skipped.
    """
    depth = 0
    in_string = False
    for piece in _pieces([body] if isinstance(body, bytes) else body, slice_bytes):
        skeleton = piece.replace(b"\\\\", b"").replace(b'\\"', b"").translate(_SQUARE, _NOT_STRUCTURE)
        parts = skeleton.split(b'"')
        outside = b"".join(parts[1 if in_string else 0::2])
        in_string ^= len(parts) % 2 == 0
        reached = _deepest(outside, depth, limit)
        if reached is None:
            return True
        depth = reached
    return False


async def _depth_exceeds(chunks: list[bytes], size: int, limit: int) -> bool:
    """json_depth_exceeds, on a worker thread for a big body so the event loop keeps answering."""
    if size <= INLINE_CHECK_BYTES:
        return json_depth_exceeds(chunks, limit)
    return await asyncio.to_thread(json_depth_exceeds, chunks, limit)


async def _send_json(send: Send, status: int, error: str, detail: str,
                     extra: tuple[tuple[bytes, bytes], ...] = ()) -> None:
    """Answer with NeuralRP's error body `{error, detail}`."""
    body = json.dumps({"error": error, "detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               *SECURITY_HEADERS, *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _redirect(send: Send, location: str) -> None:
    """A 303 to the login page."""
    headers = [(b"location", location.encode()), (b"content-length", b"0"), *SECURITY_HEADERS]
    await send({"type": "http.response.start", "status": 303, "headers": headers})
    await send({"type": "http.response.body", "body": b""})


class SecurityMiddleware:
    """The Host, Origin, token and JSON-depth guards, in front of every HTTP request."""

    def __init__(self, app: ASGIApp, settings: Settings, sessions: SessionStore | None = None) -> None:
        self.app = app
        self.settings = settings
        self.sessions = sessions if sessions is not None else SessionStore()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if await self._refused(scope, headers, send):
            return
        content_type = headers.get("content-type", "").lower()  # FastAPI parses `application/JSON` and none as JSON
        if scope["method"] in UNSAFE_METHODS and ("json" in content_type or not content_type):
            checked = await self._checked_body(receive, send)
            if checked is None:
                return
            receive = checked
        await self.app(scope, receive, self._with_headers(send))

    async def _refused(self, scope: Scope, headers: dict[str, str], send: Send) -> bool:
        """Answer and return True when the Host, Origin or token check fails."""
        server = scope.get("server")
        if not host_allowed(headers.get("host", ""), self.settings, server[0] if server else None):
            await _send_json(send, 403, "HostNotAllowed",
                             f"this server does not answer to the host name {headers.get('host', '')[:200]!r}; "
                             "add it to security.allowed_hosts in config.yaml to allow it (DNS-rebinding guard)")
            return True
        problem = origin_problem(scope["method"], headers)
        if problem:
            await _send_json(send, 403, "CrossSiteRequest", problem)
            return True
        token = (self.settings.security.access_token or "").strip()
        if not token or scope["path"] in OPEN_PATHS or authenticated(headers, token, self.sessions):
            return False
        if scope["path"].startswith("/api/") or scope["method"] not in ("GET", "HEAD"):
            await _send_json(send, 401, "Unauthorized", "this NeuralRP server needs its access token: log in first",
                             ((b"www-authenticate", b'Bearer realm="neuralrp"'),))
        else:
            await _redirect(send, LOGIN_PAGE)
        return True

    async def _checked_body(self, receive: Receive, send: Send) -> Receive | None:
        """Read a JSON body (bounded) and refuse it when too large or too deep; else replay it."""
        limit = self.settings.security.max_upload_mb * 1024 * 1024
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return _replay([message])
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > limit:
                await _send_json(send, 413, "PayloadTooLarge",
                                 f"the request body is over the {self.settings.security.max_upload_mb} MiB limit "
                                 "(security.max_upload_mb)")
                return None
            if not message.get("more_body", False):
                break
        if await _depth_exceeds(chunks, size, self.settings.security.max_json_depth):
            await _send_json(send, 422, "InvalidInput",
                             f"the JSON body nests deeper than {self.settings.security.max_json_depth} levels "
                             "(security.max_json_depth)")
            return None
        last = len(chunks) - 1  # replayed as they came: joining 19 MiB here would be one more copy on the loop
        return _replay([{"type": "http.request", "body": chunk, "more_body": i < last}
                        for i, chunk in enumerate(chunks)], receive)

    @staticmethod
    def _with_headers(send: Send) -> Send:
        """Wrap `send` to add the security headers and drop any CORS header."""

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [(k, v) for k, v in message.get("headers", [])
                        if not k.lower().startswith(b"access-control-")]
                names = {k.lower() for k, _ in kept}
                kept += [(k, v) for k, v in SECURITY_HEADERS if k not in names]
                message = {**message, "headers": kept}
            await send(message)

        return wrapped


def _replay(messages: list[Message], then: Receive | None = None) -> Receive:
    """A receive() that yields `messages` first, then defers to `then` (disconnect detection keeps working)."""
    pending = deque(messages)  # popped, not iterated: a replayed chunk is freed once the app has taken it

    async def receive() -> Message:
        if pending:
            return pending.popleft()
        if then is None:
            return {"type": "http.disconnect"}
        return await then()

    return receive


def _client_key(request: Request) -> str:
    """Who is trying a token: the peer address (the rate limit counts per client)."""
    return request.client.host if request.client else "unknown"


def auth_router(settings: Settings, sessions: SessionStore, limiter: LoginLimiter) -> APIRouter:
    """POST /api/auth/login {token} starts a session (rate-limited); POST /api/auth/logout ends it."""
    router = APIRouter(prefix="/api/auth", tags=["auth"])

    @router.post("/login", status_code=204)
    def login(request: Request, token: str = Body(..., embed=True, max_length=4096)) -> Response:
        """Check the token (constant time, backoff after wrong ones) and set an HttpOnly, SameSite=Strict cookie
        holding a new random session id."""
        expected = (settings.security.access_token or "").strip()
        if not expected:
            return Response(status_code=204)
        client = _client_key(request)
        wait = limiter.wait_s(client)
        if wait > 0:
            return JSONResponse({"error": "TooManyRequests",
                                 "detail": f"too many wrong tokens; try again in {wait:.0f} s"}, 429,
                                headers={"Retry-After": str(max(1, round(wait)))})
        if not hmac.compare_digest(token.strip().encode(), expected.encode()):
            limiter.failed(client)
            return JSONResponse({"error": "Unauthorized", "detail": "that access token is not right"}, 401)
        limiter.succeeded(client)
        response = Response(status_code=204)
        response.set_cookie(COOKIE, sessions.create(expected), max_age=int(sessions.ttl_s), httponly=True,
                            samesite="strict", path="/", secure=request.url.scheme == "https")
        return response

    @router.post("/logout", status_code=204)
    def logout(request: Request) -> Response:
        """End the session on the server and forget the cookie."""
        sid = request.cookies.get(COOKIE)
        if sid:
            sessions.revoke(sid)
        response = Response(status_code=204)
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
        return response

    return router


def install_security(app: FastAPI, settings: Settings) -> None:
    """Add the auth routes and the security middleware (sharing one session store) to the app."""
    sessions = SessionStore()
    app.state.sessions = sessions
    app.include_router(auth_router(settings, sessions, LoginLimiter()))
    app.add_middleware(SecurityMiddleware, settings=settings, sessions=sessions)
