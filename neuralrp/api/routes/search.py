"""Full-text search over all chats' messages (archived and summarized included)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from neuralrp.api.bodies import OffLoopJSONRoute
from neuralrp.api.deps import ConnDep
from neuralrp.chats.search import search_messages
from neuralrp.errors import InvalidInput

router = APIRouter(prefix="/api/search", tags=["search"], route_class=OffLoopJSONRoute)


@router.get("")
def search(q: str, conn: ConnDep, chat_id: int | None = None, limit: int = 50) -> dict[str, Any]:
    """Ranked hits with chat title, seq/turn to jump to, and a snippet with highlight offsets."""
    if "\x00" in q:
        raise InvalidInput("query parameter q: a search term cannot contain a NUL character (\\x00)")
    return {"query": q, "chat_id": chat_id, "results": search_messages(conn, q, chat_id=chat_id, limit=limit)}
