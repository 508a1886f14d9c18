"""Persona rows: who the user plays (name, description for the prompt, avatar), one of them the default.

Like SillyTavern's personas: the name stands for {{user}}, the description goes into the prompt. A chat keeps
its persona as {persona_id, name, description} (chats.persona_json); editing a persona refreshes those chats.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from neuralrp.clock import iso
from neuralrp.db.connection import Connection
from neuralrp.errors import InvalidInput, NotFound

MAX_NAME = 100
MAX_DESCRIPTION = 20_000


@dataclass
class Persona:
    """One persona."""

    id: int
    name: str
    description: str
    avatar_path: str | None
    is_default: bool
    updated_at: str

    def for_chat(self) -> dict[str, Any]:
        """What a chat keeps of its persona."""
        return {"persona_id": self.id, "name": self.name, "description": self.description}

    def public(self) -> dict[str, Any]:
        """JSON form for the API."""
        return {"id": self.id, "name": self.name, "description": self.description, "is_default": self.is_default,
                "has_avatar": bool(self.avatar_path), "updated_at": self.updated_at,
                "avatar_url": f"/api/personas/{self.id}/avatar?v={self.updated_at}"}


def _persona(row: dict[str, Any]) -> Persona:
    return Persona(row["id"], row["name"], row["description"], row["avatar_path"], bool(row["is_default"]),
                   row["updated_at"])


def check_fields(name: Any, description: Any) -> tuple[str, str]:
    """A persona's name and description, checked; InvalidInput naming the problem."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput("a persona needs a name")
    if len(name.strip()) > MAX_NAME:
        raise InvalidInput(f"the persona's name is {len(name.strip())} characters long; the limit is {MAX_NAME}")
    if not isinstance(description, str):
        raise InvalidInput("the persona's description must be text")
    if len(description) > MAX_DESCRIPTION:
        raise InvalidInput(f"the persona's description is {len(description)} characters long; "
                           f"the limit is {MAX_DESCRIPTION}")
    return name.strip(), description.strip()


def insert_persona(conn: Connection, name: str, description: str = "") -> int:
    """A new persona; returns its id."""
    name, description = check_fields(name, description)
    now = iso()
    cur = conn.execute("INSERT INTO personas (name, description, created_at, updated_at) VALUES (?, ?, ?, ?)",
                       (name, description, now, now))
    return int(cur.lastrowid or 0)


def update_persona(conn: Connection, persona_id: int, name: str, description: str) -> None:
    """Change a persona's name and description."""
    name, description = check_fields(name, description)
    get_persona(conn, persona_id)
    conn.execute("UPDATE personas SET name = ?, description = ?, updated_at = ? WHERE id = ?",
                 (name, description, iso(), persona_id))


def get_persona(conn: Connection, persona_id: int) -> Persona:
    """One persona, or NotFound."""
    row = conn.execute("SELECT * FROM personas WHERE id = ?", (persona_id,)).fetchone()
    if row is None:
        raise NotFound(f"persona {persona_id} does not exist")
    return _persona(row)


def list_personas(conn: Connection) -> list[Persona]:
    """Every persona, the default first, then by name."""
    rows = conn.execute("SELECT * FROM personas ORDER BY is_default DESC, name COLLATE NOCASE, id")
    return [_persona(r) for r in rows]


def default_persona(conn: Connection) -> Persona | None:
    """The persona new chats get when none is chosen."""
    row = conn.execute("SELECT * FROM personas WHERE is_default = 1").fetchone()
    return None if row is None else _persona(row)


def set_default(conn: Connection, persona_id: int | None) -> None:
    """Make this persona the default (None: no default)."""
    if persona_id is not None:
        get_persona(conn, persona_id)
    conn.execute("UPDATE personas SET is_default = 0 WHERE is_default = 1")
    if persona_id is not None:
        conn.execute("UPDATE personas SET is_default = 1 WHERE id = ?", (persona_id,))


def set_avatar_path(conn: Connection, persona_id: int, avatar_path: str | None) -> None:
    """Record where the persona's picture lives (relative to the data dir); updated_at moves on."""
    conn.execute("UPDATE personas SET avatar_path = ?, updated_at = ? WHERE id = ?", (avatar_path, iso(), persona_id))


def delete_persona(conn: Connection, persona_id: int) -> Persona:
    """Delete a persona (chats keep its name and description); returns what it was."""
    persona = get_persona(conn, persona_id)
    conn.execute("DELETE FROM personas WHERE id = ?", (persona_id,))
    return persona
