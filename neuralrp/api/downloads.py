"""Download answers: a Content-Disposition any name can travel in (RFC 6266 / RFC 5987)."""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote

from fastapi import Response

_CONTROLS = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")
_NOT_PLAIN = re.compile(r'[^\x20-\x7e]|["\\%;]')


def attachment(filename: str) -> str:
    """`attachment; filename="<ASCII fallback>"; filename*=UTF-8''<the name, percent-encoded>`.

    Control characters (CR/LF included, which would end the header) become spaces first; the fallback keeps
    printable ASCII and writes `_` for the rest, so old clients still get a name with its extension."""
    name = _CONTROLS.sub(" ", unicodedata.normalize("NFC", filename)).strip() or "download"
    plain = _NOT_PLAIN.sub("_", name)
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(name, safe='')}"


def download(data: bytes, filename: str, media_type: str) -> Response:
    """The bytes as a file download named `filename`."""
    return Response(data, media_type=media_type, headers={"Content-Disposition": attachment(filename)})
