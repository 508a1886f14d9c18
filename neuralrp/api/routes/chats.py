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

from neuralrp.api.deps import ConnDep
from neuralrp.chats import service, store
from neuralrp.chats.fork import fork_chat
from neuralrp.chats.generation import Generation, GenerationManager, Kind
from neuralrp.chats.st_io import export_st_chat
from neuralrp.chats.training import TrainingOptions, export_training
from neuralrp.errors import BackendError, InvalidInput
from neuralrp.library.importer import import_bytes

router = APIRouter(prefix="/api/chats", tags=["chats"])


class ChatCreate(BaseModel):
    """A new chat: existing character ids and/or a card JSON to store."""

    character_ids: list[int] = Field(default_factory=list)
    card: dict[str, Any] | None = None
    title: str | None = None
    persona: dict[str, Any] | None = None


class ChatUpdate(BaseModel):
    """Fields of a chat that can change: title, mode, focus character."""

    title: str | None = None
    mode: Literal["narrator", "focus", "auto"] | None = None
    focus_character_id: int | None = None


class CastUpdate(BaseModel):
    """Add a character to the cast or change whether they are active."""

    character_id: int
    is_active: bool = True


class MessageCreate(BaseModel):
    """The user's message; stream=false waits and returns JSON."""

    content: str
    stream: bool = True


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
    quoted = filename.encode("ascii", "replace").decode().replace('"', "")
    return Response(data, media_type="application/jsonl",
                    headers={"Content-Disposition": f'attachment; filename="{quoted}"'})


def _manager(request: Request) -> GenerationManager:
    return request.app.state.generations  # type: ignore[no-any-return]


@router.post("", status_code=201)
def create_chat(body: ChatCreate, request: Request, conn: ConnDep) -> dict[str, Any]:
    """Create a chat; a card given here joins the library first; the first character greets."""
    ids = list(body.character_ids)
    if body.card is not None:
        result = import_bytes(request.app.state.library, json.dumps(body.card).encode(), "card.json")
        if result.status == "error" or result.id is None:
            raise InvalidInput(result.detail.removeprefix("card.json: "))
        ids.append(result.id)
    chat_id = service.create_chat(conn, character_ids=ids, title=body.title, persona=body.persona)
    return service.chat_public(conn, chat_id)


@router.get("")
def list_chats(conn: ConnDep) -> list[dict[str, Any]]:
    """All chats, most recently active first."""
    return [{"id": r["id"], "title": r["title"], "mode": r["mode"], "turn": r["turn"],
             "message_count": r["message_count"], "cast_names": r["cast_names"] or "",
             "last_activity_at": r["last_activity_at"]} for r in store.list_chat_rows(conn)]


@router.get("/{chat_id}")
def get_chat(chat_id: int, conn: ConnDep) -> dict[str, Any]:
    """One chat with its cast."""
    return service.chat_public(conn, chat_id)


@router.patch("/{chat_id}")
def update_chat(chat_id: int, body: ChatUpdate, conn: ConnDep) -> dict[str, Any]:
    """Rename, switch mode (narrator / focus / auto) or change the focus character."""
    service.update_chat(conn, chat_id, body.model_dump(exclude_unset=True))
    return service.chat_public(conn, chat_id)


@router.put("/{chat_id}/cast")
def set_cast_member(chat_id: int, body: CastUpdate, conn: ConnDep) -> dict[str, Any]:
    """Add a character to the cast, or make a cast member active or inactive."""
    service.set_cast_member(conn, chat_id, body.character_id, active=body.is_active)
    return service.chat_public(conn, chat_id)


@router.get("/{chat_id}/prompt")
async def inspect_prompt(chat_id: int, request: Request) -> dict[str, Any]:
    """The exact prompt the next reply would get, section by section with sources and token counts."""
    backend = request.app.state.llm_runtime.backend
    context_length = None
    if backend is not None:
        try:
            context_length = (await backend.info()).context_length
        except BackendError:
            context_length = None  # inspecting works without a reachable server; the settings' window applies
    return await asyncio.to_thread(request.app.state.prompts.inspect_sync, chat_id, context_length)


