"""create_app(settings): the FastAPI application, built explicitly, nothing at import."""

from __future__ import annotations

import gc
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from neuralrp import __version__
from neuralrp.api.bodies import validation_error
from neuralrp.api.limits import BodyLimit, BodyTooLarge, body_too_large, number_too_large
from neuralrp.api.maintenance import WriteGate
from neuralrp.api.routes import backups, cardgen, chats, images, library, messages, npcs, personas, search, system
from neuralrp.api.routes import settings as settings_routes
from neuralrp.api.routes import summaries as summaries_routes
from neuralrp.api.routes import visual as visual_routes
from neuralrp.config import Settings
from neuralrp.errors import NeuralRPError
from neuralrp.security import install_security
from neuralrp.services import start_services, stop_services

log = logging.getLogger(__name__)

WEB_DIR = Path(__file__).parent / "web"
# How long a thread may hold the GIL while another waits for it (CPython's default is 5 ms). The event loop
# waits for the GIL each time it wakes, and worker threads (imports, decoding, the DB) keep it busy: 1 ms cut the
# p99 of /api/system/status under heavy requests by about a third (bench/loop_latency.py).
LOOP_SWITCH_INTERVAL_S = 0.001


async def _neuralrp_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, NeuralRPError)
    if exc.status_code >= 500:
        log.warning("%s %s failed: %s", request.method, request.url.path, exc.message)
    return JSONResponse(
        {"error": type(exc).__name__, "detail": exc.message},
        status_code=exc.status_code,
    )


def create_app(
    settings: Settings,
    *,
    llm_transport: httpx.AsyncBaseTransport | None = None,
    image_transport: httpx.AsyncBaseTransport | None = None,
) -> FastAPI:
    """Build the app; transports are the test seam for the LLM and image servers."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = await start_services(settings, llm_transport, image_transport)
        app.state.services = services
        gc.freeze()  # start-up objects stay for good: full collections skip them, so their pauses stay short
        switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(LOOP_SWITCH_INTERVAL_S)
        log.info("NeuralRP %s ready; data in %s", __version__, settings.data_dir)
        try:
            yield
        finally:
            app.state.services = None
            gc.unfreeze()
            sys.setswitchinterval(switch_interval)
            await stop_services(services)

    app = FastAPI(title="NeuralRP", version=__version__, lifespan=lifespan)
    app.add_exception_handler(NeuralRPError, _neuralrp_error)
    app.add_exception_handler(RequestValidationError, validation_error)  # names the field, never echoes
    app.add_exception_handler(BodyTooLarge, body_too_large)
    app.add_exception_handler(OverflowError, number_too_large)  # ids past 2^63 on any route: 422, not 500
    app.include_router(system.router)
    app.include_router(library.router)
    app.include_router(cardgen.router)
    app.include_router(chats.router)
    app.include_router(npcs.router)
    app.include_router(personas.router)
    app.include_router(messages.router)
    app.include_router(search.router)
    app.include_router(settings_routes.router)
    app.include_router(summaries_routes.router)
    app.include_router(backups.router)
    app.include_router(images.router)
    app.include_router(visual_routes.router)
    app.add_middleware(WriteGate)  # inside the security middleware: a refused login never reaches it
    app.add_middleware(BodyLimit, settings=settings)  # every body counted as it arrives, whatever its type
    install_security(app, settings)
    app.mount("/", StaticFiles(directory=WEB_DIR, html=True), name="web")
    return app
