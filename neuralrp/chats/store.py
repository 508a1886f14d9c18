"""SQL for chats, their cast and worlds, messages and swipes. Callers own transactions."""

from __future__ import annotations

import json
import uuid
from typing import Any

from neuralrp.chats.records import (
    CastMember,
    Chat,
    ChatListing,
    Message,
    Swipe,
    avatar_url,
    cast_member_from_row,
    chat_from_row,
    message_from_row,
)
from neuralrp.clock import iso
from neuralrp.db.connection import Connection
from neuralrp.errors import NotFound

MESSAGE_COLUMNS = (
    "id, chat_id, seq, turn, role, character_id, speaker_name, content, status, swipe_index, archived,"
    " archived_reason, token_count, token_counter, extra_json, created_at, updated_at"
)
UNNAMED = "(title IS NULL OR trim(title) = '')"


# ---- chats

def insert_chat(conn: Connection, *, title: str | None, mode: str = "narrator",
                persona: dict[str, Any] | None = None) -> int:
    """A new empty chat; returns its id."""
    now = iso()
    cur = conn.execute(
        "INSERT INTO chats (uid, title, mode, persona_json, created_at, updated_at, last_activity_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (uuid.uuid4().hex, title, mode, json.dumps(persona or {}), now, now, now),
    )
    return int(cur.lastrowid or 0)


def get_chat(conn: Connection, chat_id: int) -> Chat:
    """One chat, or NotFound."""
    row = conn.execute("SELECT * FROM chats WHERE id = ?", (chat_id,)).fetchone()
    if row is None:
        raise NotFound(f"chat {chat_id} does not exist")
    return chat_from_row(row)


CHAT_SORTS = {
    "recent": "c.last_activity_at DESC, c.id DESC",
    "created": "c.created_at DESC, c.id DESC",
    "name": "coalesce(nullif(trim(c.title), ''), c.cast_names, '') COLLATE NOCASE, c.id",
}
_LISTING = (
    "SELECT c.*, fc.avatar_path AS first_avatar_path, fc.updated_at AS first_updated_at FROM (SELECT c.*,"
    " (SELECT count(*) FROM messages m WHERE m.chat_id = c.id AND m.archived = 0) AS message_count,"
    " (SELECT group_concat(name, ', ') FROM (SELECT ch.name FROM chat_cast cc"
    "   JOIN characters ch ON ch.id = cc.character_id WHERE cc.chat_id = c.id ORDER BY cc.position, cc.id))"
    "   AS cast_names,"
    " (SELECT cc.character_id FROM chat_cast cc WHERE cc.chat_id = c.id ORDER BY cc.position, cc.id LIMIT 1)"
    "   AS first_character_id"
    " FROM chats c) c LEFT JOIN characters fc ON fc.id = c.first_character_id"
)


