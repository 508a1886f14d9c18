"""Summaries window routes: list, edit, re-run summarization, un-fold."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from neuralrp.api.bodies import OffLoopJSONRoute
from neuralrp.api.deps import ConnDep, get_services
from neuralrp.turns import summarizer as summaries
from neuralrp.turns.summarizer import Summarizer

router = APIRouter(prefix="/api", tags=["summaries"], route_class=OffLoopJSONRoute)


class SummaryEdit(BaseModel):
    """New text for a summary."""

    text: str


def _summarizer(request: Request) -> Summarizer:
    return get_services(request).summarizer


@router.get("/chats/{chat_id}/summaries")
def list_summaries(chat_id: int, request: Request, conn: ConnDep) -> dict[str, Any]:
    """The chat's summaries (live first), whether a fold is running, and the live word count."""
    out = summaries.list_summaries(conn, chat_id)
    out["running"] = _summarizer(request).running(chat_id)
    return out


@router.post("/chats/{chat_id}/summarize", status_code=202)
async def summarize_now(chat_id: int, request: Request) -> JSONResponse:
    """Fold what is eligible now, in the background; 409 while a fold runs."""
    await _summarizer(request).rerun(chat_id)
    return JSONResponse({"started": True}, status_code=202)


@router.put("/summaries/{summary_id}")
def edit_summary(summary_id: int, body: SummaryEdit, conn: ConnDep) -> dict[str, Any]:
    """Replace a summary's text (the previous text is kept in change history)."""
    return summaries.edit_summary(conn, summary_id, body.text)


@router.delete("/summaries/{summary_id}")
def unfold_summary(summary_id: int, conn: ConnDep) -> dict[str, Any]:
    """Un-fold: archive the summary and bring its messages (or child summaries) back live."""
    return summaries.unfold_summary(conn, summary_id)
