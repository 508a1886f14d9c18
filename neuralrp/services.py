"""The long-lived parts of a running NeuralRP, started and stopped together (by the app's lifespan).

Every LLM call goes through one LLMScheduler (neuralrp/llm/scheduler.py): replies first, background calls
(summaries, capsules, snapshot keywords, card generation) in the free slots, paused when a reply arrives.
Background work (summaries, capsules, lore warming and indexing, the folder watcher, the scheduler) is made of
Workers (neuralrp/workers.py) owned here: start_services starts them, stop_services closes them and a restore
pauses and resumes them. A restore is a maintenance mode (restore_from_backup): the backup is verified first
(a bad one stops nothing); then write requests are refused (the api layer's gate on `Services.writes`), replies
are stopped (their text kept), in-flight writes are waited for and every worker is paused; the pre-restore
backup is taken (with the mirror folders), the DB swapped, characters/ and worlds/ rewritten from it, settings
reloaded and caches cleared; then everything resumes.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from neuralrp.chats.backfill import Backfill
from neuralrp.chats.store import recover_streaming
from neuralrp.clock import utcnow
from neuralrp.config import Settings
from neuralrp.context.engine import PromptEngine
from neuralrp.db.connection import Database
from neuralrp.db.migrations import migrate
from neuralrp.errors import Conflict, InvalidInput, MaintenanceMode
from neuralrp.images.service import ImageService
from neuralrp.library.service import Library
from neuralrp.library.sync import FolderWatcher, rewrite_mirrors, scan
from neuralrp.llm.runtime import LLMRuntime, start_runtime
from neuralrp.llm.scheduler import LLMScheduler
from neuralrp.ops.backup import BackupError, RestoreReport, restore_backup, restore_staged, stage_backup
from neuralrp.ops.scheduler import Scheduler, backups_dir, make_scheduler
from neuralrp.ops.ui_settings import LiveSettings
from neuralrp.retrieval.embedder import LazyEmbedder, make_embedder
from neuralrp.turns.capsule_writer import CapsuleWriter
from neuralrp.turns.generation import GenerationManager
from neuralrp.turns.summarizer import Summarizer
from neuralrp.workers import Admission, State, Worker, in_thread

log = logging.getLogger(__name__)
DATA_SUBDIRS = ("characters", "worlds", "images", "backups", "logs")
RESTORING = "NeuralRP is restoring a backup; try again in a moment"
DRAIN_TIMEOUT_S = 30.0  # how long a restore waits for write requests already running before giving up


def prepare_data_dir(settings: Settings) -> None:
    """Create the data dir and its sub-folders."""
    for sub in DATA_SUBDIRS:
        (settings.data_dir / sub).mkdir(parents=True, exist_ok=True)


def open_database(settings: Settings) -> Database:
    """Create the data dir, open the DB, bring its schema up to date, recover replies cut by a crash."""
    prepare_data_dir(settings)
    db = Database(settings.db_path)
    with db.session() as conn:
        applied = migrate(conn)
        recovered = recover_streaming(conn, keep=settings.llm.keep_incomplete)
    if applied:
        log.info("database %s migrated: %s", db.path, ", ".join(applied))
    if recovered:
        log.warning("%d reply(s) were cut off by a crash; kept and marked incomplete", recovered)
    return db


async def start_folder_sync(library: Library, settings: Settings) -> FolderWatcher | None:
    """Scan characters/ and worlds/ once, then watch them (as configured)."""
    if settings.library.scan_on_start:
        report = await in_thread(scan, library)
        if report.lines:
            log.info("folder sync: %d change(s), %d error(s)", len(report.lines), report.errors)
    if not settings.library.watch:
        return None
    watcher = FolderWatcher(library)
    await watcher.start()
    return watcher


BACKEND_SECTIONS = frozenset({"llm", "context"})  # the LLM client is rebuilt when these change (Ollama's num_ctx)


@dataclass
class Services:
    """Everything a running app owns; routes reach it through the typed ServicesDep dependency."""

    settings: Settings
    llm_transport: httpx.AsyncBaseTransport | None
    image_transport: httpx.AsyncBaseTransport | None
    db: Database
    library: Library
    live_settings: LiveSettings
    llm_runtime: LLMRuntime
    embedder: LazyEmbedder
    prompts: PromptEngine
    generations: GenerationManager
    summarizer: Summarizer
    capsules: CapsuleWriter
    watcher: FolderWatcher | None
    scheduler: Scheduler
    images: ImageService
    lore_jobs: Worker
    writes: Admission  # the door write requests pass (closed while a restore runs)
    restore_lock: asyncio.Lock
    backfill: Backfill  # search indexing and token counting of bulk-imported chat messages

    @property
    def llm_scheduler(self) -> LLMScheduler:
        """The one LLM scheduler: replies first, background calls in the free slots."""
        return self.generations.scheduler

    def background_notes(self, chat_id: int, sections: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Rejected background answers behind this prompt (the chat's summary, its cast's capsules)."""
        cast = sorted({s["source"]["character_id"] for s in sections
                       if s["kind"] in ("capsule", "card_full") and "character_id" in s["source"]})
        return self.summarizer.notes(chat_id) + self.capsules.notes(cast)

    def workers(self) -> list[Worker]:
        """Every background worker, paused together by a restore."""
        found: list[Worker] = [self.scheduler, self.summarizer, self.capsules, self.prompts.warming, self.lore_jobs,
                               self.backfill]
        return found + ([self.watcher] if self.watcher is not None else [])

    def apply_settings(self, patch: dict[str, Any]) -> dict[str, Any]:
        """Change UI settings (a bad value changes nothing); rebuild the LLM client when its sections change."""
        changed = self.live_settings.update(patch)
        if changed & BACKEND_SECTIONS:
            self.llm_runtime.reconfigure(self.live_settings.current, self.llm_transport)
        return self.live_settings.document()

    def reset_setting(self, section: str, key: str) -> dict[str, Any]:
        """Forget the UI's value for one key (config.yaml's applies again)."""
        self.live_settings.reset(section, key)
        if section in BACKEND_SECTIONS:
            self.llm_runtime.reconfigure(self.live_settings.current, self.llm_transport)
        return self.live_settings.document()


