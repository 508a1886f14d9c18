"""A character's visual canon in the library: suggest tags from its card, save gender + visual tags.

Saving writes the `gender` and `visual_tags` columns and mirrors them into the card's
`data.extensions.neuralrp`, so the card file in characters/ carries them (and a re-import restores them).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from neuralrp.db.connection import transaction
from neuralrp.db.history import record_change
from neuralrp.errors import InvalidInput
from neuralrp.images.danbooru import CanonResult, normalise_gender, suggest_tags
from neuralrp.images.danbooru_fetch import DanbooruCharacter, dataset_path, load_dataset
from neuralrp.library import characters as chars
from neuralrp.library.service import Library

log = logging.getLogger(__name__)

MAX_VISUAL_TAGS_CHARS = 4000
_datasets: dict[Path, tuple[float, list[DanbooruCharacter]]] = {}
_datasets_lock = threading.Lock()


def clean_visual_tags(value: Any, field_name: str = "visual_tags") -> str:
    """'a,  b ,, a' -> 'a, b' (order kept, duplicates and blanks dropped); InvalidInput naming the field."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidInput(f"field '{field_name}' must be a string of comma-separated tags")
    if len(value) > MAX_VISUAL_TAGS_CHARS:
        raise InvalidInput(f"field '{field_name}' is {len(value)} characters long; the limit is "
                           f"{MAX_VISUAL_TAGS_CHARS}")
    tags = [" ".join(t.split()) for t in value.replace("\n", ",").split(",")]
    return ", ".join(dict.fromkeys(t for t in tags if t))


def appearance_text(character: chars.Character) -> str:
    """The card text that describes the look: the description, else the personality."""
    return character.field("description").strip() or character.field("personality").strip()


def dataset_characters(data_dir: Path) -> list[DanbooruCharacter]:
    """The fetched Danbooru dataset if there is one (re-read when the file changes), else []."""
    path = dataset_path(data_dir)
    try:
        mtime = path.stat().st_mtime
    except OSError:
        return []
    with _datasets_lock:
        cached = _datasets.get(path)
        if cached is None or cached[0] != mtime:
            try:
                cached = (mtime, load_dataset(path))
            except InvalidInput as e:
                log.warning("Danbooru dataset ignored: %s", e.message)
                cached = (mtime, [])
            _datasets[path] = cached
        return cached[1]


def suggest_for(character: chars.Character, body: dict[str, Any], *, embedder: Any, data_dir: Path) -> CanonResult:
    """The suggestion for a character; body may override `description` and `gender`."""
    description = body.get("description")
    if description is None:
        description = appearance_text(character)
    elif not isinstance(description, str):
        raise InvalidInput("field 'description' must be a string")
    gender = normalise_gender(body["gender"]) if body.get("gender") is not None else character.gender
    # {{char}}/{{user}} macros are dropped by the tokenizer: a name like "Ginger" must not become a hair colour
    return suggest_tags(description, gender, embedder=_usable(embedder), characters=dataset_characters(data_dir))


def _usable(embedder: Any) -> Any:
    """The embedder, or None when it failed to load (exact matching still works)."""
    if embedder is None or getattr(embedder, "error", None) is not None:
        return None
    return embedder


def save_visual(library: Library, cid: int, body: dict[str, Any]) -> chars.Character:
    """Store gender and visual tags in the columns and the card (history kept, card file rewritten)."""
    with library.lock, library.db.session() as conn, transaction(conn):
        character = chars.get_character(conn, cid)
        gender = normalise_gender(body["gender"]) if "gender" in body else character.gender
        tags = clean_visual_tags(body["visual_tags"]) if "visual_tags" in body else character.visual_tags
        card = chars.as_v2(character.card)
        extensions = card["data"].setdefault("extensions", {})
        ours = extensions.get("neuralrp")
        extensions["neuralrp"] = {**(ours if isinstance(ours, dict) else {}), "gender": gender,
                                  "visual_tags": tags}
        old = chars.update_card(conn, cid, card)
        chars.set_visual(conn, cid, gender=gender, visual_tags=tags)
        record_change(conn, "character", cid, "update", old, card, "visual canon (gender, visual tags)")
        if character.scope_chat_id is None:
            library.write_character_file(conn, cid)
        return chars.get_character(conn, cid)

