"""Read and write PNG text chunks (tEXt, zTXt, iTXt) with the standard library only.

Every malformed input raises `InvalidInput` with a message that names the problem; no other
exception escapes for any input bytes.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from neuralrp.errors import InvalidInput

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MIB = 1024 * 1024
DEFAULT_MAX_CHUNK = 20 * MIB
DEFAULT_MAX_TOTAL = 64 * MIB
TEXT_TYPES = (b"tEXt", b"zTXt", b"iTXt")
_MAX_LENGTH = 2**31 - 1


@dataclass(frozen=True)
class PngChunk:
    """One chunk as found in the file: its type, payload and where it starts."""

    type: bytes
    data: bytes
    offset: int

    @property
    def name(self) -> str:
        """The chunk type as text, e.g. 'IDAT'."""
        return self.type.decode("latin-1")

    def keyword(self) -> str | None:
        """The keyword of a text chunk, or None when this is not a well-formed text chunk."""
        if self.type not in TEXT_TYPES:
            return None
        return _keyword_of(self.data)


@dataclass(frozen=True)
class TextChunk:
    """A decoded text chunk: keyword, text and the chunk type it came from."""

    keyword: str
    text: str
    kind: str


def size_label(size: int) -> str:
    """Human text for a byte limit: '20 MiB' or '1234 bytes'."""
    if size >= MIB and size % MIB == 0:
        return f"{size // MIB} MiB"
    return f"{size} bytes"


def _keyword_of(payload: bytes) -> str | None:
    """The Latin-1 keyword before the first NUL (1-79 bytes), or None."""
    end = payload.find(b"\0", 0, 80)
    if end < 1:
        return None
    return payload[:end].decode("latin-1")


def _peek_label(data: bytes, start: int, ctype: bytes) -> str:
    """Best label for an oversize chunk: its keyword when readable, else its type."""
    if ctype in TEXT_TYPES:
        keyword = _keyword_of(data[start : start + 80])
        if keyword:
            return keyword
    return ctype.decode("latin-1")


def _check_header(data: bytes, max_total_size: int) -> None:
    """Validate the overall size and the PNG signature."""
    if len(data) > max_total_size:
        raise InvalidInput(f"PNG is {len(data)} bytes, over the {size_label(max_total_size)} limit")
    if len(data) < len(PNG_SIGNATURE) or data[:8] != PNG_SIGNATURE:
        raise InvalidInput("file is not a PNG (bad signature)")


def _read_one(data: bytes, pos: int, max_chunk_size: int) -> PngChunk:
    """Read and validate the chunk starting at `pos`."""
    if pos + 8 > len(data):
        raise InvalidInput(f"PNG is truncated at byte {len(data)}")
    length, ctype = struct.unpack(">I4s", data[pos : pos + 8])
    if not ctype.isalpha():
        raise InvalidInput(f"PNG chunk at byte {pos} has an invalid type {ctype!r}")
    if length > _MAX_LENGTH:
        raise InvalidInput(f"PNG chunk '{ctype.decode('latin-1')}' at byte {pos} has an invalid length")
    if length > max_chunk_size:
        label = _peek_label(data, pos + 8, ctype)
        raise InvalidInput(f"'{label}' chunk is {length} bytes, over the {size_label(max_chunk_size)} limit")
    end = pos + 12 + length
    if end > len(data):
        raise InvalidInput(f"PNG is truncated at byte {len(data)}")
    payload = data[pos + 8 : pos + 8 + length]
    (crc,) = struct.unpack(">I", data[end - 4 : end])
    if zlib.crc32(payload, zlib.crc32(ctype)) != crc:
        raise InvalidInput(f"PNG chunk '{ctype.decode('latin-1')}' at byte {pos} has a bad CRC (file is corrupt)")
    return PngChunk(ctype, payload, pos)


def read_chunks(
    data: bytes, *, max_chunk_size: int = DEFAULT_MAX_CHUNK, max_total_size: int = DEFAULT_MAX_TOTAL
) -> list[PngChunk]:
    """Parse and validate every chunk of a PNG up to and including IEND."""
    _check_header(data, max_total_size)
    chunks: list[PngChunk] = []
    pos = len(PNG_SIGNATURE)
    while True:
        chunk = _read_one(data, pos, max_chunk_size)
        if not chunks and chunk.type != b"IHDR":
            raise InvalidInput("PNG does not start with an IHDR chunk")
        chunks.append(chunk)
        pos += 12 + len(chunk.data)
        if chunk.type == b"IEND":
            return chunks


def _inflate(compressed: bytes, label: str, limit: int) -> bytes:
    """Decompress zlib data, refusing output larger than `limit`."""
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(compressed, limit + 1)
    except zlib.error as e:
        raise InvalidInput(f"'{label}' chunk cannot be decompressed: {e}") from e
    if len(out) > limit:
        raise InvalidInput(f"'{label}' chunk inflates to over the {size_label(limit)} limit")
    if not inflater.eof:
        raise InvalidInput(f"'{label}' chunk has truncated compressed data")
    return out


def _decode_ztxt(rest: bytes, keyword: str, limit: int) -> str:
    """Text of a zTXt chunk body (after the keyword and NUL)."""
    if not rest or rest[0] != 0:
        raise InvalidInput(f"'{keyword}' zTXt chunk uses an unknown compression method")
    return _inflate(rest[1:], keyword, limit).decode("latin-1")


def _decode_itxt(rest: bytes, keyword: str, limit: int) -> str:
    """Text of an iTXt chunk body (after the keyword and NUL)."""
    if len(rest) < 2:
        raise InvalidInput(f"'{keyword}' iTXt chunk is too short")
    flag, method = rest[0], rest[1]
    parts = rest[2:].split(b"\0", 2)
    if len(parts) != 3:
        raise InvalidInput(f"'{keyword}' iTXt chunk is missing its language or translated keyword")
    body = parts[2]
    if flag == 1:
        if method != 0:
            raise InvalidInput(f"'{keyword}' iTXt chunk uses an unknown compression method")
        body = _inflate(body, keyword, limit)
    elif flag != 0:
        raise InvalidInput(f"'{keyword}' iTXt chunk has an invalid compression flag")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InvalidInput(f"'{keyword}' iTXt chunk is not valid UTF-8") from e


def decode_text_chunk(chunk: PngChunk, *, max_text_size: int = DEFAULT_MAX_CHUNK) -> TextChunk:
    """Decode one tEXt/zTXt/iTXt chunk into keyword and text."""
    keyword = chunk.keyword()
    if keyword is None:
        raise InvalidInput(f"PNG {chunk.name} chunk at byte {chunk.offset} has no valid keyword")
    rest = chunk.data[len(keyword) + 1 :]
    if chunk.type == b"tEXt":
        text = rest.decode("latin-1")
    elif chunk.type == b"zTXt":
        text = _decode_ztxt(rest, keyword, max_text_size)
    else:
        text = _decode_itxt(rest, keyword, max_text_size)
    return TextChunk(keyword, text, chunk.name)


def read_text_chunks(
    data: bytes,
    *,
    keywords: Iterable[str] | None = None,
    max_chunk_size: int = DEFAULT_MAX_CHUNK,
    max_total_size: int = DEFAULT_MAX_TOTAL,
) -> list[TextChunk]:
    """Decode the text chunks of a PNG, in file order; only `keywords` (case-insensitive) if given.

    Text chunks without a readable keyword cannot be one asked for and are skipped.
    """
    wanted = None if keywords is None else {k.lower() for k in keywords}
    found: list[TextChunk] = []
    for chunk in read_chunks(data, max_chunk_size=max_chunk_size, max_total_size=max_total_size):
        keyword = chunk.keyword()
        if keyword is None or (wanted is not None and keyword.lower() not in wanted):
            continue
        found.append(decode_text_chunk(chunk, max_text_size=max_chunk_size))
    return found


def make_chunk(ctype: bytes, payload: bytes) -> bytes:
    """Serialize one chunk: length, type, payload and CRC."""
    crc = zlib.crc32(payload, zlib.crc32(ctype))
    return struct.pack(">I", len(payload)) + ctype + payload + struct.pack(">I", crc)


def make_text_chunk(keyword: str, text: str) -> bytes:
    """Serialize a tEXt chunk; keyword and text must be Latin-1."""
    if not 1 <= len(keyword) <= 79 or "\0" in keyword or keyword != keyword.strip():
        raise InvalidInput(f"PNG text keyword {keyword!r} is invalid (1-79 characters, no NUL)")
    try:
        payload = keyword.encode("latin-1") + b"\0" + text.encode("latin-1")
    except UnicodeEncodeError as e:
        raise InvalidInput(f"text for PNG keyword '{keyword}' is not Latin-1") from e
    return make_chunk(b"tEXt", payload)


def write_text_chunks(
    png: bytes,
    texts: Mapping[str, str] | Sequence[tuple[str, str]],
    *,
    remove: Iterable[str] = (),
    max_chunk_size: int = DEFAULT_MAX_CHUNK,
    max_total_size: int = DEFAULT_MAX_TOTAL,
) -> bytes:
    """Copy a PNG, dropping text chunks named in `texts` or `remove`, adding `texts` before IEND."""
    pairs = list(texts.items()) if isinstance(texts, Mapping) else list(texts)
    new_chunks = [make_text_chunk(keyword, text) for keyword, text in pairs]
    for keyword, raw in zip(pairs, new_chunks, strict=True):
        if len(raw) - 12 > max_chunk_size:
            raise InvalidInput(
                f"'{keyword[0]}' chunk would be {len(raw) - 12} bytes, over the {size_label(max_chunk_size)} limit"
            )
    drop = {k.lower() for k in remove} | {k.lower() for k, _ in pairs}
    out = [PNG_SIGNATURE]
    for chunk in read_chunks(png, max_chunk_size=max_chunk_size, max_total_size=max_total_size):
        name = chunk.keyword()
        if name is not None and name.lower() in drop:
            continue
        if chunk.type == b"IEND":
            out.extend(new_chunks)
        out.append(png[chunk.offset : chunk.offset + 12 + len(chunk.data)])
    return b"".join(out)


def strip_text_chunks(
    png: bytes,
    keywords: Iterable[str],
    *,
    max_chunk_size: int = DEFAULT_MAX_CHUNK,
    max_total_size: int = DEFAULT_MAX_TOTAL,
) -> bytes:
    """Copy a PNG without the text chunks whose keyword is in `keywords` (case-insensitive)."""
    return write_text_chunks(png, [], remove=keywords, max_chunk_size=max_chunk_size, max_total_size=max_total_size)
