"""Personas from SillyTavern: its settings.json (or a Persona Management backup) into NeuralRP's persona library.

The format, as read in SillyTavern/SillyTavern release 1.12.6 (commit ba6f7b7a), public/scripts/personas.js
(initPersona, onBackupPersonas, onPersonasRestoreInput) and public/scripts/power-user.js (the power_user defaults):
settings.json holds `power_user.personas` {avatar file name: persona name}, `power_user.persona_descriptions`
{avatar file name: {description, position, depth, role, lorebook?, title?}} and `power_user.default_persona` (an
avatar file name or null). The pictures are those file names in SillyTavern's "User Avatars" folder. The Backup
button writes the same three keys at the top level of a personas_<date>.json, which is read the same way.

Rules: a persona takes its name and description (position, depth, role, lorebook and title have no NeuralRP
counterpart and are left out). One whose name (ignoring case) and description both equal a stored persona's is
skipped, so importing the same file again changes nothing; a same-name persona with another description is a new
persona (SillyTavern allows duplicate names). SillyTavern's default becomes NeuralRP's default only when NeuralRP
has none and that persona was imported now. A picture is attached to the persona imported now whose key is its
file name; a skipped persona keeps its own. The whole import is one transaction; bad input stores nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any

from neuralrp.db.connection import Connection, transaction
from neuralrp.errors import InvalidInput, PayloadTooLarge
from neuralrp.library import personas
from neuralrp.library.avatars import avatar_png
from neuralrp.library.files import unique_path, write_atomic
from neuralrp.library.safejson import load_json, type_name
from neuralrp.library.service import Library

log = logging.getLogger(__name__)
MAX_AVATARS = 500  # picture files in one import


@dataclass(frozen=True)
class StPersona:
    """One SillyTavern persona: its avatar file name (the key), name and description."""

    key: str
    name: str
    description: str


@dataclass
class StPersonas:
    """What a SillyTavern settings file holds about personas."""

    personas: list[StPersona]
    default_key: str | None


@dataclass
class PersonaImport:
    """What happened to one SillyTavern persona."""

    key: str
    name: str
    status: str  # imported | skipped
    id: int
    detail: str = ""
    avatar: bool = False
    is_default: bool = False


@dataclass
class PersonaImportReport:
    """The result of one import: per persona, plus the picture files that matched no persona."""

    results: list[PersonaImport] = field(default_factory=list)
    unmatched_avatars: list[str] = field(default_factory=list)

    def public(self) -> dict[str, Any]:
        """JSON form for the API."""
        return {"imported": sum(r.status == "imported" for r in self.results),
                "skipped": sum(r.status == "skipped" for r in self.results),
                "personas": [vars(r) for r in self.results], "unmatched_avatars": self.unmatched_avatars}


def _section(doc: Any, filename: str) -> dict[str, Any]:
    """The object holding personas/persona_descriptions: power_user in settings.json, the top of a backup."""
    if not isinstance(doc, dict):
        raise InvalidInput(f"{filename}: expected a JSON object (SillyTavern's settings.json), got a {type_name(doc)}")
    if "power_user" not in doc:
        if "personas" in doc and "persona_descriptions" in doc:
            return doc  # a Persona Management backup
        raise InvalidInput(f"{filename}: no power_user section; choose SillyTavern's settings.json "
                           "(data/<user>/settings.json) or a personas backup")
    section = doc["power_user"]
    if not isinstance(section, dict):
        raise InvalidInput(f"{filename}: power_user must be an object, not a {type_name(section)}")
    return section


def _described(key: str, name: Any, descriptor: Any, filename: str) -> StPersona:
    """One persona checked: a text name, a description object (or none) with a text description."""
    if not isinstance(name, str):
        raise InvalidInput(f"{filename}: the name of persona {key!r} must be text, not a {type_name(name)}")
    if descriptor is None:
        descriptor = {}
    if not isinstance(descriptor, dict):
        raise InvalidInput(f"{filename}: persona_descriptions[{key!r}] must be an object, "
                           f"not a {type_name(descriptor)}")
    description = descriptor.get("description")
    description = "" if description is None else description
    try:
        name, description = personas.check_fields(name, description)
    except InvalidInput as e:
        raise InvalidInput(f"{filename}: persona {key!r}: {e.message}") from e
    return StPersona(key, name, description)


def parse_st_personas(data: bytes, filename: str) -> StPersonas:
    """The personas of a SillyTavern settings.json (or personas backup); InvalidInput naming the problem."""
    section = _section(load_json(data, filename), filename)
    names = section.get("personas")
    descriptions = section.get("persona_descriptions")
    descriptions = {} if descriptions is None else descriptions
    default = section.get("default_persona")
    if not isinstance(names, dict):
        raise InvalidInput(f"{filename}: power_user.personas must be an object (avatar file -> name), "
                           f"not {type_name(names)}")
    if not isinstance(descriptions, dict):
        raise InvalidInput(f"{filename}: power_user.persona_descriptions must be an object, "
                           f"not a {type_name(descriptions)}")
    if default is not None and not isinstance(default, str):
        raise InvalidInput(f"{filename}: power_user.default_persona must be an avatar file name, "
                           f"not a {type_name(default)}")
    if not names:
        raise InvalidInput(f"{filename}: power_user.personas is empty; there are no personas to import")
    found = [_described(key, name, descriptions.get(key), filename) for key, name in names.items()]
    return StPersonas(found, default if default in names else None)


def _pictures(library: Library, keys: set[str], files: list[tuple[str, bytes]],
              report: PersonaImportReport) -> dict[str, bytes]:
    """The uploaded pictures whose file name is a persona key, as PNG; the others go to unmatched_avatars."""
    if len(files) > MAX_AVATARS:
        raise InvalidInput(f"{len(files)} picture files sent; the limit is {MAX_AVATARS} in one import")
    pngs: dict[str, bytes] = {}
    for filename, data in files:
        key = PurePath(filename.replace("\\", "/")).name
        if key not in keys:
            report.unmatched_avatars.append(key)
            continue
        if len(data) > library.max_bytes:
            raise PayloadTooLarge(f"{key}: file is over the {library.max_bytes // 1024 // 1024} MiB upload limit")
        pngs[key] = avatar_png(data, key)
    return pngs


def _same_persona(conn: Connection, persona: StPersona) -> personas.Persona | None:
    """A stored persona with this name (ignoring case) and description."""
    return next((p for p in personas.list_personas(conn) if p.name.casefold() == persona.name.casefold()
                 and p.description == persona.description), None)


def _store(conn: Connection, library: Library, parsed: StPersonas, pngs: dict[str, bytes],
           written: list[Path]) -> list[PersonaImport]:
    """Insert the new personas with their pictures (each written file noted in `written`)."""
    had_default = personas.default_persona(conn) is not None
    results = []
    for persona in parsed.personas:
        same = _same_persona(conn, persona)
        if same is not None:
            results.append(PersonaImport(persona.key, persona.name, "skipped", same.id,
                                         f"the same persona is already stored (id {same.id})"))
            continue
        pid = personas.insert_persona(conn, persona.name, persona.description)
        result = PersonaImport(persona.key, persona.name, "imported", pid)
        if persona.key in pngs:
            path = unique_path(library.paths.avatars, f"persona-{pid}", ".png")
            write_atomic(path, pngs[persona.key])
            written.append(path)
            personas.set_avatar_path(conn, pid, str(path.relative_to(library.paths.data_dir)))
            result.avatar = True
        if persona.key == parsed.default_key and not had_default:
            personas.set_default(conn, pid)
            result.is_default = True
        results.append(result)
    return results


def import_st_personas(library: Library, data: bytes, filename: str,
                       avatars: list[tuple[str, bytes]] | None = None) -> PersonaImportReport:
    """Import the personas of a SillyTavern settings.json, with optional pictures (file name = persona key)."""
    if len(data) > library.max_bytes:
        raise PayloadTooLarge(f"{filename}: file is over the {library.max_bytes // 1024 // 1024} MiB upload limit")
    parsed = parse_st_personas(data, filename)
    report = PersonaImportReport()
    pngs = _pictures(library, {p.key for p in parsed.personas}, avatars or [], report)
    written: list[Path] = []
    with library.lock, library.db.session() as conn:
        try:
            with transaction(conn):
                report.results = _store(conn, library, parsed, pngs, written)
        except BaseException:
            for path in written:  # the DB never pointed at them
                path.unlink(missing_ok=True)
            raise
    counts = report.public()
    log.info("imported %d SillyTavern persona(s) from %s, skipped %d", counts["imported"], filename,
             counts["skipped"])
    return report
