"""Personas in chats: which one a chat plays (chosen at creation or later, else the default), and persona edits
that reach every chat playing it. Each public function is one transaction."""

from __future__ import annotations

from typing import Any

from neuralrp.chats import store
from neuralrp.db.connection import Connection, transaction
from neuralrp.errors import InvalidInput
from neuralrp.library import personas


def persona_for_new_chat(conn: Connection, persona_id: int | None, persona: dict[str, Any] | None) -> dict[str, Any]:
    """The persona a new chat plays: the one chosen by id, else a name (and description) typed for this chat,
    else the default persona, else none (the user is "User")."""
    if persona_id is not None:
        return personas.get_persona(conn, persona_id).for_chat()
    if persona and str(persona.get("name") or "").strip():
        name, description = personas.check_fields(str(persona["name"]), persona.get("description") or "")
        return {**persona, "name": name, **({"description": description} if description else {})}
    default = personas.default_persona(conn)
    return {} if default is None else default.for_chat()


def choose_persona(conn: Connection, chat_id: int, persona_id: int | None,
                   persona: dict[str, Any] | None = None) -> None:
    """Play another persona in a chat from now on (the user's earlier messages keep their name)."""
    with transaction(conn):
        store.get_chat(conn, chat_id)
        if persona_id is None and not (persona and str(persona.get("name") or "").strip()):
            raise InvalidInput("choose a persona (persona_id) or give a name (persona.name)")
        store.set_persona(conn, chat_id, persona_for_new_chat(conn, persona_id, persona))


def create_persona(conn: Connection, name: str, description: str = "", *, default: bool = False) -> int:
    """A new persona (the first one becomes the default); returns its id."""
    with transaction(conn):
        first = personas.default_persona(conn) is None and not personas.list_personas(conn)
        pid = personas.insert_persona(conn, name, description)
        if default or first:
            personas.set_default(conn, pid)
    return pid


def edit_persona(conn: Connection, persona_id: int, changes: dict[str, Any]) -> int:
    """Rename / redescribe a persona and make it the default when asked; returns how many chats were refreshed."""
    with transaction(conn):
        old = personas.get_persona(conn, persona_id)
        name = changes.get("name", old.name)
        description = changes.get("description", old.description)
        personas.update_persona(conn, persona_id, name, description if description is not None else "")
        if changes.get("is_default") is True:
            personas.set_default(conn, persona_id)
        elif changes.get("is_default") is False and old.is_default:
            personas.set_default(conn, None)
        return store.refresh_persona(conn, persona_id, personas.get_persona(conn, persona_id).for_chat())


def delete_persona(conn: Connection, persona_id: int) -> personas.Persona:
    """Delete a persona; chats playing it keep its name and description."""
    with transaction(conn):
        return personas.delete_persona(conn, persona_id)
