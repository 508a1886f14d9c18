"""Shared fixtures: real settings, a real SQLite file, the app with fake backends."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from neuralrp.config import Settings, load_settings
from neuralrp.db.connection import Database
from neuralrp.db.migrations import migrate

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"  # sample cards, chats and worlds; see tests/fixtures/SOURCES.md

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No NEURALRP_* variable from the outside leaks into a test; cwd is a temp dir."""
    for var in list(os.environ):
        if var.startswith("NEURALRP_"):
            monkeypatch.delenv(var)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def make_settings(tmp_path: Path) -> Any:
    """Factory: Settings pointed at tmp_path, with nested overrides."""

    def factory(**sections: dict[str, Any]) -> Settings:
        overrides: dict[str, Any] = {"paths": {"data_dir": str(tmp_path / "data")}}
        overrides.update(sections)
        return load_settings(overrides=overrides, environ={})

    return factory


@pytest.fixture
def settings(make_settings: Any) -> Settings:
    """Default settings with the data dir in tmp_path."""
    return make_settings()  # type: ignore[no-any-return]


@pytest.fixture
def db(settings: Settings) -> Database:
    """A migrated real SQLite database file."""
    database = Database(settings.db_path)
    with database.session() as conn:
        migrate(conn)
    return database


@pytest.fixture
def conn(db: Database) -> Iterator[Any]:
    """An open connection to the migrated database."""
    with db.session() as connection:
        yield connection
