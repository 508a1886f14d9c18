"""FastAPI dependencies: the app's Services, its settings and per-request DB connections."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request

from neuralrp.config import Settings
from neuralrp.db.connection import Connection, Database
from neuralrp.errors import ServiceUnavailable
from neuralrp.services import Services


def get_services(request: Request) -> Services:
    """The running app's Services (503 before start-up has finished or after shutdown)."""
    services = getattr(request.app.state, "services", None)
    if not isinstance(services, Services):
        raise ServiceUnavailable("NeuralRP is starting or stopping; try again in a moment")
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def get_settings(services: ServicesDep) -> Settings:
    """The app's start-up settings (config.yaml + environment)."""
    return services.settings


def get_db(services: ServicesDep) -> Database:
    """The app's database handle."""
    return services.db


def get_conn(db: Annotated[Database, Depends(get_db)]) -> Iterator[Connection]:
    """A connection for one request (sync routes run in the thread pool), closed afterwards."""
    with db.session() as conn:
        yield conn


SettingsDep = Annotated[Settings, Depends(get_settings)]
DatabaseDep = Annotated[Database, Depends(get_db)]
ConnDep = Annotated[Connection, Depends(get_conn)]
