"""Configure logging once, for the serve command: console plus a rotated file in data/logs."""

from __future__ import annotations

import json
import logging
import logging.handlers
from datetime import date
from pathlib import Path
from typing import Any

from neuralrp.config import Settings

LOG_FILE = "neuralrp.log"
TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
# Loggers that can dump request bodies (prompt text) at DEBUG; kept at INFO unless prompts may be logged.
CHATTY_LOGGERS = ("httpcore", "httpx", "hpack")


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        """Render a record as JSON."""
        data = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False)


class PromptFilter(logging.Filter):
    """Drop records marked `extra={"prompt": True}` unless logging.log_prompts is on."""

    def __init__(self, allow: bool) -> None:
        super().__init__()
        self.allow = allow

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep the record unless it carries prompt text that may not be logged."""
        return self.allow or not getattr(record, "prompt", False)


class SizeAndDayRotatingHandler(logging.handlers.RotatingFileHandler):
    """A RotatingFileHandler that also rolls over when the (local) day changes, when rotate_daily is on."""

    def __init__(self, filename: Path, *, max_bytes: int, keep: int, daily: bool,
                 today: Any = date.today) -> None:
        super().__init__(filename, maxBytes=max_bytes, backupCount=keep, encoding="utf-8")
        self.daily = daily
        self._today = today
        self._day = self._file_day(filename) if daily else None

    def _file_day(self, filename: Path) -> date:
        """The day the current file was last written (today for a new file)."""
        try:
            return date.fromtimestamp(Path(filename).stat().st_mtime)
        except OSError:
            return self._today()

    def shouldRollover(self, record: logging.LogRecord) -> bool:  # noqa: N802 - logging's API name
        """Roll over on size, or on the first record of a new day."""
        if self.daily and self._day != self._today():
            return True
        return bool(super().shouldRollover(record))

    def doRollover(self) -> None:  # noqa: N802 - logging's API name
        """Rotate the files and start the new day."""
        super().doRollover()
        if self.daily:
            self._day = self._today()


def make_formatter(settings: Settings) -> logging.Formatter:
    """JSON or text, as configured."""
    return JsonFormatter() if settings.logging.format == "json" else logging.Formatter(TEXT_FORMAT)


def configure_logging(settings: Settings, *, log_dir: Path | None = None) -> None:
    """Console plus a size- (and daily-) rotated file in data/logs, at the configured level and format."""
    cfg = settings.logging
    fmt = make_formatter(settings)
    prompts = PromptFilter(cfg.log_prompts)
    root = logging.getLogger()
    root.setLevel(cfg.level)
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    folder = log_dir or settings.data_dir / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    file_handler = SizeAndDayRotatingHandler(folder / LOG_FILE, max_bytes=cfg.max_mb * 1024 * 1024,
                                             keep=cfg.keep_files, daily=cfg.rotate_daily)
    for handler in (logging.StreamHandler(), file_handler):
        handler.setFormatter(fmt)
        handler.addFilter(prompts)
        root.addHandler(handler)
    if not cfg.log_prompts:
        for name in CHATTY_LOGGERS:
            logging.getLogger(name).setLevel(max(logging.INFO, root.level))
