"""Shared set-up for the library tests: a migrated database and a Library with its folders."""

from __future__ import annotations

from pathlib import Path

import pytest

from neuralrp.db.connection import Database
from neuralrp.db.migrations import migrate
from neuralrp.library.service import Library


@pytest.fixture
def library(tmp_path: Path) -> Library:
    """A Library over a fresh database in tmp_path/data, with characters/ and worlds/ created."""
    db = Database(tmp_path / "data" / "neuralrp.db")
    with db.session() as conn:
        migrate(conn)
    lib = Library(db, tmp_path / "data")
    lib.paths.characters.mkdir(parents=True)
    lib.paths.worlds.mkdir(parents=True)
    return lib
