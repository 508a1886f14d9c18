"""FastAPI dependencies: settings, DB connections and backends from app.state."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import Depends, Request

from neuralrp.config import Settings
from neuralrp.db.connection import Database


def get_settings(request: Request) -> Settings:
    """The app's settings."""
    return request.app.state.settings  # type: ignore[no-any-return]


def get_db(request: Request) -> Database:
    """The app's database handle."""
    return request.app.state.db  # type: ignore[no-any-return]


def get_conn(db: Annotated[Database, Depends(get_db)]) -> Iterator[Any]:
    """A connection for one request, closed afterwards."""
    with db.session() as conn:
        yield conn


SettingsDep = Annotated[Settings, Depends(get_settings)]
DatabaseDep = Annotated[Database, Depends(get_db)]
ConnDep = Annotated[Any, Depends(get_conn)]
