"""Message routes: edit, soft delete and undo, change history and restore."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel

from neuralrp.api.bodies import OffLoopJSONRoute
from neuralrp.api.deps import ConnDep, get_services
from neuralrp.chats import editing, store
from neuralrp.db.connection import Connection
from neuralrp.errors import Conflict

router = APIRouter(tags=["messages"], route_class=OffLoopJSONRoute)


class MessageEdit(BaseModel):
    """A message's new text."""

    content: str


def _idle(request: Request, conn: Connection, message_id: int) -> None:
    """409 while the message's chat is writing a reply into this message."""
    msg = store.get_message(conn, message_id)
    gen = get_services(request).generations
    if msg.status == "streaming" or (msg.chat_id in gen.active and store.last_seq(conn, msg.chat_id) == msg.seq):
        raise Conflict(f"message {message_id} is still being written; stop the reply first")


@router.put("/api/messages/{message_id}")
def edit_message(message_id: int, body: MessageEdit, request: Request, conn: ConnDep) -> dict[str, Any]:
    """Replace a message's text (the old text goes to change history)."""
    _idle(request, conn, message_id)
    return editing.edit_message(conn, message_id, body.content).public()


@router.delete("/api/messages/{message_id}")
def delete_message(message_id: int, request: Request, conn: ConnDep) -> dict[str, Any]:
    """Soft-delete (archive) a message; it stays searchable; undo with POST .../restore."""
    _idle(request, conn, message_id)
    return editing.delete_message(conn, message_id).public()


@router.post("/api/messages/{message_id}/restore")
def undelete_message(message_id: int, conn: ConnDep) -> dict[str, Any]:
    """Undo a delete."""
    return editing.undelete_message(conn, message_id).public()


@router.get("/api/messages/{message_id}/history")
def message_history(message_id: int, conn: ConnDep) -> dict[str, Any]:
    """A message's changes, newest first."""
    return {"message_id": message_id, "changes": editing.message_history(conn, message_id)}


@router.get("/api/chats/{chat_id}/history")
def chat_history(chat_id: int, conn: ConnDep, limit: int = 500) -> dict[str, Any]:
    """Changes to the chat's messages, newest first."""
    return {"chat_id": chat_id, "changes": editing.chat_history(conn, chat_id, limit=limit)}


@router.post("/api/history/{change_id}/restore")
def restore_change(change_id: int, request: Request, conn: ConnDep) -> dict[str, Any]:
    """Undo one change: the text before an edit comes back (recorded too), or a delete is undone."""
    change = editing.message_change(conn, change_id)
    if change is not None:
        _idle(request, conn, change.entity_id)
    return editing.restore_change(conn, change_id).public()
