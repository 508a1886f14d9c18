"""Time helpers: one format for every stored timestamp."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def iso(moment: datetime | None = None) -> str:
    """ISO-8601 UTC text with milliseconds, as stored in the DB."""
    return (moment or utcnow()).astimezone(UTC).isoformat(timespec="milliseconds")
