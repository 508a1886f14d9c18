"""Chat routes: create, list, read messages, send (streamed), regenerate, continue, stop, swipes, fork, export."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from sse_starlette import EventSourceResponse

from neuralrp.api.bodies import OffLoopJSONRoute
from neuralrp.api.deps import ConnDep, get_services
from neuralrp.api.downloads import download
from neuralrp.chats import service, store, worldlinks
from neuralrp.chats.fork import fork_chat
from neuralrp.chats.importer import import_bytes
from neuralrp.chats.personas import choose_persona
from neuralrp.chats.st_io import export_file_stem, export_st_chat
from neuralrp.chats.training import TrainingOptions, export_training
from neuralrp.errors import BackendError, InvalidInput
from neuralrp.library.characters import get_character
from neuralrp.turns.events import Event, Failed, Idle, json_outcome, sse
from neuralrp.turns.generation import GenerationManager
from neuralrp.turns.running import Generation, Kind

router = APIRouter(prefix="/api/chats", tags=["chats"], route_class=OffLoopJSONRoute)


class ChatCreate(BaseModel):
    """A new chat: existing character ids and/or a card JSON to store; its persona (a library persona's id, or a
    name for this chat; else the default persona), its own worlds, and which greetings open it (default: the
    chats.greetings setting)."""

    character_ids: list[int] = Field(default_factory=list)
    card: dict[str, Any] | None = None
    title: str | None = None
    persona: dict[str, Any] | None = None
    persona_id: int | None = None
    world_ids: list[int] = Field(default_factory=list)
    greetings: Literal["all", "first"] | None = None


class ChatUpdate(BaseModel):
    """Fields of a chat that can change: title, mode, focus character, persona (by id, or a name)."""

    title: str | None = None
    mode: Literal["narrator", "focus", "auto"] | None = None
    focus_character_id: int | None = None
    persona_id: int | None = None
    persona: dict[str, Any] | None = None


class ChatWorlds(BaseModel):
    """The worlds chosen for the chat itself (its cast's and the global ones come in anyway)."""

    world_ids: list[int]


class SpeakRequest(BaseModel):
    """Let this cast member answer now ("speak next"); stream=false waits and returns JSON."""

    character_id: int
    stream: bool = True


class CastUpdate(BaseModel):
    """Add a character to the cast or change whether they are active."""

    character_id: int
    is_active: bool = True


class MessageCreate(BaseModel):
    """The user's message; stream=false waits and returns JSON."""

    content: str
    stream: bool = True
    speaker_id: int | None = None  # the cast member who answers (else the chat's mode picks)


class GenerateOptions(BaseModel):
    """Options for regenerate/continue."""

    stream: bool = True


class SwipeSelect(BaseModel):
    """Which swipe to show."""

    index: int


class ForkRequest(BaseModel):
    """Fork (Save As) from this message; the title defaults to "<title> (fork)"."""

    message_id: int
    title: str | None = None


class TrainingExport(BaseModel):
    """Training data for several chats (all chats when chat_ids is empty)."""

    chat_ids: list[int] = Field(default_factory=list)
    format: Literal["alpaca", "sharegpt", "chatml"] = "sharegpt"
    include_characters: bool = True
    include_summaries: bool = False
    speaker_names: Literal["auto", "always", "never"] = "auto"
    alpaca_history: int = Field(10, ge=0, le=200)
    chatml_text: bool = False

    def options(self) -> TrainingOptions:
        """The export options."""
        return TrainingOptions(self.include_characters, self.include_summaries, self.speaker_names,
                               self.alpaca_history, self.chatml_text)


def _download(data: bytes, filename: str) -> Response:
    """An attachment; names outside ASCII travel in filename* (RFC 6266), with an ASCII fallback."""
    return download(data, filename, "application/jsonl")  # CR/LF in a title cannot end the header


def _manager(request: Request) -> GenerationManager:
    return get_services(request).generations


@router.post("", status_code=201)
def create_chat(body: ChatCreate, request: Request, conn: ConnDep) -> dict[str, Any]:
    """Create a chat; a card given here joins the library first; the first character greets."""
    ids = list(body.character_ids)
    if body.card is not None:
        result = import_bytes(get_services(request).library, json.dumps(body.card).encode(), "card.json",
                              card_only=True)
        if result.status == "error" or result.id is None:
            raise InvalidInput(result.detail.removeprefix("card.json: "))
        ids.append(result.id)
    greetings = body.greetings or get_services(request).live_settings.current.chats.greetings
    chat_id = service.create_chat(conn, character_ids=ids, title=body.title, persona=body.persona,
                                  persona_id=body.persona_id, world_ids=body.world_ids, greetings=greetings)
    return service.chat_public(conn, chat_id)


@router.get("")
def list_chats(conn: ConnDep, character_id: int | None = None, q: str = "",
               sort: Literal["recent", "created", "name"] = "recent", deleted: bool = False) -> list[dict[str, Any]]:
    """Chats (all, or one character's; `q` matches the title or cast names), most recently active first.

    sort=created puts the newest chats first; sort=name orders by title (an untitled chat by its cast).
    deleted=true lists the deleted chats instead (restorable until retention purges them).
    """
    if character_id is not None:
        get_character(conn, character_id)
    found = store.list_chats(conn, character_id=character_id, q=q[:200], sort=sort, deleted=deleted)
    return [c.public() for c in found]


@router.delete("/{chat_id}")
def delete_chat(chat_id: int, request: Request, conn: ConnDep) -> dict[str, Any]:
    """Delete a chat: it leaves the lists at once; POST .../restore brings it back until retention purges it
    (retention.deleted_chat_days)."""
    _manager(request).ensure_idle(chat_id)
    service.delete_chat(conn, chat_id)
    return service.chat_public(conn, chat_id)


@router.post("/{chat_id}/restore")
def restore_chat(chat_id: int, conn: ConnDep) -> dict[str, Any]:
    """Undo a chat's delete."""
    service.restore_chat(conn, chat_id)
    return service.chat_public(conn, chat_id)


@router.get("/{chat_id}/worlds")
def chat_worlds(chat_id: int, request: Request, conn: ConnDep) -> dict[str, Any]:
    """The worlds the chat uses and the link each came through (chat, a card, a card's book, global), and the
    ones chosen for the chat itself."""
    store.get_chat(conn, chat_id)
    active = get_services(request).live_settings.current.world.active_worlds
    links = worldlinks.world_links(conn, chat_id, active)
    return {"chat_id": chat_id, "world_ids": worldlinks.chat_world_choice(conn, chat_id),
            "in_use": [link.public() for link in links]}


@router.put("/{chat_id}/worlds")
def set_chat_worlds(chat_id: int, body: ChatWorlds, request: Request, conn: ConnDep) -> dict[str, Any]:
    """Choose the chat's own worlds (attach and detach); the next reply's lore comes from them too."""
    service.set_chat_worlds(conn, chat_id, body.world_ids)
    return chat_worlds(chat_id, request, conn)


@router.get("/{chat_id}")
def get_chat(chat_id: int, conn: ConnDep) -> dict[str, Any]:
    """One chat with its cast."""
    return service.chat_public(conn, chat_id)


@router.patch("/{chat_id}")
def update_chat(chat_id: int, body: ChatUpdate, conn: ConnDep) -> dict[str, Any]:
    """Rename, switch mode (narrator / focus / auto), change the focus character or the persona played."""
    changes = body.model_dump(exclude_unset=True)
    if "persona_id" in changes or "persona" in changes:
        choose_persona(conn, chat_id, changes.get("persona_id"), changes.get("persona"))
    service.update_chat(conn, chat_id, changes)
    return service.chat_public(conn, chat_id)


@router.put("/{chat_id}/cast")
def set_cast_member(chat_id: int, body: CastUpdate, conn: ConnDep) -> dict[str, Any]:
    """Add a character to the cast, or make a cast member active or inactive."""
    service.set_cast_member(conn, chat_id, body.character_id, active=body.is_active)
    return service.chat_public(conn, chat_id)


@router.get("/{chat_id}/prompt")
async def inspect_prompt(chat_id: int, request: Request) -> dict[str, Any]:
    """The exact prompt the next reply would get, section by section with sources and token counts."""
    backend = get_services(request).llm_runtime.backend
    context_length = None
    if backend is not None:
        try:
            context_length = (await backend.info()).context_length
        except BackendError:
            context_length = None  # inspecting works without a reachable server; the settings' window applies
    services = get_services(request)
    doc = await asyncio.to_thread(services.prompts.inspect_sync, chat_id, context_length)
    doc["background"] = services.background_notes(chat_id, doc["sections"])
    return doc


@router.get("/{chat_id}/messages")
def get_messages(chat_id: int, request: Request, conn: ConnDep, limit: int = 200,
                 before_seq: int | None = None) -> dict[str, Any]:
    """The newest `limit` live messages (before `before_seq`), oldest first."""
    store.get_chat(conn, chat_id)
    rows = store.list_messages(conn, chat_id, limit=max(1, min(limit, 1000)), before_seq=before_seq)
    return {"chat_id": chat_id, "messages": [m.public() for m in rows],
            "generating": chat_id in _manager(request).active}


async def _respond(gen: Generation, stream: bool) -> Response:
    """SSE of the reply's events once its first token came; JSON when it failed before that, or stream=false."""
    outcome = await gen.first_outcome() if stream else None
    if not stream or isinstance(outcome, Failed):
        await gen.finished.wait()
        status, body = json_outcome(gen.events)
        return JSONResponse(body, status_code=status)
    return EventSourceResponse(_sse(gen.follow()), ping=15)


async def _sse(events: AsyncIterator[Event]) -> AsyncIterator[dict[str, str]]:
    async for event in events:
        yield sse(event)


async def _idle(chat_id: int) -> AsyncIterator[Event]:
    yield Idle(chat_id)


@router.post("/{chat_id}/messages")
async def send_message(chat_id: int, body: MessageCreate, request: Request) -> Response:
    """Save the user's message, then stream the reply as SSE (events: user, start, token, done|error); in Auto mode
    each addressed character may answer in turn (a `done` with more=true, then the next `start`)."""
    await get_services(request).db.run(service.ensure_live, chat_id)
    gen = await _manager(request).start(chat_id, "reply", user_text=body.content, speaker_id=body.speaker_id)
    return await _respond(gen, body.stream)


@router.post("/{chat_id}/speak")
async def speak_next(chat_id: int, body: SpeakRequest, request: Request) -> Response:
    """This cast member answers now, without a new message from the user (SillyTavern's "force talk")."""
    await get_services(request).db.run(service.ensure_live, chat_id)
    gen = await _manager(request).start(chat_id, "reply", speaker_id=body.character_id)
    return await _respond(gen, body.stream)


async def _generate(request: Request, chat_id: int, kind: Kind, stream: bool) -> Response:
    await get_services(request).db.run(service.ensure_live, chat_id)
    gen = await _manager(request).start(chat_id, kind)
    return await _respond(gen, stream)


@router.post("/{chat_id}/regenerate")
async def regenerate(chat_id: int, request: Request, body: GenerateOptions | None = None) -> Response:
    """Write a new swipe for the last reply (old swipes are kept)."""
    return await _generate(request, chat_id, "regenerate", (body or GenerateOptions()).stream)


@router.post("/{chat_id}/continue")
async def continue_reply(chat_id: int, request: Request, body: GenerateOptions | None = None) -> Response:
    """Extend the last reply."""
    return await _generate(request, chat_id, "continue", (body or GenerateOptions()).stream)


@router.post("/{chat_id}/stop")
async def stop(chat_id: int, request: Request) -> dict[str, bool]:
    """Stop the reply being written; the text so far is kept."""
    return {"stopped": await _manager(request).stop(chat_id)}


@router.get("/{chat_id}/stream")
async def follow_reply(chat_id: int, request: Request) -> Response:
    """Follow the chat's reply as Server-Sent Events (works with a browser EventSource).

    A running reply is replayed from its first event (`user` when a sent message started it, `start`, every
    `token` so far), then followed live until `done` or `error`, and the stream ends. When no reply runs the
    answer is one `idle` event and the stream ends. Each event's name is its type and its data the JSON
    payload (neuralrp/turns/events.py). An EventSource reconnects when a stream ends, so clients close it
    on `done`, `error` or `idle`; a reconnect after the reply ended just gets `idle`. Unknown chat: 404.
    """
    services = get_services(request)
    await services.db.run(store.get_chat, chat_id)
    gen = services.generations.active.get(chat_id)
    events = gen.follow() if gen is not None else _idle(chat_id)
    return EventSourceResponse(_sse(events), ping=15)


@router.get("/{chat_id}/messages/{message_id}/swipes")
def list_swipes(chat_id: int, message_id: int, conn: ConnDep) -> dict[str, Any]:
    """A reply's swipes."""
    msg = service.message_in_chat(conn, chat_id, message_id)
    swipes = [s.public() for s in store.swipes(conn, message_id)]
    return {"message_id": msg.id, "swipe_index": msg.swipe_index, "swipes": swipes}


@router.post("/{chat_id}/messages/{message_id}/swipe")
def choose_swipe(chat_id: int, message_id: int, body: SwipeSelect, conn: ConnDep) -> dict[str, Any]:
    """Show another swipe of a reply."""
    service.message_in_chat(conn, chat_id, message_id)
    return service.select_swipe(conn, message_id, body.index).public()


@router.post("/export/training")
def export_training_many(body: TrainingExport, conn: ConnDep) -> Response:
    """Training data (JSONL) for several chats, or all chats when chat_ids is empty."""
    for chat_id in body.chat_ids:
        store.get_chat(conn, chat_id)
    return _download(export_training(conn, body.chat_ids, body.format, body.options()),
                     f"neuralrp-training-{body.format}.jsonl")


@router.post("/{chat_id}/fork", status_code=201)
def fork(chat_id: int, body: ForkRequest, conn: ConnDep) -> dict[str, Any]:
    """Save As: a new chat with everything up to and including this message; the original is untouched."""
    new_id = fork_chat(conn, chat_id, body.message_id, title=body.title)
    public = service.chat_public(conn, new_id)
    public.update(forked_from_chat_id=chat_id, forked_from_message_id=body.message_id)
    return public


@router.get("/{chat_id}/export")
def export_chat(chat_id: int, conn: ConnDep, format: str = "jsonl",  # noqa: A002
                include_characters: bool = True, include_summaries: bool = False,
                speaker_names: Literal["auto", "always", "never"] = "auto", chatml_text: bool = False) -> Response:
    """Download the chat as SillyTavern .jsonl, or as training data (alpaca | sharegpt | chatml JSONL)."""
    if format == "jsonl":
        data, filename = export_st_chat(conn, chat_id)
        return _download(data, filename)
    if format not in ("alpaca", "sharegpt", "chatml"):
        raise InvalidInput(f"unknown chat export format '{format}'; use jsonl, alpaca, sharegpt or chatml")
    stem = export_file_stem(conn, chat_id)
    options = TrainingOptions(include_characters, include_summaries, speaker_names, chatml_text=chatml_text)
    return _download(export_training(conn, [chat_id], format, options), f"{stem} ({format}).jsonl")
