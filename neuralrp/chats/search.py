"""Full-text search over every chat message, archived and summarized ones included.

Searches made of words in Latin (or other spaced) scripts use the word index
(``messages_words``, migration 0004): each term matches words that start with it
("sword" finds "swords"), case- and accent-insensitively. Searches with CJK text use:

The index (``messages_fts``, migration 0003) uses SQLite FTS5's trigram tokenizer: a term of
3+ characters matches any substring, case- and accent-insensitively, so CJK text without
spaces is searchable. Shorter terms (``hi``, ``森林``) are matched with LIKE instead.

The user's text is never passed to FTS5 as syntax: it is split into words (or "quoted
phrases"), each sent as a quoted FTS5 string, all of which must match. Stray quotes and
operators (AND, OR, NEAR, *, :, ^) are plain text.

Each hit carries a plain-text ``snippet`` and ``highlights``: ``[start, end)`` character
offsets of the matches inside ``snippet``. The UI should render the snippet as text and wrap
those ranges itself (never as HTML). ``snippet_marked`` is the same text with the matches
wrapped in « and » for plain displays (ambiguous if the message itself contains « »).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from neuralrp.chats import store
from neuralrp.db.connection import Connection
from neuralrp.errors import InvalidInput

MAX_QUERY_CHARS = 500
MAX_LIMIT = 200
SNIPPET_CHARS = 160
SNIPPET_LEAD = 60
_TOKENS = re.compile(r'"([^"]*)"|(\S+)')
_FTS_MIN = 3  # the trigram tokenizer cannot match fewer characters


@dataclass(frozen=True)
class ParsedQuery:
    """The user's search split into FTS5 phrases and short LIKE terms."""

    terms: list[str]
    fts: str
    short: list[str]


def parse_query(text: str) -> ParsedQuery:
    """Split a search into terms; "quoted phrases" stay whole, stray quotes are dropped."""
    if len(text) > MAX_QUERY_CHARS:
        raise InvalidInput(f"the search is {len(text)} characters long; the limit is {MAX_QUERY_CHARS}")
    terms: list[str] = []
    for match in _TOKENS.finditer(text):
        term = (match.group(1) if match.group(1) is not None else match.group(2)).replace('"', "").strip()
        if term and term.casefold() not in {t.casefold() for t in terms}:
            terms.append(term)
    if not terms:
        raise InvalidInput("type something to search for")
    long_terms = [t for t in terms if len(t) >= _FTS_MIN]
    fts = " AND ".join('"' + t.replace('"', '""') + '"' for t in long_terms)
    return ParsedQuery(terms, fts, [t for t in terms if len(t) < _FTS_MIN])


def _like(term: str) -> str:
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


_SELECT = ("SELECT m.id, m.chat_id, m.seq, m.turn, m.role, m.speaker_name, m.content, m.archived,"
           " m.archived_reason, m.created_at, c.title AS chat_title,"
           " (SELECT group_concat(name, ', ') FROM (SELECT ch.name FROM chat_cast cc JOIN characters ch"
           "  ON ch.id = cc.character_id WHERE cc.chat_id = c.id ORDER BY cc.position, cc.id)) AS chat_cast_names")


_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af\uf900-\ufaff]")


def _word_rows(conn: Connection, query: ParsedQuery, chat_id: int | None, limit: int) -> list[dict[str, Any]]:
    """Whole-word search (each term matches words starting with it) on the unicode61 index."""
    match = " AND ".join('"' + t.replace('"', '""') + '"*' for t in query.terms)
    where, args = ("", []) if chat_id is None else (" AND m.chat_id = ?", [chat_id])
    sql = (f"{_SELECT}, bm25(messages_words, 1.0, 0.5) AS rank FROM messages_words"
           " JOIN messages m ON m.id = messages_words.rowid JOIN chats c ON c.id = m.chat_id AND c.deleted_at IS NULL"
           f" WHERE messages_words MATCH ?{where} ORDER BY rank, m.id DESC LIMIT ?")
    return [dict(r) for r in conn.execute(sql, [match, *args, limit])]


