"""Persona routes: the persona library (name, description, avatar, default), like SillyTavern's Persona Management."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, File, Request, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel

from neuralrp.api.bodies import OffLoopJSONRoute
from neuralrp.api.deps import ConnDep, get_services
from neuralrp.chats import personas as persona_service
from neuralrp.chats.importer import display_name
from neuralrp.errors import InvalidInput
from neuralrp.library import personas
from neuralrp.library.cardfile import placeholder_avatar
from neuralrp.library.stpersonas import import_st_personas

router = APIRouter(prefix="/api/personas", tags=["personas"], route_class=OffLoopJSONRoute)


class PersonaCreate(BaseModel):
    """A new persona; the first one becomes the default."""

    name: str
    description: str = ""
    is_default: bool = False


class PersonaUpdate(BaseModel):
    """Persona fields to change (every chat playing it gets the new name and description)."""

    name: str | None = None
    description: str | None = None
    is_default: bool | None = None


@router.get("")
def list_personas(conn: ConnDep) -> list[dict[str, Any]]:
    """Every persona, the default first."""
    return [p.public() for p in personas.list_personas(conn)]


@router.post("", status_code=201)
def create_persona(body: PersonaCreate, conn: ConnDep) -> dict[str, Any]:
    """Add a persona."""
    pid = persona_service.create_persona(conn, body.name, body.description, default=body.is_default)
    return personas.get_persona(conn, pid).public()


@router.post("/import")
async def import_sillytavern(request: Request, settings: Annotated[UploadFile, File()],
                             avatars: Annotated[list[UploadFile] | None, File()] = None) -> dict[str, Any]:
    """Import the personas of SillyTavern's settings.json; optional `avatars` are its User Avatars pictures."""
    library = get_services(request).library
    data = await settings.read(library.max_bytes + 1)
    pictures = [(upload.filename or "", await upload.read(library.max_bytes + 1)) for upload in avatars or []]
    filename = display_name(settings.filename or "settings.json")
    report = await asyncio.to_thread(import_st_personas, library, data, filename, pictures)
    return report.public()


@router.get("/{pid}")
def get_persona(pid: int, conn: ConnDep) -> dict[str, Any]:
    """One persona."""
    return personas.get_persona(conn, pid).public()


@router.patch("/{pid}")
def update_persona(pid: int, body: PersonaUpdate, conn: ConnDep) -> dict[str, Any]:
    """Change a persona; `chats_updated` says how many chats playing it took the change."""
    changes = body.model_dump(exclude_unset=True)
    if changes.get("name") is None and "name" in changes:
        raise InvalidInput("a persona needs a name")
    updated = persona_service.edit_persona(conn, pid, changes)
    return {**personas.get_persona(conn, pid).public(), "chats_updated": updated}


@router.delete("/{pid}")
def delete_persona(pid: int, conn: ConnDep) -> dict[str, bool]:
    """Delete a persona (chats that played it keep its name and description)."""
    persona_service.delete_persona(conn, pid)
    return {"deleted": True}


@router.get("/{pid}/avatar")
def persona_avatar(pid: int, request: Request, conn: ConnDep) -> Response:
    """The persona's picture (a placeholder when it has none)."""
    persona = personas.get_persona(conn, pid)
    data = get_services(request).library.persona_avatar(persona) or placeholder_avatar(persona.name)
    return Response(data, media_type="image/png", headers={"Cache-Control": "no-cache"})


@router.post("/{pid}/avatar")
async def upload_persona_avatar(pid: int, request: Request, file: Annotated[UploadFile, File()]) -> dict[str, Any]:
    """Give the persona a picture (PNG, JPEG, WebP or GIF)."""
    library = get_services(request).library
    data = await file.read(library.max_bytes + 1)
    persona = await asyncio.to_thread(library.set_persona_avatar, pid, data, display_name(file.filename or "avatar"))
    return persona.public()
