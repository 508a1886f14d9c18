"""SillyTavern persona import at the library layer: a failure half-way through stores nothing, not even a picture."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from neuralrp.db.connection import driver
from neuralrp.library import personas
from neuralrp.library.service import Library
from neuralrp.library.stpersonas import import_st_personas
from tests.conftest import FIXTURES

SETTINGS = (FIXTURES / "personas" / "st_settings_personas.json").read_bytes()


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (4, 4), "teal").save(out, format="PNG")
    return out.getvalue()


def test_a_database_failure_after_a_picture_was_written_rolls_everything_back(library: Library) -> None:
    with library.db.session() as conn:  # a real SQLite trigger refuses the last persona of the file
        conn.execute("CREATE TRIGGER refuse_xue BEFORE INSERT ON personas WHEN NEW.name = '小雪' "
                     "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END")
    with pytest.raises(driver().IntegrityError, match="refused by the test"):
        import_st_personas(library, SETTINGS, "settings.json", [("1727000000001-Kai.png", png())])
    with library.db.session() as conn:
        assert personas.list_personas(conn) == []
    assert not library.paths.avatars.exists() or list(library.paths.avatars.iterdir()) == []
    with library.db.session() as conn:
        conn.execute("DROP TRIGGER refuse_xue")
    report = import_st_personas(library, SETTINGS, "settings.json", [("1727000000001-Kai.png", png())])
    assert [(r.name, r.avatar) for r in report.results] == [("User", False), ("Kai", True), ("小雪", False)]
    assert len(list(library.paths.avatars.iterdir())) == 1