async def start_services(settings: Settings, llm_transport: httpx.AsyncBaseTransport | None,
                         image_transport: httpx.AsyncBaseTransport | None = None) -> Services:
    """Open the DB, sync the folders, start the LLM runtime, the embedder, the background workers and images."""
    db = open_database(settings)
    library = Library(db, settings.data_dir, max_bytes=settings.security.max_upload_mb * 1024 * 1024)
    watcher = await start_folder_sync(library, settings)
    live = LiveSettings(settings, db)
    live.load()
    runtime = await start_runtime(live.current, llm_transport)
    embedder = make_embedder(live.current)
    embedder.warm_up()  # loads in the background: the server answers before the model is ready
    lore_jobs = Worker("lore-index")
    prompts = PromptEngine(db, lambda: live.current, lambda: embedder, lore_jobs=lore_jobs)
    llm = LLMScheduler(lambda: live.current.llm.parallel_slots, lambda: live.current.llm.background_timeout_s)
    generations = GenerationManager(db, lambda: live.current, lambda: runtime.backend, prompts, llm)
    quiet = generations.quiet.wait  # background writers wait while a reply streams
    summarizer = Summarizer(db, lambda: live.current,
                            lambda: llm.background(runtime.backend, "summary", "Scene summary"), quiet=quiet)
    capsules = CapsuleWriter(db, lambda: live.current,
                             lambda: llm.background(runtime.backend, "capsule", "Character capsule"), quiet=quiet)
    generations.after_reply.extend([summarizer.after_reply, capsules.after_reply, prompts.after_reply])
    scheduler = make_scheduler(db, settings)
    images = ImageService(db, lambda: live.current,
                          lambda: llm.background(runtime.backend, "snapshot", "Snapshot keywords"),
                          transport=image_transport)
    services = Services(settings, llm_transport, image_transport, db, library, live, runtime, embedder, prompts,
                        generations, summarizer, capsules, watcher, scheduler, images, lore_jobs, Admission(),
                        asyncio.Lock(), Backfill(db))
    library.after_chat_import.append(services.backfill.kick)
    for worker in services.workers():
        if worker.state is not State.RUNNING:
            await worker.start()
    return services


