"""`neuralrp import` and `neuralrp export` on the real fixtures."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from neuralrp.cli import cli
from neuralrp.library.cardfile import parse_card
from tests.conftest import FIXTURES


def run(tmp_path: Path, *args: str) -> tuple[int, str]:
    env = {"NEURALRP_PATHS_DATA_DIR": str(tmp_path / "data")}
    result = CliRunner().invoke(cli, list(args), env=env)
    return result.exit_code, result.output


def test_import_good_files_exits_zero_with_a_line_each(tmp_path: Path) -> None:
    code, out = run(tmp_path, "import", str(FIXTURES))
    assert code == 0, out
    lines = out.strip().splitlines()
    assert len(lines) == 8
    assert sum(line.startswith("imported character: ") for line in lines) == 5
    assert any(line.startswith("imported world: ") and "4 entries" in line for line in lines)
    assert any(line.startswith("imported chat: ") for line in lines)
    personas = FIXTURES / "personas" / "st_settings_personas.json"
    assert f"imported personas: {personas} (3 imported, 0 already in the library)" in lines
    code, out = run(tmp_path, "import", str(FIXTURES / "cards"), str(personas))
    assert code == 0 and out.count("skipped character") == 5 and "already in the library" in out
    assert f"skipped personas: {personas} (0 imported, 3 already in the library)" in out


def test_sillytavern_settings_without_personas_are_skipped_not_refused(tmp_path: Path) -> None:
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps({"power_user": {"personas": {}, "persona_descriptions": {}}, "username": "x"}))
    code, out = run(tmp_path, "import", str(settings))
    assert code == 0 and out.strip() == f"skipped personas: {settings} (SillyTavern settings without personas)"


def test_corrupt_file_exits_non_zero_with_clear_line(tmp_path: Path) -> None:
    broken = tmp_path / "broken.png"
    broken.write_bytes((FIXTURES / "cards" / "tavern_v1_Aqua.png").read_bytes()[:3000])
    code, out = run(tmp_path, "import", str(broken), str(FIXTURES / "cards" / "st_default_Seraphina.png"))
    assert code == 1
    error_line = next(line for line in out.splitlines() if line.startswith("error"))
    assert str(broken) in error_line and "truncated" in error_line.lower()
    assert "imported character" in out and "1 of 2 file(s) could not be imported." in out


def test_export_character_and_world(tmp_path: Path) -> None:
    run(tmp_path, "import", str(FIXTURES))
    out_png = tmp_path / "sera.png"
    code, out = run(tmp_path, "export", "character", "seraphina", "--format", "png", "--out", str(out_png))
    assert code == 0, out
    original = parse_card((FIXTURES / "cards" / "st_default_Seraphina.png").read_bytes(), "a.png")
    assert parse_card(out_png.read_bytes(), "b.png").data == original.data
    out_json = tmp_path / "eldoria.json"
    code, out = run(tmp_path, "export", "world", "st_Eldoria_release", "--out", str(out_json))
    assert code == 0, out
    source = FIXTURES / "worlds" / "st_Eldoria_release.json"
    assert json.loads(out_json.read_bytes()) == json.loads(source.read_bytes())
    code, out = run(tmp_path, "export", "character", "Nobody")
    assert code == 1 and "no character is named 'Nobody'" in out