def _rows(conn: Connection, query: ParsedQuery, chat_id: int | None, limit: int) -> list[dict[str, Any]]:
    if not any(_CJK.search(t) for t in query.terms) and all(re.search(r"\w", t) for t in query.terms):
        return _word_rows(conn, query, chat_id, limit)
    where: list[str] = []
    args: list[Any] = []
    for term in query.short:
        where.append("(m.content LIKE ? ESCAPE '\\' OR m.speaker_name LIKE ? ESCAPE '\\')")
        args += [_like(term), _like(term)]
    if chat_id is not None:
        where.append("m.chat_id = ?")
        args.append(chat_id)
    if query.fts:
        sql = (f"{_SELECT}, bm25(messages_fts, 1.0, 0.5) AS rank FROM messages_fts"
               " JOIN messages m ON m.id = messages_fts.rowid JOIN chats c ON c.id = m.chat_id AND c.deleted_at IS NULL"
               " WHERE messages_fts MATCH ?" + "".join(f" AND {w}" for w in where)
               + " ORDER BY rank, m.id DESC LIMIT ?")
        return [dict(r) for r in conn.execute(sql, [query.fts, *args, limit])]
    sql = (f"{_SELECT}, 0.0 AS rank FROM messages m JOIN chats c ON c.id = m.chat_id AND c.deleted_at IS NULL"
           f" WHERE {' AND '.join(where)} ORDER BY m.id DESC LIMIT ?")
    return [dict(r) for r in conn.execute(sql, [*args, limit])]


def search_messages(conn: Connection, text: str, *, chat_id: int | None = None,
                    limit: int = 50) -> list[dict[str, Any]]:
    """Messages matching every term, best (bm25) first, each with a highlighted snippet."""
    query = parse_query(text)
    if chat_id is not None:
        store.get_chat(conn, chat_id)
    limit = max(1, min(int(limit), MAX_LIMIT))
    hits = []
    for row in _rows(conn, query, chat_id, limit):
        snippet, spans = make_snippet(row["content"], query.terms)
        hits.append({
            "message_id": row["id"], "chat_id": row["chat_id"], "chat_title": row["chat_title"],
            "chat_name": _chat_name(row),
            "seq": row["seq"], "turn": row["turn"], "role": row["role"], "speaker_name": row["speaker_name"],
            "archived": bool(row["archived"]), "archived_reason": row["archived_reason"],
            "created_at": row["created_at"], "score": round(-float(row["rank"]), 6),
            "snippet": snippet, "highlights": spans, "snippet_marked": mark(snippet, spans),
        })
    return hits


def pending_messages(conn: Connection, limit: int) -> list[tuple[int, str]]:
    """(id, content) of up to `limit` messages waiting for the full-text indexes (bulk imports defer them)."""
    rows = conn.execute("SELECT id, content FROM messages WHERE search_indexed = 0 ORDER BY id LIMIT ?", (limit,))
    return [(r["id"], r["content"]) for r in rows]


def mark_indexed(conn: Connection, message_ids: list[int]) -> None:
    """Put waiting messages into both full-text indexes: the update triggers of migration 0007 insert them."""
    conn.executemany("UPDATE messages SET search_indexed = 1 WHERE id = ? AND search_indexed = 0",
                     [(mid,) for mid in message_ids])


def _chat_name(row: Any) -> str:
    """The name the chat list shows: the title, else the cast's names (as chats.service.chat_name)."""
    title = (row["chat_title"] or "").strip()
    return title or row["chat_cast_names"] or f"Chat {row['chat_id']}"


def _fold(text: str) -> tuple[str, list[int]]:
    """Case- and accent-folded text with, per folded character, its index in the original."""
    out: list[str] = []
    where: list[int] = []
    for i, ch in enumerate(text):
        base = "".join(c for c in unicodedata.normalize("NFD", ch) if not unicodedata.combining(c)).casefold()
        out.append(base)
        where.extend([i] * len(base))
    return "".join(out), where


def match_spans(text: str, terms: list[str]) -> list[tuple[int, int]]:
    """Sorted, merged [start, end) spans of every occurrence of any term in text."""
    folded, where = _fold(text)
    spans: list[tuple[int, int]] = []
    for term in terms:
        needle = _fold(term)[0]
        start = folded.find(needle) if needle else -1
        while start >= 0:
            spans.append((where[start], where[start + len(needle) - 1] + 1))
            start = folded.find(needle, start + len(needle))
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def make_snippet(text: str, terms: list[str], width: int = SNIPPET_CHARS) -> tuple[str, list[list[int]]]:
    """A window of text around the first match, with match offsets relative to the returned text."""
    spans = match_spans(text, terms)
    start = max(0, spans[0][0] - SNIPPET_LEAD) if spans else 0
    end = min(len(text), start + width)
    start = max(0, min(start, end - width))
    prefix = "…" if start > 0 else ""
    body = prefix + text[start:end] + ("…" if end < len(text) else "")
    shift = len(prefix) - start
    inside = [[max(s, start) + shift, min(e, end) + shift] for s, e in spans if s < end and e > start]
    return body, inside


def mark(snippet: str, spans: list[list[int]], left: str = "«", right: str = "»") -> str:
    """The snippet with each highlighted span wrapped in markers."""
    out, last = [], 0
    for start, end in spans:
        out += [snippet[last:start], left, snippet[start:end], right]
        last = end
    out.append(snippet[last:])
    return "".join(out)
