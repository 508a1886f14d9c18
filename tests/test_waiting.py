"""tests/waiting.py: waits end as soon as the condition holds and fail with what was awaited and the last value."""

from __future__ import annotations

import pytest

from tests.waiting import async_wait_until, wait_until


def test_returns_the_first_truthy_value() -> None:
    values = iter([0, None, "", "ready"])
    assert wait_until(lambda: next(values), interval=0) == "ready"


def test_until_decides_and_the_value_is_returned() -> None:
    values = iter([{"running": True}, {"running": False, "n": 2}])
    assert wait_until(lambda: next(values), until=lambda body: not body["running"], interval=0) == {
        "running": False, "n": 2}


def test_timeout_names_what_and_the_last_value() -> None:
    with pytest.raises(AssertionError, match=r"waiting for the fold to end; last value: \{'running': True\}"):
        wait_until(lambda: {"running": True}, until=lambda body: not body["running"], timeout=0.05,
                   what="the fold to end")


def test_ignored_exceptions_mean_not_yet_and_others_propagate() -> None:
    calls = iter([ConnectionError("refused"), ConnectionError("refused"), "up"])

    def probe() -> str:
        value = next(calls)
        if isinstance(value, Exception):
            raise value
        return value

    assert wait_until(probe, ignore=(ConnectionError,), interval=0) == "up"
    with pytest.raises(ZeroDivisionError):
        wait_until(lambda: 1 / 0)
    with pytest.raises(AssertionError, match="ConnectionError"):
        wait_until(lambda: probe_refused(), ignore=(ConnectionError,), timeout=0.05)


def probe_refused() -> bool:
    raise ConnectionError("refused")


async def test_async_accepts_sync_and_async_predicates() -> None:
    values = iter([False, False, True])
    assert await async_wait_until(lambda: next(values), interval=0) is True

    async def count() -> int:
        return 3

    assert await async_wait_until(count, until=lambda n: n == 3) == 3
    with pytest.raises(AssertionError, match="waiting for five; last value: 3"):
        await async_wait_until(count, until=lambda n: n == 5, timeout=0.05, what="five")
