"""The long-lived parts of a running NeuralRP, started and stopped together (by the app's lifespan)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any

import httpx

from neuralrp.chats.generation import GenerationManager
from neuralrp.chats.store import recover_streaming
from neuralrp.chats.summarizer import Summarizer
from neuralrp.config import Settings
from neuralrp.context.capsule_writer import CapsuleWriter
from neuralrp.context.engine import PromptEngine
from neuralrp.db.connection import Database
from neuralrp.db.migrations import migrate
from neuralrp.images.service import ImageService
from neuralrp.library.service import Library
from neuralrp.library.sync import scan, watch
from neuralrp.llm.runtime import LLMRuntime, start_runtime
from neuralrp.ops.scheduler import Scheduler, make_scheduler
from neuralrp.ops.ui_settings import LiveSettings
from neuralrp.retrieval.embedder import LazyEmbedder, make_embedder

log = logging.getLogger(__name__)
DATA_SUBDIRS = ("characters", "worlds", "images", "backups", "logs")


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


async def start_folder_sync(library: Library, settings: Settings) -> asyncio.Task[None] | None:
    """Scan characters/ and worlds/ once, then watch them (as configured)."""
    if settings.library.scan_on_start:
        report = await asyncio.to_thread(scan, library)
        if report.lines:
            log.info("folder sync: %d change(s), %d error(s)", len(report.lines), report.errors)
    if not settings.library.watch:
        return None
    return asyncio.create_task(watch(library), name="library-folder-watch")


@dataclass
class Services:
    """Everything the routes reach through app.state."""

    db: Database
    library: Library
    live_settings: LiveSettings
    llm_runtime: LLMRuntime
    embedder: LazyEmbedder
    prompts: PromptEngine
    generations: GenerationManager
    summarizer: Summarizer
    capsules: CapsuleWriter
    sync_task: asyncio.Task[None] | None
    scheduler: Scheduler
    images: ImageService


async def start_services(settings: Settings, llm_transport: httpx.AsyncBaseTransport | None,
                         image_transport: httpx.AsyncBaseTransport | None = None) -> Services:
    """Open the DB, sync the folders, start the LLM runtime, the embedder, the background writers and images."""
    db = open_database(settings)
    library = Library(db, settings.data_dir, max_bytes=settings.security.max_upload_mb * 1024 * 1024)
    sync_task = await start_folder_sync(library, settings)
    live = LiveSettings(settings, db)
    live.load()
    runtime = await start_runtime(live.current, llm_transport)
    embedder = make_embedder(live.current)
    embedder.warm_up()  # loads in the background: the server answers before the model is ready
    prompts = PromptEngine(db, lambda: live.current, lambda: embedder)
    generations = GenerationManager(db, lambda: live.current, lambda: runtime.backend, prompts)
    busy = lambda: bool(generations.active)  # noqa: E731 - background writers wait while a reply streams
    summarizer = Summarizer(db, lambda: live.current, lambda: runtime.backend, busy=busy)
    capsules = CapsuleWriter(db, lambda: live.current, lambda: runtime.backend, busy=busy)
    generations.after_reply.extend([summarizer.after_reply, capsules.after_reply, prompts.after_reply])
    scheduler = make_scheduler(db, settings)
    scheduler.start()
    images = ImageService(db, lambda: live.current, lambda: runtime.backend, transport=image_transport)
    return Services(db, library, live, runtime, embedder, prompts, generations, summarizer, capsules, sync_task,
                    scheduler, images)


async def stop_services(services: Services) -> None:
    """Stop the scheduler and replies first, then background writers, the LLM runtime and the folder watcher."""
    await asyncio.to_thread(services.scheduler.stop)
    await services.generations.aclose()
    await services.summarizer.aclose()
    await services.capsules.aclose()
    await services.prompts.aclose()
    await services.llm_runtime.aclose()
    if services.sync_task is not None:
        services.sync_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await services.sync_task


async def quiesce_writers(state: Services | Any) -> None:
    """Before a restore: stop running replies, summary folds and capsule jobs (new ones may start afterwards).

    `state` is the Services or the app.state that carries the same fields.
    """
    await state.generations.aclose()
    await state.summarizer.aclose()
    state.summarizer._closed = False  # aclose() is meant for shutdown; reopen it for use after the restore
    await state.capsules.aclose()
