"""The one way tests wait for something: poll a condition until it holds, with a generous deadline.

    wait_until(lambda: fake.aborts >= 1, what="the backend to see the abort")
    body = wait_until(lambda: client.get(url).json(), until=lambda b: not b["running"], what="the fold to end")
    await async_wait_until(lambda: worker.idle, what="the worker to go idle")

`predicate()` is called every `interval` seconds; the wait ends as soon as its value is truthy (or, with
`until`, as soon as `until(value)` is true) and that value is returned. If `timeout` seconds pass first, an
AssertionError names `what` and shows the last value seen. The default timeout is long because the suite must
pass on a busy two-core machine: a wait that succeeds returns at once, so only a real failure pays for it.
Exceptions from `predicate` propagate (an `assert` inside it fails the test at once), except those listed in
`ignore`, which count as "not yet" (e.g. a server that does not accept connections yet).
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")

DEFAULT_TIMEOUT = 30.0
DEFAULT_INTERVAL = 0.02
_MISSING = object()


def _done(value: Any, until: Callable[[Any], Any] | None) -> bool:
    return bool(until(value)) if until is not None else bool(value)


def _timed_out(what: str, timeout: float, last: Any) -> AssertionError:
    shown = "nothing (the predicate never returned)" if last is _MISSING else repr(last)
    if len(shown) > 2000:
        shown = shown[:2000] + "…"
    return AssertionError(f"timed out after {timeout:g} s waiting for {what}; last value: {shown}")


def wait_until(predicate: Callable[[], T], *, timeout: float = DEFAULT_TIMEOUT, interval: float = DEFAULT_INTERVAL,
               what: str = "the condition", until: Callable[[T], Any] | None = None,
               ignore: tuple[type[BaseException], ...] = ()) -> T:
    """Call `predicate` until its value (or `until(value)`) is truthy; return that value."""
    deadline = time.monotonic() + timeout
    last: Any = _MISSING
    while True:
        try:
            last = predicate()
        except ignore as exc:
            last = exc
        else:
            if _done(last, until):
                return last  # type: ignore[no-any-return]
        if time.monotonic() >= deadline:
            raise _timed_out(what, timeout, last)
        time.sleep(interval)


async def async_wait_until(predicate: Callable[[], T | Awaitable[T]], *, timeout: float = DEFAULT_TIMEOUT,
                           interval: float = DEFAULT_INTERVAL, what: str = "the condition",
                           until: Callable[[T], Any] | None = None,
                           ignore: tuple[type[BaseException], ...] = ()) -> T:
    """`wait_until` for async tests: `predicate` may be sync or async; the event loop keeps running meanwhile."""
    deadline = time.monotonic() + timeout
    last: Any = _MISSING
    while True:
        try:
            last = predicate()
            if inspect.isawaitable(last):
                last = await last
        except ignore as exc:
            last = exc
        else:
            if _done(last, until):
                return last  # type: ignore[no-any-return]
        if time.monotonic() >= deadline:
            raise _timed_out(what, timeout, last)
        await asyncio.sleep(interval)
