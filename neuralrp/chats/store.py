"""SQL for chats, their cast, messages and swipes. Callers own transactions."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from neuralrp.clock import iso
from neuralrp.errors import NotFound

MESSAGE_COLUMNS = (
    "id, chat_id, seq, turn, role, character_id, speaker_name, content, status, swipe_index, archived,"
    " token_count, token_counter, extra_json, created_at, updated_at"
)


@dataclass
class Message:
    """One stored chat message."""

    id: int
    chat_id: int
    seq: int
    turn: int
    role: str
    character_id: int | None
    speaker_name: str
    content: str
    status: str
    swipe_index: int = 0
    archived: bool = False
    token_count: int | None = None
    token_counter: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    created_at: str = ""
    updated_at: str = ""
    swipe_count: int = 0

    def public(self) -> dict[str, Any]:
        """JSON form for the API."""
        return {
            "id": self.id, "chat_id": self.chat_id, "seq": self.seq, "turn": self.turn, "role": self.role,
            "character_id": self.character_id, "speaker_name": self.speaker_name, "content": self.content,
            "status": self.status, "swipe_index": self.swipe_index, "swipe_count": self.swipe_count,
            "archived": self.archived, "created_at": self.created_at, "updated_at": self.updated_at,
        }


def _message(row: dict[str, Any]) -> Message:
    return Message(
        id=row["id"], chat_id=row["chat_id"], seq=row["seq"], turn=row["turn"], role=row["role"],
        character_id=row["character_id"], speaker_name=row["speaker_name"], content=row["content"],
        status=row["status"], swipe_index=row["swipe_index"], archived=bool(row["archived"]),
        token_count=row["token_count"], token_counter=row["token_counter"],
        extra=json.loads(row["extra_json"] or "{}"), created_at=row["created_at"], updated_at=row["updated_at"],
        swipe_count=row.get("swipe_count", 0) or 0,
    )


def insert_chat(conn: Any, *, title: str | None, mode: str = "narrator", persona: dict[str, Any] | None = None) -> int:
    """A new empty chat; returns its id."""
    now = iso()
    cur = conn.execute(
        "INSERT INTO chats (uid, title, mode, persona_json, created_at, updated_at, last_activity_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (uuid.uuid4().hex, title, mode, json.dumps(persona or {}), now, now, now),
    )
    return int(cur.lastrowid)


def get_chat_row(conn: Any, chat_id: int) -> dict[str, Any]:
    """The chat's row, or NotFound."""
    row = conn.execute("SELECT * FROM chats WHERE id = ?", (chat_id,)).fetchone()
    if row is None:
        raise NotFound(f"chat {chat_id} does not exist")
    return dict(row)


def list_chat_rows(conn: Any) -> list[dict[str, Any]]:
    """Chats by last activity, newest first, with message counts and cast names."""
    rows = conn.execute(
        "SELECT c.*, (SELECT count(*) FROM messages m WHERE m.chat_id = c.id AND m.archived = 0) AS message_count,"
        " (SELECT group_concat(ch.name, ', ') FROM chat_cast cc JOIN characters ch ON ch.id = cc.character_id"
        "  WHERE cc.chat_id = c.id) AS cast_names"
        " FROM chats c ORDER BY c.last_activity_at DESC, c.id DESC"
    )
    return [dict(r) for r in rows]


def add_cast_member(conn: Any, chat_id: int, character_id: int, *, active: bool = True) -> None:
    """Put a character in the chat's cast (idempotent)."""
    position = conn.execute("SELECT count(*) AS n FROM chat_cast WHERE chat_id = ?", (chat_id,)).fetchone()["n"]
    conn.execute(
        "INSERT INTO chat_cast (chat_id, character_id, is_active, position, joined_at) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT (chat_id, character_id) DO UPDATE SET is_active = excluded.is_active",
        (chat_id, character_id, int(active), position, iso()),
    )


def cast_rows(conn: Any, chat_id: int) -> list[dict[str, Any]]:
    """The chat's cast in position order."""
    rows = conn.execute(
        "SELECT cc.*, ch.name, ch.scope_chat_id FROM chat_cast cc JOIN characters ch ON ch.id = cc.character_id"
        " WHERE cc.chat_id = ? ORDER BY cc.position, cc.id",
        (chat_id,),
    )
    return [dict(r) for r in rows]


def bump_turn(conn: Any, chat_id: int) -> int:
    """Advance the chat's absolute turn counter; returns the new turn."""
    row = conn.execute("UPDATE chats SET turn = turn + 1 WHERE id = ? RETURNING turn", (chat_id,)).fetchone()
    if row is None:
        raise NotFound(f"chat {chat_id} does not exist")
    return int(row["turn"])


