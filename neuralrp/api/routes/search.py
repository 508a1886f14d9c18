"""Full-text search over all chats' messages (archived and summarized included)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from neuralrp.api.deps import ConnDep
from neuralrp.chats.search import search_messages

router = APIRouter(prefix="/api/search", tags=["search"])


@router.get("")
def search(q: str, conn: ConnDep, chat_id: int | None = None, limit: int = 50) -> dict[str, Any]:
    """Ranked hits with chat title, seq/turn to jump to, and a snippet with highlight offsets."""
    return {"query": q, "chat_id": chat_id, "results": search_messages(conn, q, chat_id=chat_id, limit=limit)}