def _like_any(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def list_chats(conn: Connection, *, character_id: int | None = None, q: str = "",
               sort: str = "recent", deleted: bool = False) -> list[ChatListing]:
    """Chats with message counts and cast names: all, one character's, or those whose name holds `q`.

    sort: recent (last activity, newest first), created (newest first) or name (title, else cast names).
    deleted: list the deleted chats (restorable until retention purges them) instead of the live ones.
    """
    where: list[str] = ["c.deleted_at IS NOT NULL" if deleted else "c.deleted_at IS NULL"]
    args: list[Any] = []
    if character_id is not None:
        where.append("EXISTS (SELECT 1 FROM chat_cast x WHERE x.chat_id = c.id AND x.character_id = ?)")
        args.append(character_id)
    if q.strip():
        where.append("(coalesce(c.title, '') LIKE ? ESCAPE '\\' OR coalesce(c.cast_names, '') LIKE ? ESCAPE '\\')")
        args += [_like_any(q.strip())] * 2
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    rows = conn.execute(f"{_LISTING}{clause} ORDER BY {CHAT_SORTS[sort]}", args).fetchall()
    return [ChatListing(r["id"], r["title"], r["mode"], r["turn"], r["message_count"], r["cast_names"] or "",
                        r["last_activity_at"], r["created_at"], _first_avatar(r), r["deleted_at"]) for r in rows]


def _first_avatar(row: Any) -> dict[str, Any] | None:
    """{character_id, has_avatar, avatar_url} of a listed chat's first cast member, for the list's picture."""
    cid = row["first_character_id"]
    if cid is None:
        return None
    return {"character_id": cid, "has_avatar": bool(row["first_avatar_path"]),
            "avatar_url": avatar_url(cid, row["first_updated_at"] or "")}


def last_chat_by_character(conn: Connection) -> dict[int, str]:
    """{character id: last activity of the newest chat they are in}, for sorting the library by "recent"."""
    rows = conn.execute("SELECT cc.character_id, max(c.last_activity_at) AS at FROM chat_cast cc"
                        " JOIN chats c ON c.id = cc.chat_id GROUP BY cc.character_id")
    return {r["character_id"]: r["at"] for r in rows}


def chat_ids(conn: Connection) -> list[int]:
    """Every live (not deleted) chat's id, oldest first."""
    return [r["id"] for r in conn.execute("SELECT id FROM chats WHERE deleted_at IS NULL ORDER BY id")]


def set_title(conn: Connection, chat_id: int, title: str | None) -> None:
    """Rename a chat (None: unnamed)."""
    conn.execute("UPDATE chats SET title = ? WHERE id = ?", (title, chat_id))


def set_focus(conn: Connection, chat_id: int, character_id: int | None) -> None:
    """Set the character Focus mode gives the reply to."""
    conn.execute("UPDATE chats SET focus_character_id = ? WHERE id = ?", (character_id, chat_id))


def set_mode(conn: Connection, chat_id: int, mode: str) -> None:
    """Switch between narrator, focus and auto."""
    conn.execute("UPDATE chats SET mode = ? WHERE id = ?", (mode, chat_id))


def set_imported_state(conn: Connection, chat_id: int, turn: int, settings: dict[str, Any]) -> None:
    """An imported chat's turn counter and settings (e.g. the original file's header)."""
    conn.execute("UPDATE chats SET turn = ?, settings_json = ? WHERE id = ?",
                 (turn, json.dumps(settings, ensure_ascii=False), chat_id))


def set_setting_key(conn: Connection, chat_id: int, key: str, value: Any) -> None:
    """Set one key of a chat's settings (e.g. the last prompt's layout); nothing happens when the chat is gone."""
    conn.execute("UPDATE chats SET settings_json = json_set(settings_json, ?, json(?)) WHERE id = ?",
                 (f'$."{key}"', json.dumps(value, ensure_ascii=False), chat_id))


def bump_turn(conn: Connection, chat_id: int) -> int:
    """Advance the chat's absolute turn counter; returns the new turn."""
    row = conn.execute("UPDATE chats SET turn = turn + 1 WHERE id = ? RETURNING turn", (chat_id,)).fetchone()
    if row is None:
        raise NotFound(f"chat {chat_id} does not exist")
    return int(row["turn"])


def delete_idle_unnamed_chats(conn: Connection, *, autosave: bool, cutoff: str) -> int:
    """Delete unnamed chats (autosaves or not) inactive since cutoff, messages included; returns how many."""
    cur = conn.execute(f"DELETE FROM chats WHERE {UNNAMED} AND autosave = ? AND last_activity_at < ?",
                       (int(autosave), cutoff))
    return int(cur.rowcount)


def set_deleted(conn: Connection, chat_id: int, at: str | None) -> None:
    """Delete a chat (softly: `at` is when) or, with None, bring it back."""
    if conn.execute("UPDATE chats SET deleted_at = ? WHERE id = ?", (at, chat_id)).rowcount == 0:
        raise NotFound(f"chat {chat_id} does not exist")


def chats_of_character(conn: Connection, character_id: int) -> list[int]:
    """Live chats whose cast holds the character (active or not)."""
    rows = conn.execute("SELECT c.id FROM chats c JOIN chat_cast cc ON cc.chat_id = c.id WHERE cc.character_id = ?"
                        " AND c.deleted_at IS NULL ORDER BY c.id", (character_id,))
    return [r["id"] for r in rows]


def purge_deleted_chats(conn: Connection, cutoff: str) -> int:
    """Remove chats deleted before cutoff for good (messages, cast and NPCs go with them); returns how many."""
    return int(conn.execute("DELETE FROM chats WHERE deleted_at IS NOT NULL AND deleted_at < ?", (cutoff,)).rowcount)


def set_persona(conn: Connection, chat_id: int, persona: dict[str, Any]) -> None:
    """The persona the user plays in this chat ({persona_id, name, description, ...})."""
    conn.execute("UPDATE chats SET persona_json = ? WHERE id = ?", (json.dumps(persona, ensure_ascii=False), chat_id))


def refresh_persona(conn: Connection, persona_id: int, persona: dict[str, Any]) -> int:
    """Give every chat playing this persona its edited name and description; returns how many chats."""
    cur = conn.execute("UPDATE chats SET persona_json = ? WHERE json_extract(persona_json, '$.persona_id') = ?",
                       (json.dumps(persona, ensure_ascii=False), persona_id))
    return int(cur.rowcount)


def delete_archived_unnamed_messages(conn: Connection, cutoff: str) -> int:
    """Delete archived messages of unnamed chats last changed before cutoff; returns how many."""
    cur = conn.execute(f"DELETE FROM messages WHERE archived = 1 AND updated_at < ?"
                       f" AND chat_id IN (SELECT id FROM chats WHERE {UNNAMED})", (cutoff,))
    return int(cur.rowcount)


# ---- cast and worlds

def add_cast_member(conn: Connection, chat_id: int, character_id: int, *, active: bool = True) -> None:
    """Put a character in the chat's cast (idempotent)."""
    position = conn.execute("SELECT count(*) AS n FROM chat_cast WHERE chat_id = ?", (chat_id,)).fetchone()["n"]
    conn.execute(
        "INSERT INTO chat_cast (chat_id, character_id, is_active, position, joined_at) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT (chat_id, character_id) DO UPDATE SET is_active = excluded.is_active",
        (chat_id, character_id, int(active), position, iso()),
    )


_CAST = ("SELECT cc.*, ch.name, ch.scope_chat_id, ch.avatar_path, ch.updated_at AS char_updated_at"
         " FROM chat_cast cc JOIN characters ch ON ch.id = cc.character_id WHERE cc.chat_id = ?")


def cast_members(conn: Connection, chat_id: int) -> list[CastMember]:
    """The chat's cast in position order."""
    return [cast_member_from_row(r) for r in conn.execute(_CAST + " ORDER BY cc.position, cc.id", (chat_id,))]


def cast_member(conn: Connection, chat_id: int, character_id: int) -> CastMember | None:
    """One cast member, or None when the character is not in the chat's cast."""
    row = conn.execute(_CAST + " AND cc.character_id = ?", (chat_id, character_id)).fetchone()
    return None if row is None else cast_member_from_row(row)


def set_left_turn(conn: Connection, chat_id: int, character_id: int, turn: int | None) -> None:
    """Record the turn a cast member left the scene (None: on stage)."""
    conn.execute("UPDATE chat_cast SET left_turn = ? WHERE chat_id = ? AND character_id = ?",
                 (turn, chat_id, character_id))


def clear_reset_turn(conn: Connection, chat_id: int, character_id: int) -> None:
    """Make the cast member's next appearance a reset point (the full card again)."""
    conn.execute("UPDATE chat_cast SET reset_turn = NULL WHERE chat_id = ? AND character_id = ?",
                 (chat_id, character_id))


def mark_cast_present(conn: Connection, chat_id: int, character_id: int, turn: int, reset_turn: int | None) -> None:
    """A cast member is present on `turn` (never moves last_present_turn back), with this reset turn."""
    conn.execute("UPDATE chat_cast SET last_present_turn = max(coalesce(last_present_turn, ?), ?), reset_turn = ?"
                 " WHERE chat_id = ? AND character_id = ?", (turn, turn, reset_turn, chat_id, character_id))


def save_cast_decision(conn: Connection, chat_id: int, character_id: int, *, first_turn: int, reset_turn: int,
                       full_card_turn: int | None) -> None:
    """Keep a prompt build's first appearance, reset turn and full-card turn (earlier values win)."""
    conn.execute("UPDATE chat_cast SET first_turn = coalesce(first_turn, ?), reset_turn = coalesce(reset_turn, ?),"
                 " last_full_card_turn = coalesce(?, last_full_card_turn),"
                 " last_present_turn = coalesce(last_present_turn, ?) WHERE chat_id = ? AND character_id = ?",
                 (first_turn, reset_turn, full_card_turn, first_turn, chat_id, character_id))


# ---- messages

def insert_message(
    conn: Connection, chat_id: int, *, role: str, content: str, turn: int, character_id: int | None = None,
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
    return int(cur.lastrowid or 0)


_SWIPE_COUNT = "(SELECT count(*) FROM message_swipes s WHERE s.message_id = messages.id) AS swipe_count"


def get_message(conn: Connection, message_id: int) -> Message:
    """One message by id."""
    row = conn.execute(f"SELECT {MESSAGE_COLUMNS}, {_SWIPE_COUNT} FROM messages WHERE id = ?",
                       (message_id,)).fetchone()
    if row is None:
        raise NotFound(f"message {message_id} does not exist")
    return message_from_row(row)


def list_messages(conn: Connection, chat_id: int, *, include_archived: bool = False, limit: int | None = None,
                  before_seq: int | None = None) -> list[Message]:
    """Messages in order; the newest `limit` ones (before `before_seq`) when a limit is given."""
    where = ["chat_id = ?"]
    args: list[Any] = [chat_id]
    if not include_archived:
        where.append("archived = 0")
    if before_seq is not None:
        where.append("seq < ?")
        args.append(before_seq)
    sql = f"SELECT {MESSAGE_COLUMNS}, {_SWIPE_COUNT} FROM messages WHERE {' AND '.join(where)} ORDER BY seq DESC"
    if limit is not None:
        sql += " LIMIT ?"
        args.append(limit)
    rows = [message_from_row(r) for r in conn.execute(sql, args)]
    rows.reverse()
    return rows


def last_seq(conn: Connection, chat_id: int) -> int | None:
    """The chat's highest message sequence number (archived messages too), None when it has none."""
    row = conn.execute("SELECT max(seq) AS s FROM messages WHERE chat_id = ?", (chat_id,)).fetchone()
    return None if row is None or row["s"] is None else int(row["s"])


def recent_message_ids(conn: Connection, chat_id: int, character_id: int, limit: int) -> list[int]:
    """Ids of the character's newest live, finished messages in the chat, oldest first."""
    rows = conn.execute("SELECT id FROM messages WHERE chat_id = ? AND character_id = ? AND archived = 0"
                        " AND status != 'streaming' ORDER BY seq DESC LIMIT ?", (chat_id, character_id, limit))
    return [r["id"] for r in rows][::-1]


def live_token_estimate(conn: Connection, chat_id: int) -> int:
    """Tokens of the chat's live messages (cached counts; about 4 characters per token where none is cached)."""
    row = conn.execute("SELECT coalesce(sum(coalesce(token_count, length(content) / 4)), 0) AS n FROM messages"
                       " WHERE chat_id = ? AND archived = 0", (chat_id,)).fetchone()
    return int(row["n"])


def set_message_text(conn: Connection, message_id: int, content: str, *, status: str | None = None) -> None:
    """Overwrite a message's text (and status)."""
    if status is None:
        conn.execute("UPDATE messages SET content = ?, updated_at = ? WHERE id = ?", (content, iso(), message_id))
    else:
        conn.execute("UPDATE messages SET content = ?, status = ?, updated_at = ? WHERE id = ?",
                     (content, status, iso(), message_id))


def set_token_count(conn: Connection, message_id: int, count: int, counter: str) -> None:
    """Cache a message's token count and which tokenizer made it."""
    conn.execute("UPDATE messages SET token_count = ?, token_counter = ? WHERE id = ?", (count, counter, message_id))


# One imported message: (turn, role, character_id, speaker_name, content, swipe_index, extra_json, created_at).
ImportedRow = tuple[int, str, int | None, str, str, int, str, str]


def insert_imported_messages(conn: Connection, chat_id: int, rows: list[ImportedRow]) -> list[int]:
    """Append many messages at once, not yet search-indexed nor token-counted (chats/backfill.py does both later);
    returns their ids in order."""
    now = iso()
    first = conn.execute("UPDATE chats SET next_seq = next_seq + ?, last_activity_at = ?, updated_at = ?"
                         " WHERE id = ? RETURNING next_seq - ? AS seq", (len(rows), now, now, chat_id, len(rows)))
    row = first.fetchone()
    if row is None:
        raise NotFound(f"chat {chat_id} does not exist")
    start = int(row["seq"])
    conn.executemany(
        "INSERT INTO messages (chat_id, seq, turn, role, character_id, speaker_name, content, swipe_index,"
        " extra_json, created_at, updated_at, search_indexed) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)",
        [(chat_id, start + i, *values, now) for i, values in enumerate(rows)])
    found = conn.execute("SELECT id FROM messages WHERE chat_id = ? AND seq >= ? ORDER BY seq", (chat_id, start))
    return [r["id"] for r in found]


def insert_swipes(conn: Connection, rows: list[tuple[int, int, str, str]]) -> None:
    """Store many swipes at once: (message_id, idx, content, created_at)."""
    conn.executemany("INSERT INTO message_swipes (message_id, idx, content, status, created_at)"
                     " VALUES (?, ?, ?, 'complete', ?)", rows)


def set_token_counts(conn: Connection, counts: list[tuple[int, int]], counter: str) -> None:
    """Cache many (message id, token count) pairs where no count was cached meanwhile."""
    conn.executemany("UPDATE messages SET token_count = ?, token_counter = ? WHERE id = ? AND token_count IS NULL",
                     [(count, counter, mid) for mid, count in counts])


def set_extra_key(conn: Connection, message_id: int, key: str, value: Any) -> None:
    """Set one key of a message's extra data (nothing happens when the message is gone)."""
    row = conn.execute("SELECT extra_json FROM messages WHERE id = ?", (message_id,)).fetchone()
    extra = json.loads(row["extra_json"] or "{}") if row else {}
    extra[key] = value
    conn.execute("UPDATE messages SET extra_json = ? WHERE id = ?", (json.dumps(extra, ensure_ascii=False),
                                                                     message_id))


def archive_message(conn: Connection, message_id: int, reason: str) -> None:
    """Soft-delete a message (it stays searchable and restorable)."""
    conn.execute("UPDATE messages SET archived = 1, archived_reason = ?, updated_at = ? WHERE id = ?",
                 (reason, iso(), message_id))


def unarchive_message(conn: Connection, message_id: int) -> None:
    """Make an archived message live again."""
    conn.execute("UPDATE messages SET archived = 0, archived_reason = NULL, updated_at = ? WHERE id = ?",
                 (iso(), message_id))


def delete_message(conn: Connection, message_id: int) -> None:
    """Remove a message row for good (only for a reply that never got any text)."""
    conn.execute("DELETE FROM messages WHERE id = ?", (message_id,))


def recover_streaming(conn: Connection, *, keep: bool) -> int:
    """After a crash: replies left 'streaming' become 'incomplete' (or are archived); returns how many."""
    if keep:
        cur = conn.execute("UPDATE messages SET status = 'incomplete' WHERE status = 'streaming'")
    else:
        cur = conn.execute("UPDATE messages SET status = 'incomplete', archived = 1, archived_reason = 'incomplete'"
                           " WHERE status = 'streaming'")
    return int(cur.rowcount)


# ---- swipes

def swipes(conn: Connection, message_id: int) -> list[Swipe]:
    """A message's alternative replies in index order."""
    rows = conn.execute("SELECT idx, content, status, created_at FROM message_swipes WHERE message_id = ?"
                        " ORDER BY idx", (message_id,))
    return [Swipe(r["idx"], r["content"], r["status"], r["created_at"]) for r in rows]


def save_swipe(conn: Connection, message_id: int, idx: int, content: str, status: str = "complete") -> None:
    """Insert or replace swipe `idx` of a message."""
    conn.execute(
        "INSERT INTO message_swipes (message_id, idx, content, status, created_at) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT (message_id, idx) DO UPDATE SET content = excluded.content, status = excluded.status",
        (message_id, idx, content, status, iso()),
    )


def set_swipe_text(conn: Connection, message_id: int, idx: int, content: str) -> None:
    """Overwrite the text of swipe `idx` (when it exists)."""
    conn.execute("UPDATE message_swipes SET content = ? WHERE message_id = ? AND idx = ?", (content, message_id, idx))


def set_swipe_index(conn: Connection, message_id: int, idx: int) -> None:
    """Record which swipe is shown."""
    conn.execute("UPDATE messages SET swipe_index = ?, updated_at = ? WHERE id = ?", (idx, iso(), message_id))


# ---- folding into summaries

def messages_unchanged(conn: Connection, messages: list[Message]) -> bool:
    """Whether these messages all still exist, live, with the same text."""
    marks = ",".join("?" * len(messages))
    rows = {r["id"]: r for r in conn.execute(
        f"SELECT id, content, archived FROM messages WHERE id IN ({marks})", [m.id for m in messages])}
    return all(m.id in rows and not rows[m.id]["archived"] and rows[m.id]["content"] == m.content for m in messages)


def has_live_before(conn: Connection, chat_id: int, roles: tuple[str, ...], message_ids: list[int]) -> bool:
    """Whether live, finished messages of these roles exist before the oldest of message_ids (any, when empty)."""
    marks = ",".join("?" * len(roles))
    base = (f"SELECT 1 FROM messages WHERE chat_id = ? AND archived = 0 AND status != 'streaming'"
            f" AND role IN ({marks})")
    if not message_ids:
        return conn.execute(base + " LIMIT 1", (chat_id, *roles)).fetchone() is not None
    ids = ",".join("?" * len(message_ids))
    row = conn.execute(base + f" AND seq < (SELECT min(seq) FROM messages WHERE id IN ({ids})) LIMIT 1",
                       (chat_id, *roles, *message_ids)).fetchone()
    return row is not None


def fold_messages(conn: Connection, summary_id: int, message_ids: list[int], now: str) -> None:
    """Archive messages as summarized into a summary."""
    conn.executemany(
        "UPDATE messages SET archived = 1, archived_reason = 'summarized', summary_id = ?, updated_at = ?"
        " WHERE id = ?", [(summary_id, now, mid) for mid in message_ids])


def unfold_messages(conn: Connection, summary_id: int, now: str) -> int:
    """Bring back the messages summarized into a summary; returns how many."""
    cur = conn.execute("UPDATE messages SET archived = 0, archived_reason = NULL, updated_at = ?"
                       " WHERE summary_id = ? AND archived = 1 AND archived_reason = 'summarized'", (now, summary_id))
    return int(cur.rowcount)
