"""The request-body size limit, counted at the ASGI layer for every body whatever its content type.

`BodyLimit` refuses a declared `Content-Length` over `security.max_upload_mb` before reading anything, and counts
the bytes of every body (JSON, multipart, raw) as they arrive: the chunk that crosses the limit raises
`BodyTooLarge`, so a multipart upload is stopped while its parts arrive, never spooled whole first. FastAPI passes
an HTTPException raised while it reads a body through unchanged; `body_too_large` answers it with NeuralRP's body.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from neuralrp.config import Settings
from neuralrp.security import UNSAFE_METHODS, ASGIApp, Message, Receive, Scope, Send


def too_large_sentence(settings: Settings) -> str:
    """The 413 sentence, naming the limit and its setting."""
    return (f"the request body is over the {settings.security.max_upload_mb} MiB limit "
            "(security.max_upload_mb)")


class BodyTooLarge(HTTPException):
    """Raised by the counting receive() when a body goes over the limit."""

    def __init__(self, sentence: str) -> None:
        super().__init__(status_code=413, detail=sentence)


async def body_too_large(request: Request, exc: Exception) -> JSONResponse:
    """The 413 answer for BodyTooLarge (registered with app.add_exception_handler)."""
    assert isinstance(exc, BodyTooLarge)
    return JSONResponse({"error": "PayloadTooLarge", "detail": exc.detail}, status_code=413)


def _declared_length(scope: Scope) -> int | None:
    """The Content-Length header as a number, or None when absent or not a number."""
    for key, value in scope.get("headers", []):
        if key.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class BodyLimit:
    """Counts every request body's bytes as they arrive and stops at `security.max_upload_mb`."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in UNSAFE_METHODS:
            await self.app(scope, receive, send)
            return
        limit = self.settings.security.max_upload_mb * 1024 * 1024
        declared = _declared_length(scope)
        if declared is not None and declared > limit:
            response = await body_too_large(Request(scope), BodyTooLarge(too_large_sentence(self.settings)))
            await response(scope, receive, send)
            return
        await self.app(scope, self._counting(receive, limit), send)

    def _counting(self, receive: Receive, limit: int) -> Receive:
        """A receive() that raises BodyTooLarge on the chunk that takes the body past `limit`."""
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(too_large_sentence(self.settings))
            return message

        return counted


SQLITE_INT_MAX = 2**63 - 1


def _oversized_params(request: Request) -> list[str]:
    """Names of the path and query parameters whose whole-number value SQLite cannot hold."""
    named = [(f"path parameter {k}", v) for k, v in request.path_params.items()]
    named += [(f"query parameter {k}", v) for k, v in request.query_params.multi_items()]
    found = []
    for name, value in named:
        text = str(value).strip()
        if text.lstrip("+-").isdigit() and abs(int(text)) > SQLITE_INT_MAX:
            found.append(name)
    return found


async def number_too_large(request: Request, exc: Exception) -> JSONResponse:
    """The 422 answer for an OverflowError (a number past SQLite's 64-bit integers), naming the parameter."""
    assert isinstance(exc, OverflowError)
    names = _oversized_params(request) or ["a number in the request"]
    return JSONResponse({"error": "InvalidInput",
                         "detail": f"{', '.join(names)}: must be at most {SQLITE_INT_MAX} (2^63 - 1)"},
                        status_code=422)
