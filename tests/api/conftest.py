"""Fixtures of the API tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.api.chat_helpers import served_with_fake
from tests.fakes import FakeLLM


@pytest.fixture
def live(make_settings: Any) -> Iterator[tuple[FakeLLM, str]]:
    """(fake llama.cpp server, the app's URL on a real socket)."""
    with served_with_fake(make_settings, "llamacpp") as pair:
        yield pair
