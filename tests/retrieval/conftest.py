"""Fixtures for retrieval tests."""

from __future__ import annotations

from typing import Any

import pytest

from tests.retrieval.helpers import add_world


@pytest.fixture
def world(conn: Any) -> int:
    """An empty world in the test DB."""
    return add_world(conn)
