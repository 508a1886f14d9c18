"""Library routes: characters, worlds, tags, imports and exports."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

from fastapi import APIRouter, File, Request, UploadFile
from fastapi.responses import Response

from neuralrp.api.deps import ConnDep
from neuralrp.errors import InvalidInput
from neuralrp.library import characters as chars
from neuralrp.library import tags as tag_index
from neuralrp.library import worlds
from neuralrp.library.cardfile import placeholder_avatar
from neuralrp.library.importer import display_name, import_bytes
from neuralrp.library.queries import character_summaries
from neuralrp.library.service import Library
from neuralrp.library.sync import scan

router = APIRouter(tags=["library"])


def _library(request: Request) -> Library:
    return request.app.state.library  # type: ignore[no-any-return]


async def _read(upload: UploadFile, library: Library) -> bytes:
    data = await upload.read(library.max_bytes + 1)
    if len(data) > library.max_bytes:
        raise InvalidInput(f"{display_name(upload.filename or '')}: file is over the "
                           f"{library.max_bytes // 1024 // 1024} MiB upload limit")
    return data


def _download(data: bytes, filename: str, media_type: str) -> Response:
    quoted = filename.encode("ascii", "replace").decode().replace('"', "")
    return Response(data, media_type=media_type,
                    headers={"Content-Disposition": f'attachment; filename="{quoted}"'})


def _character(conn: Any, cid: int) -> dict[str, Any]:
    out = chars.get_character(conn, cid).public()
    out["world_id"] = worlds.linked_world_id(conn, cid)
    return out


@router.get("/api/characters")
def list_characters(conn: ConnDep, q: str = "", tags: str = "") -> list[dict[str, Any]]:
    """Characters matching the search text and all the given tags (comma-separated)."""
    wanted = [t for t in tags.split(",") if t.strip()]
    return character_summaries(conn, q=q, tags=wanted)


@router.post("/api/characters", status_code=201)
def create_character(card: dict[str, Any], request: Request, conn: ConnDep) -> dict[str, Any]:
    """Store a character from a card JSON object (V1, V2, V3 or Pygmalion)."""
    result = import_bytes(_library(request), _json_bytes(card), "card.json")
    if result.status == "error":
        raise InvalidInput(result.detail.removeprefix("card.json: "))
    assert result.id is not None
    return _character(conn, result.id)


def _json_bytes(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode()


@router.post("/api/characters/import", status_code=201)
async def import_character(request: Request, conn: ConnDep, file: Annotated[UploadFile, File()]) -> dict[str, Any]:
    """Import one card file (PNG or JSON); returns the stored character."""
    library = _library(request)
    data = await _read(file, library)
    result = library.import_card(data, display_name(file.filename or "card"))
    assert result.id is not None
    return _character(conn, result.id)


@router.post("/api/library/import")
async def import_files(request: Request, files: Annotated[list[UploadFile], File()]) -> dict[str, Any]:
    """Import several files (cards, worlds, chats); one result line per file."""
    library = _library(request)
    results = []
    for upload in files:
        try:
            data = await _read(upload, library)
        except InvalidInput as e:
            results.append({"file": display_name(upload.filename or ""), "status": "error", "kind": None,
                            "detail": e.message, "id": None})
            continue
        results.append(vars(import_bytes(library, data, upload.filename or "")))
    return {"results": results}


@router.get("/api/characters/{cid}")
def get_character(cid: int, conn: ConnDep) -> dict[str, Any]:
    """One character with its full card."""
    return _character(conn, cid)


@router.put("/api/characters/{cid}")
def update_character(cid: int, body: dict[str, Any], request: Request, conn: ConnDep) -> dict[str, Any]:
    """Replace the card (history kept; the file in characters/ is rewritten)."""
    if not isinstance(body.get("card"), dict):
        raise InvalidInput("send {\"card\": {...}} with the whole card")
    _library(request).update_card(cid, body["card"])
    return _character(conn, cid)


@router.delete("/api/characters/{cid}")
def delete_character(cid: int, request: Request) -> dict[str, bool]:
    """Delete a character that no chat uses (kept in history)."""
    _library(request).delete_character(cid)
    return {"deleted": True}


@router.get("/api/characters/{cid}/export")
def export_character(cid: int, request: Request, format: str = "png") -> Response:  # noqa: A002
    """Download the card as PNG (chara + ccv3) or JSON."""
    data, filename, media = _library(request).export_card(cid, format)
    return _download(data, filename, media)


@router.get("/api/characters/{cid}/avatar")
def avatar(cid: int, request: Request, conn: ConnDep) -> Response:
    """The character's avatar image (a placeholder when it has none)."""
    char = chars.get_character(conn, cid)
    data = _library(request).avatar_bytes(char) or placeholder_avatar(char.name)
    return Response(data, media_type="image/png", headers={"Cache-Control": "no-cache"})


@router.get("/api/tags")
def complete_tags(conn: ConnDep, q: str = "", limit: int = 10) -> list[dict[str, Any]]:
    """Tags for autocomplete."""
    return tag_index.complete_tags(conn, q, max(1, min(limit, 50)))


@router.get("/api/tags/top")
def top_tags(conn: ConnDep, limit: int = 5) -> list[dict[str, Any]]:
    """The most used tags."""
    return tag_index.top_tags(conn, max(1, min(limit, 50)))


@router.get("/api/worlds")
def list_worlds(conn: ConnDep) -> list[dict[str, Any]]:
    """All worlds with entry counts."""
    return worlds.list_worlds(conn)


@router.post("/api/worlds", status_code=201)
def create_world(body: dict[str, Any], request: Request, conn: ConnDep) -> dict[str, Any]:
    """An empty world."""
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput("a world needs a name")
    return worlds.get_world(conn, _library(request).create_world(name)).public()


@router.post("/api/worlds/import", status_code=201)
async def import_world(request: Request, conn: ConnDep, file: Annotated[UploadFile, File()]) -> dict[str, Any]:
    """Import a SillyTavern World Info JSON file."""
    library = _library(request)
    result = library.import_world(await _read(file, library), display_name(file.filename or "world.json"))
    assert result.id is not None
    return worlds.get_world(conn, result.id).public()


@router.get("/api/worlds/{wid}")
def get_world(wid: int, conn: ConnDep) -> dict[str, Any]:
    """A world and its entries."""
    return worlds.get_world(conn, wid).public()


@router.put("/api/worlds/{wid}")
def save_world(wid: int, body: dict[str, Any], request: Request) -> dict[str, Any]:
    """Replace a world's entries (and name); entries without an id are new."""
    entries = body.get("entries")
    if not isinstance(entries, list):
        raise InvalidInput("send {\"entries\": [...]} with every entry of the world")
    name = body.get("name")
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise InvalidInput("'name' must be a non-empty string")
    return _library(request).save_world(wid, entries, name).public()


@router.delete("/api/worlds/{wid}")
def delete_world(wid: int, request: Request) -> dict[str, bool]:
    """Delete a world (kept in history)."""
    _library(request).delete_world(wid)
    return {"deleted": True}


@router.get("/api/worlds/{wid}/export")
def export_world(wid: int, request: Request) -> Response:
    """Download the world as SillyTavern World Info JSON."""
    data, filename = _library(request).export_world(wid)
    return _download(data, filename, "application/json")


@router.post("/api/library/sync")
async def sync_folders(request: Request) -> dict[str, Any]:
    """Rescan characters/ and worlds/ now; one line per file touched."""
    report = await asyncio.to_thread(scan, _library(request))
    return {"changes": report.lines, "errors": report.errors}