@router.get("/{chat_id}/messages")
def get_messages(chat_id: int, request: Request, conn: ConnDep, limit: int = 200,
                 before_seq: int | None = None) -> dict[str, Any]:
    """The newest `limit` live messages (before `before_seq`), oldest first."""
    store.get_chat_row(conn, chat_id)
    rows = store.list_messages(conn, chat_id, limit=max(1, min(limit, 1000)), before_seq=before_seq)
    return {"chat_id": chat_id, "messages": [m.public() for m in rows],
            "generating": chat_id in _manager(request).active}


async def _respond(request: Request, gen: Generation, stream: bool, head: list[dict[str, Any]]) -> Response:
    outcome = await (gen.first_outcome() if stream else _last(gen))
    if outcome["type"] == "error":
        body = {"error": outcome["error"], "detail": outcome["detail"], "message": outcome["message"]}
        body.update({e["type"]: e["message"] for e in head})
        return JSONResponse(body, status_code=outcome["status"])
    if not stream:
        body = {"reply": outcome["message"], "stopped": outcome["stopped"]}
        body.update({e["type"]: e["message"] for e in head})
        return JSONResponse(body, status_code=201)

    async def events() -> AsyncIterator[dict[str, str]]:
        for event in head:
            yield {"event": event["type"], "data": json.dumps(event)}
        async for event in gen.follow():
            yield {"event": event["type"], "data": json.dumps(event)}

    return EventSourceResponse(events(), ping=15)


async def _last(gen: Generation) -> dict[str, Any]:
    await gen.finished.wait()
    return next(e for e in reversed(gen.events) if e["type"] in ("done", "error"))


@router.post("/{chat_id}/messages")
async def send_message(chat_id: int, body: MessageCreate, request: Request, conn: ConnDep) -> Response:
    """Save the user's message, then stream the reply as SSE (events: user, start, token, done|error)."""
    manager = _manager(request)
    manager.ensure_idle(chat_id)
    absence = request.app.state.live_settings.current.context.absence_turns
    user = service.post_user_message(conn, chat_id, body.content, absence_turns=absence)
    gen = await manager.start(chat_id, "reply")
    return await _respond(request, gen, body.stream, [{"type": "user", "message": user.public()}])


async def _generate(request: Request, chat_id: int, kind: Kind, stream: bool) -> Response:
    gen = await _manager(request).start(chat_id, kind)
    return await _respond(request, gen, stream, [])


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


@router.get("/{chat_id}/messages/{message_id}/swipes")
def list_swipes(chat_id: int, message_id: int, conn: ConnDep) -> dict[str, Any]:
    """A reply's swipes."""
    msg = service.message_in_chat(conn, chat_id, message_id)
    return {"message_id": msg.id, "swipe_index": msg.swipe_index, "swipes": store.swipes(conn, message_id)}


@router.post("/{chat_id}/messages/{message_id}/swipe")
def choose_swipe(chat_id: int, message_id: int, body: SwipeSelect, conn: ConnDep) -> dict[str, Any]:
    """Show another swipe of a reply."""
    service.message_in_chat(conn, chat_id, message_id)
    return service.select_swipe(conn, message_id, body.index).public()


@router.post("/export/training")
def export_training_many(body: TrainingExport, conn: ConnDep) -> Response:
    """Training data (JSONL) for several chats, or all chats when chat_ids is empty."""
    for chat_id in body.chat_ids:
        store.get_chat_row(conn, chat_id)
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
    title = store.get_chat_row(conn, chat_id)["title"] or f"chat-{chat_id}"
    options = TrainingOptions(include_characters, include_summaries, speaker_names, chatml_text=chatml_text)
    return _download(export_training(conn, [chat_id], format, options), f"{title}-{format}.jsonl")
