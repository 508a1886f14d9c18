"""Files in the data dir: safe names, card files SillyTavern can read, avatars, a trash folder."""

from __future__ import annotations

import logging
import os
import re
import secrets
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from neuralrp.errors import InvalidInput

log = logging.getLogger(__name__)

_UNSAFE = re.compile(r'[<>:"/\\|?*\x00-\x1f]')
MAX_STEM_BYTES = 160  # 255 bytes per name on most file systems, less room for " (n)", a suffix, a temp prefix
_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)), *(f"LPT{i}" for i in range(1, 10))}


@dataclass(frozen=True)
class LibraryPaths:
    """The folders of the library inside the data dir."""

    data_dir: Path

    @property
    def characters(self) -> Path:
        """SillyTavern-readable character cards."""
        return self.data_dir / "characters"

    @property
    def worlds(self) -> Path:
        """SillyTavern World Info files."""
        return self.data_dir / "worlds"

    @property
    def avatars(self) -> Path:
        """Avatar images (card PNGs without their text chunks)."""
        return self.data_dir / "images" / "avatars"

    @property
    def trash(self) -> Path:
        """Files of deleted characters and worlds, kept rather than destroyed."""
        return self.data_dir / "trash"


def safe_stem(name: str, fallback: str = "untitled") -> str:
    """A file-name stem from any name: no separators, no control chars, no '..', not reserved."""
    text = unicodedata.normalize("NFC", name)
    text = _UNSAFE.sub("_", text).strip(" .")
    text = re.sub(r"\s+", " ", text)[:80].strip(" .")
    text = text.encode()[:MAX_STEM_BYTES].decode(errors="ignore").strip(" .")  # file names are limited in bytes
    if not text or set(text) <= {"_", "."} or text.upper() in _RESERVED:
        text = fallback
    return text


def inside(folder: Path, name: str) -> Path:
    """folder/name, refusing any name that would leave the folder."""
    candidate = (folder / name).resolve()
    if candidate.parent != folder.resolve() or name in ("", ".", ".."):
        raise InvalidInput(f"file name {name!r} is not allowed (it would leave {folder.name}/)")
    return candidate


def stored_path_problem(folder: str, stored: str) -> str | None:
    """Why a path stored in the DB (relative to the data dir) may not be used, or None when it names a file
    directly inside data_dir/folder: no absolute paths, no `..`, no separators beyond the folder's own."""
    parts, home = stored.replace("\\", "/").split("/"), folder.split("/")
    if "\x00" in stored or parts[:-1] != home or parts[-1] in ("", ".", ".."):
        return f"the stored path {stored[:200]!r} is not a file inside {folder}/"
    return None


def confined(data_dir: Path, folder: str, stored: str) -> Path | None:
    """data_dir/stored resolved (links followed), or None with a warning when it would leave data_dir/folder."""
    problem = stored_path_problem(folder, stored)
    path = (data_dir / stored).resolve() if problem is None else None
    if path is not None and path.parent != (data_dir / folder).resolve():
        problem = f"the stored path {stored[:200]!r} leads outside {folder}/ (through a link)"
    if problem is not None:
        log.warning("%s; it is ignored", problem)
        return None
    return path


def unique_path(folder: Path, stem: str, suffix: str, *, current: Path | None = None) -> Path:
    """folder/stem+suffix, numbered if taken by another file."""
    candidate = inside(folder, stem + suffix)
    n = 2
    while candidate.exists() and candidate != current:
        candidate = inside(folder, f"{stem} ({n}){suffix}")
        n += 1
    return candidate


def _open_temp(folder: Path, suffix: str) -> tuple[int, Path]:
    """A new temp file in folder, created with mode 0o666 so the process umask decides its permissions."""
    for _ in range(100):
        tmp = folder / f".tmp-{secrets.token_hex(8)}{suffix}"
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temp file name in {folder}")


def write_atomic(path: Path, data: bytes) -> float:
    """Write via a temp file and rename; return the new mtime.

    A new file gets the mode the umask gives (0644 under the usual 022, readable by other users' tools, as
    SillyTavern's own files are); a file that exists keeps its mode.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _open_temp(path.parent, path.suffix)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        if path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o7777)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path.stat().st_mtime
