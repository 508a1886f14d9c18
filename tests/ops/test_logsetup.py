"""Logging: size and daily rotation, level and format from settings, no prompt text unless allowed."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from neuralrp.logsetup import SizeAndDayRotatingHandler, configure_logging


@pytest.fixture(autouse=True)
def _restore_root() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def _record(msg: str) -> logging.LogRecord:
    return logging.LogRecord("t", logging.INFO, __file__, 1, msg, None, None)


def test_rotates_by_size(tmp_path: Path) -> None:
    handler = SizeAndDayRotatingHandler(tmp_path / "x.log", max_bytes=200, keep=2, daily=False)
    for i in range(30):
        handler.emit(_record(f"line {i} " + "x" * 40))
    handler.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.log", "x.log.1", "x.log.2"]


def test_rotates_daily(tmp_path: Path) -> None:
    day = [date(2025, 3, 1)]
    handler = SizeAndDayRotatingHandler(tmp_path / "x.log", max_bytes=10**6, keep=5, daily=True,
                                        today=lambda: day[0])
    handler._day = day[0]
    handler.emit(_record("first day"))
    day[0] = date(2025, 3, 2)
    handler.emit(_record("second day"))
    handler.close()
    assert "first day" in (tmp_path / "x.log.1").read_text()
    assert (tmp_path / "x.log").read_text().strip() == "second day"


def test_json_level_and_prompt_filter(make_settings: Any, tmp_path: Path) -> None:
    settings = make_settings(logging={"level": "WARNING", "format": "json", "log_prompts": False})
    configure_logging(settings, log_dir=tmp_path / "logs")
    log = logging.getLogger("neuralrp.test")
    log.info("not at this level")
    log.warning("kept")
    log.warning("SECRET PROMPT", extra={"prompt": True})
    for handler in logging.getLogger().handlers:
        handler.flush()
    lines = [json.loads(x) for x in (tmp_path / "logs" / "neuralrp.log").read_text().splitlines()]
    assert [x["message"] for x in lines] == ["kept"]
    assert lines[0]["level"] == "WARNING"


def test_prompts_logged_when_enabled(make_settings: Any, tmp_path: Path) -> None:
    settings = make_settings(logging={"log_prompts": True})
    configure_logging(settings, log_dir=tmp_path / "logs")
    logging.getLogger("neuralrp.test").info("PROMPT TEXT", extra={"prompt": True})
    for handler in logging.getLogger().handlers:
        handler.flush()
    assert "PROMPT TEXT" in (tmp_path / "logs" / "neuralrp.log").read_text()
