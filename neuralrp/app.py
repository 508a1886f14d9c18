"""create_app(settings): the FastAPI application, built explicitly, nothing at import."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from neuralrp import __version__
from neuralrp.api.routes import chats, library, system
from neuralrp.api.routes import settings as settings_routes
from neuralrp.api.routes import summaries as summaries_routes
from neuralrp.chats.generation import GenerationManager
from neuralrp.chats.store import recover_streaming
from neuralrp.chats.summarizer import Summarizer
from neuralrp.config import Settings
from neuralrp.context.engine import PromptEngine
from neuralrp.db.connection import Database
from neuralrp.db.migrations import migrate
from neuralrp.errors import NeuralRPError
from neuralrp.library.service import Library
from neuralrp.library.sync import scan, watch
from neuralrp.llm.runtime import start_runtime
from neuralrp.ops.ui_settings import LiveSettings
from neuralrp.retrieval.embedder import make_embedder

log = logging.getLogger(__name__)

WEB_DIR = Path(__file__).parent / "web"
DATA_SUBDIRS = ("characters", "worlds", "images", "backups", "logs")


def prepare_data_dir(settings: Settings) -> None:
    """Create the data dir and its sub-folders."""
    for sub in DATA_SUBDIRS:
        (settings.data_dir / sub).mkdir(parents=True, exist_ok=True)


def open_database(settings: Settings) -> Database:
    """Create the data dir, open the DB and bring its schema up to date."""
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


async def _neuralrp_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, NeuralRPError)
    if exc.status_code >= 500:
        log.warning("%s %s failed: %s", request.method, request.url.path, exc.message)
    return JSONResponse(
        {"error": type(exc).__name__, "detail": exc.message},
        status_code=exc.status_code,
    )


async def start_folder_sync(library: Library, settings: Settings) -> asyncio.Task[None] | None:
    """Scan characters/ and worlds/ once, then watch them (as configured)."""
    if settings.library.scan_on_start:
        report = await asyncio.to_thread(scan, library)
        if report.lines:
            log.info("folder sync: %d change(s), %d error(s)", len(report.lines), report.errors)
    if not settings.library.watch:
        return None
    return asyncio.create_task(watch(library), name="library-folder-watch")


def create_app(
    settings: Settings,
    *,
    llm_transport: httpx.AsyncBaseTransport | None = None,
    image_transport: httpx.AsyncBaseTransport | None = None,
) -> FastAPI:
    """Build the app; transports are the test seam for the LLM and image servers."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.db = open_database(settings)
        app.state.library = Library(app.state.db, settings.data_dir,
                                    max_bytes=settings.security.max_upload_mb * 1024 * 1024)
        sync_task = await start_folder_sync(app.state.library, settings)
        live = app.state.live_settings = LiveSettings(settings, app.state.db)
        live.load()
        app.state.llm_runtime = await start_runtime(live.current, llm_transport)
        app.state.embedder = make_embedder(live.current)
        app.state.embedder.warm_up()  # loads in the background: the server answers before the model is ready
        app.state.prompts = PromptEngine(app.state.db, lambda: live.current, lambda: app.state.embedder)
        app.state.generations = GenerationManager(app.state.db, lambda: live.current,
                                                  lambda: app.state.llm_runtime.backend, app.state.prompts)
        # summaries: background scene folding after replies (never awaited by a reply)
        app.state.summarizer = Summarizer(app.state.db, lambda: live.current, lambda: app.state.llm_runtime.backend,
                                          busy=lambda: bool(app.state.generations.active))
        app.state.generations.after_reply.append(app.state.summarizer.after_reply)
        log.info("NeuralRP %s ready; data in %s", __version__, settings.data_dir)
        try:
            yield
        finally:
            await app.state.generations.aclose()
            await app.state.summarizer.aclose()  # summaries: after replies, so no hook starts a new fold
            await app.state.llm_runtime.aclose()
            if sync_task is not None:
                sync_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sync_task

    app = FastAPI(title="NeuralRP", version=__version__, lifespan=lifespan)
    app.state.settings = settings
    app.state.llm_transport = llm_transport
    app.state.image_transport = image_transport
    app.add_exception_handler(NeuralRPError, _neuralrp_error)
    app.include_router(system.router)
    app.include_router(library.router)
    app.include_router(chats.router)
    app.include_router(settings_routes.router)
    app.include_router(summaries_routes.router)
    app.mount("/", StaticFiles(directory=WEB_DIR, html=True), name="web")
    return app
