"""SQL for scene summaries (level 0: of messages; 1+: of summaries). Callers own transactions.

`origin` says who wrote a summary's text: "llm" (the model) or "extract" (lines picked from the scene's own
messages when the model's summary was rejected or failed: neuralrp/turns/extract.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from neuralrp.clock import iso
from neuralrp.db.connection import Connection
from neuralrp.db.rows import copy_row
from neuralrp.errors import NotFound


@dataclass
class Summary:
    """One stored summary."""

    id: int
    chat_id: int
    first_message_id: int
    last_message_id: int
    start_turn: int
    end_turn: int
    level: int
    text: str
    archived: bool
    edited: bool
    parent_id: int | None
    created_at: str
    updated_at: str
    origin: str = "llm"


def _summary(row: dict[str, Any]) -> Summary:
    return Summary(
        id=row["id"], chat_id=row["chat_id"], first_message_id=row["first_message_id"],
        last_message_id=row["last_message_id"], start_turn=row["start_turn"], end_turn=row["end_turn"],
        level=row["level"], text=row["text"], archived=bool(row["archived"]), edited=bool(row["edited"]),
        parent_id=row["parent_id"], created_at=row["created_at"], updated_at=row["updated_at"],
        origin=row["origin"])


def get_summary(conn: Connection, summary_id: int) -> Summary:
    """One summary, or NotFound."""
    row = conn.execute("SELECT * FROM summaries WHERE id = ?", (summary_id,)).fetchone()
    if row is None:
        raise NotFound(f"summary {summary_id} does not exist")
    return _summary(row)


def live_summaries(conn: Connection, chat_id: int) -> list[Summary]:
    """The chat's summaries not folded into a newer one, oldest first."""
    rows = conn.execute("SELECT * FROM summaries WHERE chat_id = ? AND archived = 0 ORDER BY start_turn, id",
                        (chat_id,))
    return [_summary(r) for r in rows]


def chat_summaries(conn: Connection, chat_id: int) -> list[Summary]:
    """All the chat's summaries, live ones first, each group oldest first."""
    rows = conn.execute("SELECT * FROM summaries WHERE chat_id = ? ORDER BY archived, start_turn, id", (chat_id,))
    return [_summary(r) for r in rows]


def message_count(conn: Connection, summary_id: int) -> int:
    """Messages folded into the summary or any summary under it."""
    row = conn.execute(
        "WITH RECURSIVE tree(id) AS (SELECT ? UNION ALL SELECT s.id FROM summaries s JOIN tree t ON s.parent_id = t.id)"
        " SELECT count(*) AS n FROM messages WHERE summary_id IN (SELECT id FROM tree)", (summary_id,)).fetchone()
    return int(row["n"])


def insert_summary(conn: Connection, chat_id: int, *, first_message_id: int, last_message_id: int,
                   start_turn: int, end_turn: int, level: int, text: str, now: str, origin: str = "llm") -> int:
    """Store a live summary (origin "llm" or "extract", the table's CHECK refuses others); returns its id."""
    cur = conn.execute(
        "INSERT INTO summaries (chat_id, first_message_id, last_message_id, start_turn, end_turn, level, text,"
        " created_at, updated_at, origin) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (chat_id, first_message_id, last_message_id, start_turn, end_turn, level, text, now, now, origin))
    return int(cur.lastrowid or 0)


def summaries_unchanged(conn: Connection, summaries: list[Summary]) -> bool:
    """Whether these summaries all still exist, live, with the same text."""
    marks = ",".join("?" * len(summaries))
    now_rows = {r["id"]: r for r in conn.execute(
        f"SELECT id, text, archived FROM summaries WHERE id IN ({marks})", [s.id for s in summaries])}
    return all(s.id in now_rows and not now_rows[s.id]["archived"] and now_rows[s.id]["text"] == s.text
               for s in summaries)


def fold_summaries(conn: Connection, parent_id: int, child_ids: list[int], now: str) -> None:
    """Archive summaries as condensed into a parent summary."""
    conn.executemany("UPDATE summaries SET archived = 1, parent_id = ?, updated_at = ? WHERE id = ?",
                     [(parent_id, now, cid) for cid in child_ids])


def set_text(conn: Connection, summary_id: int, text: str) -> None:
    """Replace a summary's text and mark it edited."""
    conn.execute("UPDATE summaries SET text = ?, edited = 1, updated_at = ? WHERE id = ?", (text, iso(), summary_id))


def archive_summary(conn: Connection, summary_id: int, now: str) -> None:
    """Take a summary out of the live ones."""
    conn.execute("UPDATE summaries SET archived = 1, updated_at = ? WHERE id = ?", (now, summary_id))


def release_children(conn: Connection, summary_id: int, now: str) -> int:
    """Make the summaries condensed into this one live again; returns how many."""
    cur = conn.execute("UPDATE summaries SET archived = 0, parent_id = NULL, updated_at = ? WHERE parent_id = ?",
                       (now, summary_id))
    return int(cur.rowcount)


def copy_summaries(conn: Connection, chat_id: int, new_id: int, messages: dict[int, int]) -> dict[int, int]:
    """Copy summaries wholly inside the copied messages (old -> new ids) into another chat; returns old -> new ids.

    A copy whose parent was not copied is live again.
    """
    rows = conn.execute("SELECT * FROM summaries WHERE chat_id = ? ORDER BY level, id", (chat_id,)).fetchall()
    kept = [r for r in rows if r["first_message_id"] in messages and r["last_message_id"] in messages]
    ids: dict[int, int] = {}
    for row in kept:
        ids[row["id"]] = copy_row(conn, "summaries", row, {
            "chat_id": new_id, "first_message_id": messages[row["first_message_id"]],
            "last_message_id": messages[row["last_message_id"]], "parent_id": None})
    for row in kept:
        if row["parent_id"] in ids:
            conn.execute("UPDATE summaries SET parent_id = ? WHERE id = ?", (ids[row["parent_id"]], ids[row["id"]]))
        elif row["parent_id"] is not None:
            conn.execute("UPDATE summaries SET archived = 0 WHERE id = ?", (ids[row["id"]],))
    return ids