def insert_message(
    conn: Any, chat_id: int, *, role: str, content: str, turn: int, character_id: int | None = None,
    speaker_name: str = "", status: str = "complete", token_count: int | None = None,
    token_counter: str | None = None,
) -> int:
    """Append a message with the chat's next sequence number; returns its id."""
    now = iso()
    seq = conn.execute(
        "UPDATE chats SET next_seq = next_seq + 1, last_activity_at = ?, updated_at = ? WHERE id = ?"
        " RETURNING next_seq - 1 AS seq",
        (now, now, chat_id),
    ).fetchone()
    if seq is None:
        raise NotFound(f"chat {chat_id} does not exist")
    cur = conn.execute(
        "INSERT INTO messages (chat_id, seq, turn, role, character_id, speaker_name, content, status,"
        " token_count, token_counter, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (chat_id, seq["seq"], turn, role, character_id, speaker_name, content, status, token_count,
         token_counter, now, now),
    )
    return int(cur.lastrowid)


def get_message(conn: Any, message_id: int) -> Message:
    """One message by id."""
    row = conn.execute(
        f"SELECT {MESSAGE_COLUMNS}, (SELECT count(*) FROM message_swipes s WHERE s.message_id = messages.id)"
        " AS swipe_count FROM messages WHERE id = ?",
        (message_id,),
    ).fetchone()
    if row is None:
        raise NotFound(f"message {message_id} does not exist")
    return _message(row)


def list_messages(conn: Any, chat_id: int, *, include_archived: bool = False, limit: int | None = None,
                  before_seq: int | None = None) -> list[Message]:
    """Messages in order; the newest `limit` ones (before `before_seq`) when a limit is given."""
    where = ["chat_id = ?"]
    args: list[Any] = [chat_id]
    if not include_archived:
        where.append("archived = 0")
    if before_seq is not None:
        where.append("seq < ?")
        args.append(before_seq)
    sql = (f"SELECT {MESSAGE_COLUMNS}, (SELECT count(*) FROM message_swipes s WHERE s.message_id = messages.id)"
           f" AS swipe_count FROM messages WHERE {' AND '.join(where)} ORDER BY seq DESC")
    if limit is not None:
        sql += " LIMIT ?"
        args.append(limit)
    rows = [_message(r) for r in conn.execute(sql, args)]
    rows.reverse()
    return rows


def set_message_text(conn: Any, message_id: int, content: str, *, status: str | None = None) -> None:
    """Overwrite a message's text (and status)."""
    if status is None:
        conn.execute("UPDATE messages SET content = ?, updated_at = ? WHERE id = ?", (content, iso(), message_id))
    else:
        conn.execute("UPDATE messages SET content = ?, status = ?, updated_at = ? WHERE id = ?",
                     (content, status, iso(), message_id))


def set_token_count(conn: Any, message_id: int, count: int, counter: str) -> None:
    """Cache a message's token count and which tokenizer made it."""
    conn.execute("UPDATE messages SET token_count = ?, token_counter = ? WHERE id = ?", (count, counter, message_id))


def archive_message(conn: Any, message_id: int, reason: str) -> None:
    """Soft-delete a message (it stays searchable and restorable)."""
    conn.execute("UPDATE messages SET archived = 1, archived_reason = ?, updated_at = ? WHERE id = ?",
                 (reason, iso(), message_id))


def swipes(conn: Any, message_id: int) -> list[dict[str, Any]]:
    """A message's alternative replies in index order."""
    rows = conn.execute("SELECT idx, content, status, created_at FROM message_swipes WHERE message_id = ?"
                        " ORDER BY idx", (message_id,))
    return [dict(r) for r in rows]


def save_swipe(conn: Any, message_id: int, idx: int, content: str, status: str = "complete") -> None:
    """Insert or replace swipe `idx` of a message."""
    conn.execute(
        "INSERT INTO message_swipes (message_id, idx, content, status, created_at) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT (message_id, idx) DO UPDATE SET content = excluded.content, status = excluded.status",
        (message_id, idx, content, status, iso()),
    )


def set_swipe_index(conn: Any, message_id: int, idx: int) -> None:
    """Record which swipe is shown."""
    conn.execute("UPDATE messages SET swipe_index = ?, updated_at = ? WHERE id = ?", (idx, iso(), message_id))


def recover_streaming(conn: Any, *, keep: bool) -> int:
    """After a crash: replies left 'streaming' become 'incomplete' (or are archived); returns how many."""
    if keep:
        cur = conn.execute("UPDATE messages SET status = 'incomplete' WHERE status = 'streaming'")
    else:
        cur = conn.execute("UPDATE messages SET status = 'incomplete', archived = 1, archived_reason = 'incomplete'"
                           " WHERE status = 'streaming'")
    return int(cur.rowcount)
