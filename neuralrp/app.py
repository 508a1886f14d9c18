"""create_app(settings): the FastAPI application, built explicitly, nothing at import."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from neuralrp import __version__
from neuralrp.api.routes import backups, cardgen, chats, images, library, messages, npcs, search, system
from neuralrp.api.routes import settings as settings_routes
from neuralrp.api.routes import summaries as summaries_routes
from neuralrp.api.routes import visual as visual_routes
from neuralrp.config import Settings
from neuralrp.errors import NeuralRPError
from neuralrp.security import install_security
from neuralrp.services import start_services, stop_services

log = logging.getLogger(__name__)

WEB_DIR = Path(__file__).parent / "web"


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
        for name, value in vars(services).items():
            setattr(app.state, name, value)
        log.info("NeuralRP %s ready; data in %s", __version__, settings.data_dir)
        try:
            yield
        finally:
            await stop_services(services)

    app = FastAPI(title="NeuralRP", version=__version__, lifespan=lifespan)
    app.state.settings = settings
    app.state.llm_transport = llm_transport
    app.state.image_transport = image_transport
    app.add_exception_handler(NeuralRPError, _neuralrp_error)
    app.include_router(system.router)
    app.include_router(library.router)
    app.include_router(cardgen.router)
    app.include_router(chats.router)
    app.include_router(npcs.router)
    app.include_router(messages.router)
    app.include_router(search.router)
    app.include_router(settings_routes.router)
    app.include_router(summaries_routes.router)
    app.include_router(backups.router)
    app.include_router(images.router)
    app.include_router(visual_routes.router)
    install_security(app, settings)
    app.mount("/", StaticFiles(directory=WEB_DIR, html=True), name="web")
    return app
