"""Folder sync: cards in characters/ and World Info in worlds/ mirror the library both ways.

A file NeuralRP has not seen is imported. A file changed outside NeuralRP (its mtime
differs from the one recorded when NeuralRP last wrote or read it) is compared with the
DB copy by modification time: the newer wins and the loser is kept in change history.
A file deleted outside NeuralRP never deletes anything: the character or world stays.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from neuralrp.db.connection import transaction
from neuralrp.errors import NeuralRPError
from neuralrp.library import characters as chars
from neuralrp.library import worlds
from neuralrp.library.service import Library, record_change
from neuralrp.library.worldfile import parse_world_info

log = logging.getLogger(__name__)
MTIME_SLACK = 0.001


@dataclass
class SyncReport:
    """What one scan did, one line per file touched."""

    lines: list[str] = field(default_factory=list)
    errors: int = 0

    def add(self, line: str, *, error: bool = False) -> None:
        """Record a line (and count it as an error)."""
        self.lines.append(line)
        self.errors += int(error)
        (log.warning if error else log.info)("sync: %s", line)


def _files(folder: Path, suffixes: tuple[str, ...]) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")
                  and p.suffix.lower() in suffixes)


def _epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp).astimezone(UTC).timestamp()


def scan(library: Library) -> SyncReport:
    """Bring the DB and the characters/ and worlds/ folders in line."""
    report = SyncReport()
    for path in _files(library.paths.characters, (".png", ".json")):
        with library.lock:
            _sync_character_file(library, path, report)
    for path in _files(library.paths.worlds, (".json",)):
        with library.lock:
            _sync_world_file(library, path, report)
    with library.lock:
        _forget_missing(library, report)
    return report


def _sync_character_file(library: Library, path: Path, report: SyncReport) -> None:
    with library.db.session() as conn:
        row = chars.character_by_source(conn, path.name)
    mtime = path.stat().st_mtime
    try:
        if row is None:
            result = library.import_card(path.read_bytes(), path.name, mirror=path.name)
            report.add(f"characters/{path.name}: imported {result.detail}")
        elif abs(mtime - (row["source_mtime"] or 0)) > MTIME_SLACK:
            _resolve_character(library, path, row, report)
    except NeuralRPError as e:
        report.add(f"characters/{path.name}: not imported: {e.message}", error=True)
    except OSError as e:
        report.add(f"characters/{path.name}: could not be read: {e.strerror}", error=True)


def _resolve_character(library: Library, path: Path, row: dict[str, Any], report: SyncReport) -> None:
    """The file changed outside NeuralRP: newest wins, the loser goes to change history."""
    parsed = library.parse(path.read_bytes(), path.name)
    file_card = chars.as_v2(parsed.to_card())
    with library.db.session() as conn, transaction(conn):
        if path.stat().st_mtime >= _epoch(row["updated_at"]):
            old = chars.update_card(conn, row["id"], file_card)
            record_change(conn, "character", row["id"], "sync_conflict", old, file_card,
                          f"characters/{path.name} was newer; the library copy was replaced")
            chars.set_source(conn, row["id"], path.name, path.stat().st_mtime)
            report.add(f"characters/{path.name}: newer file applied to {row['name']}")
        else:
            record_change(conn, "character", row["id"], "sync_conflict", file_card, json.loads(row["card_json"]),
                          f"characters/{path.name} was older than the library copy; the file was rewritten")
            library.write_character_file(conn, row["id"])
            report.add(f"characters/{path.name}: library copy of {row['name']} was newer; file rewritten")


def _sync_world_file(library: Library, path: Path, report: SyncReport) -> None:
    with library.db.session() as conn:
        row = conn.execute("SELECT * FROM worlds WHERE source_file = ?", (path.name,)).fetchone()
    try:
        if row is None:
            result = library.import_world(path.read_bytes(), path.name, mirror=path.name)
            report.add(f"worlds/{path.name}: imported {result.detail}")
        elif abs(path.stat().st_mtime - (row["source_mtime"] or 0)) > MTIME_SLACK:
            _resolve_world(library, path, dict(row), report)
    except NeuralRPError as e:
        report.add(f"worlds/{path.name}: not imported: {e.message}", error=True)
    except OSError as e:
        report.add(f"worlds/{path.name}: could not be read: {e.strerror}", error=True)


def _resolve_world(library: Library, path: Path, row: dict[str, Any], report: SyncReport) -> None:
    book = parse_world_info(path.read_bytes(), path.name)
    with library.db.session() as conn, transaction(conn):
        before = worlds.get_world(conn, row["id"]).public()
        if path.stat().st_mtime >= _epoch(row["updated_at"]):
            conn.execute("DELETE FROM world_entries WHERE world_id = ?", (row["id"],))
            worlds._insert_entries(conn, row["id"], book.entries)
            conn.execute("UPDATE worlds SET source_mtime = ?, updated_at = ? WHERE id = ?",
                         (path.stat().st_mtime, datetime.now(UTC).isoformat(), row["id"]))
            record_change(conn, "world", row["id"], "sync_conflict", before, {"entries": len(book.entries)},
                          f"worlds/{path.name} was newer; the library copy was replaced")
            report.add(f"worlds/{path.name}: newer file applied to {row['name']}")
        else:
            record_change(conn, "world", row["id"], "sync_conflict", {"file_entries": book.entries}, before,
                          f"worlds/{path.name} was older than the library copy; the file was rewritten")
            library.write_world_file(conn, row["id"])
            report.add(f"worlds/{path.name}: library copy of {row['name']} was newer; file rewritten")


def _forget_missing(library: Library, report: SyncReport) -> None:
    """Files removed outside NeuralRP: keep the character/world, stop mirroring it."""
    with library.db.session() as conn, transaction(conn):
        for table, folder in (("characters", library.paths.characters), ("worlds", library.paths.worlds)):
            rows = conn.execute(f"SELECT id, name, source_file FROM {table} WHERE source_file IS NOT NULL").fetchall()
            for row in rows:
                if not (folder / row["source_file"]).exists():
                    conn.execute(f"UPDATE {table} SET source_file = NULL, source_mtime = NULL WHERE id = ?",
                                 (row["id"],))
                    report.add(f"{folder.name}/{row['source_file']}: file removed; {row['name']} kept in the library")


async def watch(library: Library, *, debounce_ms: int = 400, stop: asyncio.Event | None = None) -> None:
    """Rescan whenever files change in characters/ or worlds/ (runs until cancelled)."""
    from watchfiles import awatch

    folders = [library.paths.characters, library.paths.worlds]
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
    async for _changes in awatch(*folders, debounce=debounce_ms, stop_event=stop, recursive=False):
        try:
            await asyncio.to_thread(scan, library)
        except NeuralRPError as e:
            log.warning("folder sync failed: %s", e.message)