async def stop_services(services: Services) -> None:
    """Stop the scheduler and replies first, then the background workers, the LLM runtime and the DB threads."""
    await services.scheduler.close()
    await services.generations.aclose()
    await services.prompts.aclose()  # lets the last lore warming finish
    await asyncio.gather(*(worker.close() for worker in services.workers()))
    await services.llm_runtime.aclose()
    await services.images.aclose()
    await in_thread(services.db.shutdown)


async def pause_writers(services: Services, reason: str) -> None:
    """Stop every writer: replies (text kept), write requests already running (waited for), the workers, the
    DB threads' connections. New replies are refused with `reason`; the caller has closed services.writes."""
    await services.generations.pause(reason)
    try:
        async with asyncio.timeout(DRAIN_TIMEOUT_S):
            await services.writes.drained()
    except TimeoutError as e:
        raise Conflict(f"the restore was called off: {services.writes.inside} request(s) were still writing "
                       f"after {DRAIN_TIMEOUT_S:.0f} s; nothing was changed, try again") from e
    await asyncio.gather(*(worker.pause() for worker in services.workers()))
    await in_thread(services.db.close_connections)


async def resume_writers(services: Services) -> None:
    """Undo pause_writers: workers, replies and write requests go on."""
    await asyncio.gather(*(worker.resume() for worker in services.workers()))
    services.generations.resume()
    services.writes.open()


async def restore_from_backup(services: Services, name: str) -> RestoreReport:
    """Restore a backup in maintenance mode (see the module docstring); a bad backup stops nothing."""
    if services.restore_lock.locked():
        raise MaintenanceMode("a restore is already running; try again when it has finished")
    async with services.restore_lock:
        folder = backups_dir(services.settings)
        try:
            staged = await in_thread(stage_backup, services.db, folder, name)
        except BackupError as e:
            raise InvalidInput(f"{e.message}. Nothing was stopped or changed.") from e
        services.writes.close(RESTORING)
        try:
            await pause_writers(services, RESTORING)
            report = await in_thread(restore_staged, services.db, folder, name, staged, now=utcnow(),
                                     folders=mirror_folders(services.library))
            await in_thread(adopt_restored, services.library, services.settings, bool(report.pre_restore))
            await in_thread(services.live_settings.load)
            services.llm_runtime.reconfigure(services.live_settings.current, services.llm_transport)
            services.prompts.caches.clear()
        finally:
            staged.unlink(missing_ok=True)
            await resume_writers(services)
    return report


def mirror_folders(library: Library) -> list[Path]:
    """The folders a pre-restore backup keeps a copy of."""
    return [library.paths.characters, library.paths.worlds]


def adopt_restored(library: Library, settings: Settings, archived: bool) -> None:
    """After a swap: replies the backup caught mid-way become incomplete, pictures replaced since the backup come
    back from trash/, and characters/ and worlds/ mirror the restored DB (only when their old files were archived
    into the pre-restore backup)."""
    with library.db.session() as conn:
        recover_streaming(conn, keep=settings.llm.keep_incomplete)
    library.recover_avatars()
    if archived:
        rewrite_mirrors(library)
    else:
        log.warning("there was no database before the restore, so characters/ and worlds/ were left as they are")


def restore_offline(settings: Settings, name: str) -> RestoreReport:
    """Restore a backup while the server is stopped (the CLI): the same steps, without writers to pause."""
    db = Database(settings.db_path)
    library = Library(db, settings.data_dir)
    report = restore_backup(db, backups_dir(settings), name, now=utcnow(), folders=mirror_folders(library))
    adopt_restored(library, settings, bool(report.pre_restore))
    return report
