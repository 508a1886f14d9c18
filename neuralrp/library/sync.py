"""Folder sync: cards in characters/ and World Info in worlds/ mirror the library both ways.

A file NeuralRP has not seen is imported. A file changed outside NeuralRP (its mtime
differs from the one recorded when NeuralRP last wrote or read it) is compared with the
DB copy by modification time: the newer wins, whole (a card's book and picture included), and the
loser is kept whole in change history. A dropped card the library already has (same data, book and
picture) is not imported twice: it is left alone and reported once. A file deleted outside NeuralRP
never deletes anything: the character or world stays.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from neuralrp.db.connection import Connection, transaction
from neuralrp.db.history import record_change
from neuralrp.errors import NeuralRPError
from neuralrp.library import books, worlds
from neuralrp.library import characters as chars
from neuralrp.library.service import CARD_SUFFIXES, Library
from neuralrp.library.worldfile import parse_world_info
from neuralrp.workers import Worker, in_thread

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
        if row is None and library.skipped_mirrors.get(path.name) != mtime:
            result = library.import_card(path.read_bytes(), path.name, mirror=path.name)
            if result.status == "skipped":  # a duplicate: left alone, and reported once until it changes
                library.skipped_mirrors[path.name] = mtime
            report.add(f"characters/{path.name}: {result.status} {result.detail}")
        elif row is not None and abs(mtime - (row.source_mtime or 0)) > MTIME_SLACK:
            _resolve_character(library, path, row, report)
    except NeuralRPError as e:
        report.add(f"characters/{path.name}: not imported: {e.message}", error=True)
    except OSError as e:
        report.add(f"characters/{path.name}: could not be read: {e.strerror}", error=True)


def _resolve_character(library: Library, path: Path, row: chars.Character, report: SyncReport) -> None:
    """The file changed outside NeuralRP: newest wins, the loser goes to change history.

    A newer file is applied whole: the card, its book (to the world holding it) and its picture. The older one
    is kept whole in history (its book included) before the file is rewritten.
    """
    parsed = library.parse(path.read_bytes(), path.name)
    old_picture = None
    with library.db.session() as conn, transaction(conn):
        if path.stat().st_mtime >= _newest_change(conn, row):
            before = library.whole_card(conn, row.id)
            note = f"characters/{path.name} was newer; the library copy was replaced"
            card = parsed.to_card()
            card["data"]["character_book"] = parsed.character_book  # none in the file: the world goes its own way
            touched = library.apply_card(conn, row.id, card, note)
            old_picture = library.take_picture(conn, row.id, parsed.avatar_png)
            record_change(conn, "character", row.id, "sync_conflict", before, library.whole_card(conn, row.id), note)
            chars.set_source(conn, row.id, path.name, path.stat().st_mtime)
            touched.characters.discard(row.id)  # its file is the one just applied
            library.rewrite(conn, touched)
            report.add(f"characters/{path.name}: newer file applied to {row.name}")
        else:
            library.write_character_file(conn, row.id, note=f"characters/{path.name} was older than the library"
                                                             " copy; the file was rewritten")
            report.add(f"characters/{path.name}: library copy of {row.name} was newer; file rewritten")
    if old_picture is not None:
        library._to_trash(old_picture)


def _newest_change(conn: Connection, row: chars.Character) -> float:
    """When the library copy of a character last changed: its card, or the world holding its book."""
    stamps = [_epoch(row.updated_at)]
    world_id = worlds.linked_world_id(conn, row.id)
    if world_id is not None:
        stamps.append(_epoch(worlds.get_world(conn, world_id).updated_at))
    return max(stamps)


def _sync_world_file(library: Library, path: Path, report: SyncReport) -> None:
    with library.db.session() as conn:
        row = worlds.world_by_source(conn, path.name)
    try:
        if row is None:
            result = library.import_world(path.read_bytes(), path.name, mirror=path.name)
            report.add(f"worlds/{path.name}: imported {result.detail}")
        elif abs(path.stat().st_mtime - (row.source_mtime or 0)) > MTIME_SLACK:
            _resolve_world(library, path, row, report)
    except NeuralRPError as e:
        report.add(f"worlds/{path.name}: not imported: {e.message}", error=True)
    except OSError as e:
        report.add(f"worlds/{path.name}: could not be read: {e.strerror}", error=True)


def _resolve_world(library: Library, path: Path, row: worlds.WorldMirror, report: SyncReport) -> None:
    """A world file changed outside NeuralRP: a newer one is taken whole (every key at every level), an older
    one is kept whole in history before the file is rewritten."""
    book = parse_world_info(path.read_bytes(), path.name)
    with library.db.session() as conn, transaction(conn):
        before = books.world_snapshot(worlds.get_world(conn, row.id))
        if path.stat().st_mtime >= _epoch(row.updated_at):
            worlds.replace_from_file(conn, row.id, book, path.stat().st_mtime)
            after = books.world_snapshot(worlds.get_world(conn, row.id))
            record_change(conn, "world", row.id, "sync_conflict", before, after,
                          f"worlds/{path.name} was newer; the library copy was replaced")
            library.rewrite(conn, books.Touched(characters=set(worlds.book_characters(conn, row.id))))
            report.add(f"worlds/{path.name}: newer file applied to {row.name}")
        else:
            library.write_world_file(conn, row.id, note=f"worlds/{path.name} was older than the library copy;"
                                                        " the file was rewritten")
            report.add(f"worlds/{path.name}: library copy of {row.name} was newer; file rewritten")


def _forget_missing(library: Library, report: SyncReport) -> None:
    """Files removed outside NeuralRP: keep the character/world, stop mirroring it."""
    with library.db.session() as conn, transaction(conn):
        for char in chars.mirrored_characters(conn):
            if char.source_file and not (library.paths.characters / char.source_file).exists():
                chars.set_source(conn, char.id, None, None)
                report.add(f"characters/{char.source_file}: file removed; {char.name} kept in the library")
        for world in worlds.mirrored_worlds(conn):
            if not (library.paths.worlds / world.source_file).exists():
                worlds.set_source(conn, world.id, None, None)
                report.add(f"worlds/{world.source_file}: file removed; {world.name} kept in the library")


def rewrite_mirrors(library: Library) -> list[str]:
    """After a restore: make characters/ and worlds/ mirror the restored DB; returns the files written.

    The caller has archived the folders first (they go into the pre-restore backup): every card and world
    file there is removed, then each mirrored character and world is written anew under its recorded name
    with its mtime recorded, so folder sync finds nothing newer to apply.
    """
    with library.lock:
        for path in [*_files(library.paths.characters, CARD_SUFFIXES), *_files(library.paths.worlds, (".json",))]:
            path.unlink()
        written = []
        with library.db.session() as conn, transaction(conn):
            for char in chars.mirrored_characters(conn):
                written.append(f"characters/{library.write_character_file(conn, char.id).name}")
            for world in worlds.mirrored_worlds(conn):
                world_file = library.write_world_file(conn, world.id)
                if world_file is not None:
                    written.append(f"worlds/{world_file.name}")
    log.info("folder sync: %d mirror file(s) rewritten from the restored database", len(written))
    return written


class FolderWatcher(Worker):
    """Rescans characters/ and worlds/ whenever files change there; after a pause it rescans once on resume."""

    def __init__(self, library: Library, *, debounce_ms: int = 400) -> None:
        super().__init__("folder-watch")
        self.library = library
        self.debounce_ms = debounce_ms
        self.scans = 0  # scans finished since the last start or resume
        self._scanned = threading.Condition()
        self._rescan = False
        self._stop = asyncio.Event()  # set to end the watch at once (a cancelled one would wait up to 5 s)

    async def run(self) -> None:
        """Watch the folders until paused or closed (a cancelled watch stops within one step)."""
        from watchfiles import awatch

        folders = [self.library.paths.characters, self.library.paths.worlds]
        for folder in folders:
            folder.mkdir(parents=True, exist_ok=True)
        self._stop = stop = asyncio.Event()
        if self._rescan:  # files may have changed while paused
            self._rescan = False
            await self.scan_now()
        async for _changes in awatch(*folders, debounce=self.debounce_ms, stop_event=stop, recursive=False):
            await self.scan_now()

    async def scan_now(self) -> SyncReport | None:
        """One scan in a thread (a pause waits for it to finish); None when it failed (logged)."""
        report = None
        try:
            report = await in_thread(scan, self.library)
        except NeuralRPError as e:
            log.warning("folder sync failed: %s", e.message)
        with self._scanned:
            self.scans += 1
            self._scanned.notify_all()
        return report

    async def start(self) -> None:
        """Start watching."""
        self._reset()
        await super().start()

    async def pause(self) -> None:
        """Stop watching; the next resume() rescans before watching again."""
        self._rescan = True
        self._stop.set()
        await super().pause()

    async def resume(self) -> None:
        """Rescan, then watch again."""
        self._reset()
        await super().resume()

    async def close(self) -> None:
        """Stop watching for good."""
        self._stop.set()
        await super().close()

    def _reset(self) -> None:
        with self._scanned:
            self.scans = 0

    def wait_for_scans(self, count: int, *, timeout: float) -> bool:
        """Block a thread until `count` scans have finished since the last start or resume; False on timeout."""
        with self._scanned:
            return self._scanned.wait_for(lambda: self.scans >= count, timeout)
