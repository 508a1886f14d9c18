"""NPCs: characters created inside a chat (scoped to it), with full parity, promotable to the library."""

from __future__ import annotations

from typing import Any

from neuralrp.chats import store
from neuralrp.db.connection import Connection, transaction
from neuralrp.db.history import record_change
from neuralrp.errors import Conflict, InvalidInput, NotFound
from neuralrp.library import characters as chars
from neuralrp.library.service import Library

GENDERS = ("female", "male", "other", "")


def _clean(fields: dict[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key in ("name", "gender", "description", "visual_tags", "personality"):
        if key in fields and fields[key] is not None:
            if not isinstance(fields[key], str):
                raise InvalidInput(f"field '{key}' must be a string")
            out[key] = fields[key].strip()
    if "gender" in out and out["gender"].lower() not in GENDERS:
        raise InvalidInput(f"field 'gender' must be one of female, male, other (got '{out['gender']}')")
    return out


def _npc_card(fields: dict[str, str]) -> dict[str, Any]:
    return {"spec": "chara_card_v2", "spec_version": "2.0", "data": {
        "name": fields["name"], "description": fields.get("description", ""),
        "personality": fields.get("personality", ""), "tags": ["npc"],
        "extensions": {"neuralrp": {"npc": True, "gender": fields.get("gender", ""),
                                    "visual_tags": fields.get("visual_tags", "")}}}}


def _get_npc(conn: Connection, npc_id: int) -> chars.Character:
    npc = chars.get_character(conn, npc_id)
    if npc.scope_chat_id is None:
        raise NotFound(f"character {npc_id} is not an NPC of a chat")
    return npc


def create_npc(conn: Connection, chat_id: int, fields: dict[str, Any]) -> chars.Character:
    """A new NPC in the chat's cast (active)."""
    clean = _clean(fields)
    if not clean.get("name"):
        raise InvalidInput("an NPC needs a name")
    with transaction(conn):
        store.get_chat(conn, chat_id)
        taken = {m.name.casefold() for m in store.cast_members(conn, chat_id)}
        if clean["name"].casefold() in taken:
            raise Conflict(f"'{clean['name']}' is already in this chat's cast")
        gender = clean.get("gender", "").lower()
        npc_id = chars.insert_character(conn, _npc_card(clean), scope_chat_id=chat_id, gender=gender,
                                        visual_tags=clean.get("visual_tags", ""))
        store.add_cast_member(conn, chat_id, npc_id)
        record_change(conn, "character", npc_id, "create", None, {"npc_of_chat": chat_id, **clean})
    return chars.get_character(conn, npc_id)


def update_npc(conn: Connection, npc_id: int, fields: dict[str, Any]) -> chars.Character:
    """Change an NPC's name, gender, description, personality or visual tags."""
    clean = _clean(fields)
    with transaction(conn):
        npc = _get_npc(conn, npc_id)
        card = chars.as_v2(npc.card)
        for key in ("name", "description", "personality"):
            if clean.get(key):
                card["data"][key] = clean[key]
        old = chars.update_card(conn, npc_id, card)
        gender = clean.get("gender", npc.gender).lower()
        chars.set_visual(conn, npc_id, gender=gender, visual_tags=clean.get("visual_tags", npc.visual_tags))
        record_change(conn, "character", npc_id, "update", old, card)
    return chars.get_character(conn, npc_id)


def delete_npc(conn: Connection, npc_id: int) -> None:
    """Remove an NPC (its card is kept in history; its messages keep the speaker's name)."""
    with transaction(conn):
        npc = _get_npc(conn, npc_id)
        record_change(conn, "character", npc_id, "delete", npc.card, None, f"NPC of chat {npc.scope_chat_id}")
        chars.delete_character(conn, npc_id)


def promote_npc(library: Library, npc_id: int) -> chars.Character:
    """Make an NPC a global character: it joins the library and gets a card file in characters/."""
    with library.lock, library.db.session() as conn, transaction(conn):
        npc = _get_npc(conn, npc_id)
        if chars.find_by_name(conn, npc.name) is not None:
            raise Conflict(f"the library already has a character named '{npc.name}'; rename the NPC first")
        card = chars.as_v2(npc.card)
        card["data"]["tags"] = [t for t in card["data"].get("tags", []) if t != "npc"]
        chars.update_card(conn, npc_id, card)
        chars.make_global(conn, npc_id)
        record_change(conn, "character", npc_id, "update", {"npc_of_chat": npc.scope_chat_id}, card, "promoted")
        library.write_character_file(conn, npc_id)
        return chars.get_character(conn, npc_id)
