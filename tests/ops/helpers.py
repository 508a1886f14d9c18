"""Seed data and fingerprints shared by the ops tests."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from neuralrp.db.connection import connect

STAMP = "2025-01-01T00:00:00.000+00:00"
TABLES = ("characters", "chats", "messages", "chat_cast", "change_history")


def seed(conn: Any, *, chats: int = 3, messages: int = 4, title: str | None = "Named", stamp: str = STAMP,
         archived: int = 0) -> list[int]:
    """Insert a character plus chats with messages; returns the chat ids."""
    conn.execute("INSERT OR IGNORE INTO characters (uid, name, card_json, created_at, updated_at) "
                 "VALUES ('c-seed', 'Ayla', '{\"name\": \"Ayla\"}', ?, ?)", (stamp, stamp))
    char = conn.execute("SELECT id FROM characters WHERE uid = 'c-seed'").fetchone()["id"]
    ids = []
    for _ in range(chats):
        n = conn.execute("SELECT count(*) AS n FROM chats").fetchone()["n"]
        cur = conn.execute("INSERT INTO chats (uid, title, created_at, updated_at, last_activity_at) "
                           "VALUES (?, ?, ?, ?, ?)", (f"chat-{n}", title, stamp, stamp, stamp))
        chat_id = cur.lastrowid
        ids.append(chat_id)
        conn.execute("INSERT INTO chat_cast (chat_id, character_id, joined_at) VALUES (?, ?, ?)",
                     (chat_id, char, stamp))
        for seq in range(1, messages + 1):
            role = "user" if seq % 2 else "assistant"
            conn.execute("INSERT INTO messages (chat_id, seq, turn, role, content, archived, created_at, updated_at)"
                         " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                         (chat_id, seq, seq, role, f"message {seq} of chat {chat_id} ✓", archived, stamp, stamp))
    return ids


def columns_of(path: Path, tables: tuple[str, ...] = TABLES) -> dict[str, list[str]]:
    """Column names per table."""
    conn = connect(path)
    try:
        return {t: [r["name"] for r in conn.execute(f"PRAGMA table_info({t})")] for t in tables}
    finally:
        conn.close()


def fingerprint(path: Path, tables: tuple[str, ...] = TABLES,
                columns: dict[str, list[str]] | None = None) -> dict[str, tuple[int, str]]:
    """Per table: row count and a SHA-256 over every row (only `columns` when given) in rowid order."""
    conn = connect(path)
    try:
        out = {}
        for table in tables:
            cols = ", ".join(columns[table]) if columns else "*"
            rows = conn.execute(f"SELECT {cols} FROM {table} ORDER BY rowid").fetchall()
            digest = hashlib.sha256(repr([sorted(r.items()) for r in rows]).encode()).hexdigest()
            out[table] = (len(rows), digest)
        return out
    finally:
        conn.close()
