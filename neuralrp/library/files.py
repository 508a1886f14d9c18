"""Files in the data dir: safe names, card files SillyTavern can read, avatars, a trash folder."""

from __future__ import annotations

import os
import re
import tempfile
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from neuralrp.errors import InvalidInput

_UNSAFE = re.compile(r'[<>:"/\\|?*\x00-\x1f]')
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
    if not text or set(text) <= {"_", "."} or text.upper() in _RESERVED:
        text = fallback
    return text


def inside(folder: Path, name: str) -> Path:
    """folder/name, refusing any name that would leave the folder."""
    candidate = (folder / name).resolve()
    if candidate.parent != folder.resolve() or name in ("", ".", ".."):
        raise InvalidInput(f"file name {name!r} is not allowed (it would leave {folder.name}/)")
    return candidate


def unique_path(folder: Path, stem: str, suffix: str, *, current: Path | None = None) -> Path:
    """folder/stem+suffix, numbered if taken by another file."""
    candidate = inside(folder, stem + suffix)
    n = 2
    while candidate.exists() and candidate != current:
        candidate = inside(folder, f"{stem} ({n}){suffix}")
        n += 1
    return candidate


def write_atomic(path: Path, data: bytes) -> float:
    """Write via a temp file and rename; return the new mtime."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path.stat().st_mtime
