"""Library routes: characters, worlds, tags, imports and exports."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Request, UploadFile
from fastapi.responses import Response

from neuralrp.api.bodies import OffLoopJSONRoute
from neuralrp.api.deps import ConnDep, get_services
from neuralrp.api.downloads import download
from neuralrp.chats import service as chat_service
from neuralrp.chats import store, worldlinks
from neuralrp.chats.importer import display_name, import_bytes
from neuralrp.chats.store import last_chat_by_character
from neuralrp.db.connection import Connection
from neuralrp.errors import InvalidInput
from neuralrp.library import characters as chars
from neuralrp.library import tags as tag_index
from neuralrp.library import worlds
from neuralrp.library.cardfile import placeholder_avatar
from neuralrp.library.queries import character_summaries
from neuralrp.library.service import Library
from neuralrp.library.sync import scan

router = APIRouter(tags=["library"], route_class=OffLoopJSONRoute)


def _library(request: Request) -> Library:
    return get_services(request).library


async def _read(upload: UploadFile, library: Library) -> bytes:
    data = await upload.read(library.max_bytes + 1)
    if len(data) > library.max_bytes:
        raise InvalidInput(f"{display_name(upload.filename or '')}: file is over the "
                           f"{library.max_bytes // 1024 // 1024} MiB upload limit")
    return data


def _download(data: bytes, filename: str, media_type: str) -> Response:
    return download(data, filename, media_type)  # RFC 6266 filename*: a Unicode name survives


def _character(conn: Connection, cid: int) -> dict[str, Any]:
    out = chars.get_character(conn, cid).public()
    out["world_id"] = worlds.linked_world_id(conn, cid)
    return out


@router.get("/api/characters")
def list_characters(conn: ConnDep, q: str = "", tags: str = "",
                    sort: Literal["name", "recent", "created"] = "name") -> list[dict[str, Any]]:
    """Characters matching the search text and all the given tags (comma-separated).

    sort: name (A-Z), recent (last chatted with first) or created (newest first).
    """
    wanted = [t for t in tags.split(",") if t.strip()]
    return character_summaries(conn, q=q, tags=wanted, sort=sort, last_chat=last_chat_by_character(conn))


@router.post("/api/characters", status_code=201)
def create_character(card: dict[str, Any], request: Request, conn: ConnDep) -> dict[str, Any]:
    """Store a character from a card JSON object (V1, V2, V3 or Pygmalion)."""
    result = import_bytes(_library(request), _json_bytes(card), "card.json", card_only=True)
    if result.status == "error":
        raise InvalidInput(result.detail.removeprefix("card.json: "))
    assert result.id is not None
    return _character(conn, result.id)


def _json_bytes(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode()


@router.post("/api/characters/import", status_code=201)
async def import_character(request: Request, file: Annotated[UploadFile, File()]) -> Response:
    """Import one card file (PNG or JSON); returns the stored character. The work runs on worker threads."""
    library = _library(request)
    data = await _read(file, library)
    result = await asyncio.to_thread(library.import_card, data, display_name(file.filename or "card"))
    assert result.id is not None
    return await library.db.run(_created, _character, result.id)


def _created(conn: Connection, public: Callable[[Connection, int], dict[str, Any]], oid: int) -> Response:
    """A stored object as a 201 JSON answer, encoded on the worker thread (a big card or world is megabytes)."""
    body = json.dumps(public(conn, oid), ensure_ascii=False).encode()
    return Response(body, status_code=201, media_type="application/json")


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
        results.append(vars(await asyncio.to_thread(import_bytes, library, data, upload.filename or "")))
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
def delete_character(cid: int, request: Request, conn: ConnDep,
                     chats: Literal["keep", "delete"] | None = None) -> dict[str, Any]:
    """Delete a character (kept in history). One in chats needs `chats`: keep (the chats stay, without it) or
    delete (they are deleted too, restorable until retention purges them); without it the answer is 409."""
    generations = get_services(request).generations
    for chat_id in store.chats_of_character(conn, cid) if chats == "delete" else []:
        generations.ensure_idle(chat_id)
    _library(request).delete_character(cid, chats=chats, drop_chats=chat_service.delete_chats_of)
    return {"deleted": True, **({"chats": chats} if chats else {})}


@router.put("/api/characters/{cid}/world")
def link_world(cid: int, body: dict[str, Any], request: Request, conn: ConnDep) -> dict[str, Any]:
    """Link the character to a world by name (the card's extensions.world, SillyTavern's linked lorebook; the card
    file is rewritten); {"world": null} or "" unlinks it."""
    name = body.get("world")
    if name is not None and not isinstance(name, str):
        raise InvalidInput("send {\"world\": \"<world name>\"} or {\"world\": null}")
    if name and name.strip():
        worlds.world_by_name(conn, name.strip())
    card = json.loads(json.dumps(chars.get_character(conn, cid).card))
    card["data"].setdefault("extensions", {})["world"] = (name or "").strip()
    _library(request).update_card(cid, card)
    return _character(conn, cid)


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


@router.post("/api/characters/{cid}/avatar")
async def upload_avatar(cid: int, request: Request, file: Annotated[UploadFile, File()]) -> Response:
    """Replace the character's picture (PNG, JPEG, WebP or GIF); it is written into the card's PNG file too."""
    library = _library(request)
    data = await _read(file, library)
    await asyncio.to_thread(library.set_avatar, cid, data, display_name(file.filename or "avatar"))
    return await library.db.run(_answer, _character, cid)


def _answer(conn: Connection, public: Callable[[Connection, int], dict[str, Any]], oid: int) -> Response:
    """A stored object as a 200 JSON answer, encoded on the worker thread."""
    return Response(json.dumps(public(conn, oid), ensure_ascii=False).encode(), media_type="application/json")


@router.get("/api/tags")
def complete_tags(conn: ConnDep, q: str = "", limit: int = 10) -> list[dict[str, Any]]:
    """Tags for autocomplete."""
    return tag_index.complete_tags(conn, q, max(1, min(limit, 50)))


@router.get("/api/tags/top")
def top_tags(conn: ConnDep, limit: int = 5) -> list[dict[str, Any]]:
    """The most used tags."""
    return tag_index.top_tags(conn, max(1, min(limit, 50)))


@router.get("/api/worlds")
def list_worlds(request: Request, conn: ConnDep) -> list[dict[str, Any]]:
    """All worlds with entry counts and who uses them: `chat_ids` (chats that chose them), `linked_characters`
    (cards naming them in extensions.world) and `global` (in the world.active_worlds setting)."""
    active = {n.strip().casefold() for n in get_services(request).live_settings.current.world.active_worlds}
    users = worldlinks.world_users(conn)
    out = worlds.list_worlds(conn)
    for world in out:
        used = users.get(world["id"], {})
        world.update(chat_ids=used.get("chats", []), linked_characters=used.get("characters", []),
                     **{"global": world["name"].casefold() in active})
    return out


@router.post("/api/worlds", status_code=201)
def create_world(body: dict[str, Any], request: Request, conn: ConnDep) -> dict[str, Any]:
    """An empty world."""
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput("a world needs a name")
    return worlds.get_world(conn, _library(request).create_world(name)).public()


@router.post("/api/worlds/import", status_code=201)
async def import_world(request: Request, file: Annotated[UploadFile, File()]) -> Response:
    """Import a SillyTavern World Info JSON file; parsing, storing and encoding the answer run on worker threads."""
    library = _library(request)
    data = await _read(file, library)
    result = await asyncio.to_thread(library.import_world, data, display_name(file.filename or "world.json"))
    assert result.id is not None
    return await library.db.run(_created, _world, result.id)


def _world(conn: Connection, wid: int) -> dict[str, Any]:
    return worlds.get_world(conn, wid).public()


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


@router.post("/api/library/history/{change_id}/restore")
def restore_library_change(change_id: int, request: Request, side: str = "old") -> dict[str, Any]:
    """Put a character or world back as a change-history record holds it (`side`: old = before, new = after)."""
    if side not in ("old", "new"):
        raise InvalidInput("'side' must be 'old' or 'new'")
    kind, oid = _library(request).restore_change(change_id, side=side)
    return {"kind": kind, "id": oid}


@router.post("/api/library/sync")
async def sync_folders(request: Request) -> dict[str, Any]:
    """Rescan characters/ and worlds/ now; one line per file touched."""
    report = await asyncio.to_thread(scan, _library(request))
    return {"changes": report.lines, "errors": report.errors}
