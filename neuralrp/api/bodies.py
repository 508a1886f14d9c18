"""Request bodies: JSON parsed off the event loop, and validation errors that name the field without echoing it.

Every router uses `OffLoopJSONRoute` (`APIRouter(route_class=OffLoopJSONRoute)`). Its requests join a body over
BIG_BODY_BYTES and parse it with orjson on a worker thread, so the event loop keeps answering during a 19 MiB
body (measured: the stdlib parser held the loop up to 36 ms on such a body, even from a worker thread; orjson on a
worker thread under 1 ms). A body that is not JSON is still FastAPI's 422 (orjson's error is a JSONDecodeError).

`validation_error` replaces FastAPI's 422 answer, which echoes every offending input in full, with NeuralRP's
`{error, detail}` body: `detail` is a sentence naming each field, and `errors` lists per error its `loc`, `field`,
`msg`, `type` and at most INPUT_SHOWN characters of what was sent (containers only by their size).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Sequence
from contextlib import aclosing
from typing import Any

import orjson
from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

BIG_BODY_BYTES = 64 * 1024  # bodies above this are parsed on a worker thread
INPUT_SHOWN = 100  # characters of an offending value shown back in a 422
ERRORS_SHOWN = 20  # errors listed in one 422 (a list of 10,000 bad items names the first ones)
_SOURCES = {"body": "", "query": "query parameter ", "path": "path parameter ", "header": "header ",
            "cookie": "cookie "}


def parse_json(body: bytes) -> Any:
    """orjson.loads; orjson.JSONDecodeError is a json.JSONDecodeError, which FastAPI answers with a 422."""
    return orjson.loads(body)


class OffLoopJSONRequest(Request):
    """A request whose big body is joined and parsed on a worker thread (bytes.join lets go of the GIL for
    large copies), and whose JSON is parsed by orjson."""

    async def body(self) -> bytes:
        """The whole body, read once."""
        if not hasattr(self, "_body"):
            chunks: list[bytes] = []
            async with aclosing(self.stream()) as stream:
                async for chunk in stream:
                    chunks.append(chunk)
            big = sum(len(chunk) for chunk in chunks) > BIG_BODY_BYTES
            self._body = await asyncio.to_thread(b"".join, chunks) if big else b"".join(chunks)
        return self._body

    async def json(self) -> Any:
        """The parsed body, parsed once."""
        if not hasattr(self, "_json"):
            body = await self.body()
            self._json = await asyncio.to_thread(parse_json, body) if len(body) > BIG_BODY_BYTES else parse_json(body)
        return self._json


class OffLoopJSONRoute(APIRoute):
    """An APIRoute whose handler reads the body through OffLoopJSONRequest."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """FastAPI's handler, given an OffLoopJSONRequest over the same ASGI connection."""
        handler = super().get_route_handler()

        async def off_loop(request: Request) -> Response:
            return await handler(OffLoopJSONRequest(request.scope, request.receive))

        return off_loop


def shown(value: Any) -> Any:
    """A short, JSON-ready stand-in for an offending input: small scalars as they are, text cut to INPUT_SHOWN
    characters, containers described by their size (never rendered: they may be megabytes)."""
    if value is None or isinstance(value, bool | int | float):
        return value if len(repr(value)) <= INPUT_SHOWN else f"a number of {len(repr(value))} digits"
    if isinstance(value, str):
        return value if len(value) <= INPUT_SHOWN else f"{value[:INPUT_SHOWN]}... ({len(value)} characters)"
    if isinstance(value, dict):
        return f"an object with {len(value)} keys" if value else "an empty object"
    if isinstance(value, list | tuple):
        return f"a list of {len(value)} items" if value else "an empty list"
    if isinstance(value, bytes | bytearray):
        return f"{len(value)} bytes"
    return f"a value of type {type(value).__name__}"


def field_name(loc: Sequence[Any]) -> str:
    """`card.name`, `query parameter limit`, or `the request body` for an error's location."""
    source, path = (str(loc[0]), loc[1:]) if loc and str(loc[0]) in _SOURCES else ("body", loc)
    if not path:
        return "the request body" if source == "body" else source
    return _SOURCES[source] + ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in path).replace(".[", "[")


def describe(error: dict[str, Any]) -> dict[str, Any]:
    """One validation error as {loc, field, msg, type, input}: the input cut short, no context objects."""
    loc = list(error.get("loc", ()))
    if error.get("type") == "json_invalid":
        reason = (error.get("ctx") or {}).get("error", "")
        at = f" at position {loc[1]}" if len(loc) > 1 else ""
        return {"loc": loc[:1], "field": "the request body", "type": "json_invalid", "input": None,
                "msg": f"is not valid JSON{at}" + (f" ({reason})" if reason else "")}
    return {"loc": loc, "field": field_name(loc), "msg": str(error.get("msg", "is not valid")),
            "type": str(error.get("type", "")), "input": shown(error.get("input"))}


def validation_body(errors: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """NeuralRP's 422 body for FastAPI's validation errors."""
    described = [describe(e) for e in errors[:ERRORS_SHOWN]]
    more = f" (and {len(errors) - ERRORS_SHOWN} more errors)" if len(errors) > ERRORS_SHOWN else ""
    sentence = "; ".join(f"{d['field']}: {d['msg']}" for d in described) or "the request is not valid"
    return {"error": "InvalidInput", "detail": sentence + more, "errors": described}


async def validation_error(request: Request, exc: Exception) -> JSONResponse:
    """The 422 answer for a RequestValidationError (registered with app.add_exception_handler)."""
    assert isinstance(exc, RequestValidationError)
    return JSONResponse(validation_body(exc.errors()), status_code=422)
