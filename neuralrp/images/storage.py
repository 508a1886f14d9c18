"""Stored images: PNG files (with an A1111 `parameters` chunk) under images/, rows in `images`, tags."""

from __future__ import annotations

import io
import json
import logging
import os
import struct
import uuid
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from neuralrp.clock import iso
from neuralrp.db.connection import transaction
from neuralrp.errors import BackendBadResponse, InvalidInput, NotFound
from neuralrp.library.files import inside
from neuralrp.library.pngchunks import PNG_SIGNATURE, make_chunk, strip_text_chunks

log = logging.getLogger(__name__)

SOURCES = ("snapshot", "manual", "inpaint", "recreate")
MAX_IMAGE_PIXELS = 8192 * 8192  # the largest picture (mask, init image, server result) that is ever decoded
MAX_IMAGE_TEXT = "the limit of 8192x8192 pixels (67 megapixels)"
MAX_LIMIT = 200
FILE_REF = "file:"


@dataclass
class NewImage:
    """Everything known about a fresh generation, before it is stored."""

    source: str
    png: bytes
    request: dict[str, Any]
    prompt: str
    negative_prompt: str
    seed: int | None
    sampler: str | None
    scheduler: str | None
    steps: int | None
    cfg_scale: float | None
    model: str | None
    chat_id: int | None = None
    message_id: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)


class TooManyPixels(ValueError):
    """An image header names more pixels than PIL will even open."""


# --- PNG ------------------------------------------------------------------------------------------


def image_size(data: bytes) -> tuple[str, int, int]:
    """Format and size read from the header alone (nothing is decoded); ValueError when it is no image."""
    if data.startswith(PNG_SIGNATURE) and data[12:16] == b"IHDR" and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return "PNG", width, height
    try:
        with Image.open(io.BytesIO(data)) as image:  # lazy: reads the header only
            return str(image.format), image.size[0], image.size[1]
    except Image.DecompressionBombError as e:
        raise TooManyPixels(f"it is over {MAX_IMAGE_TEXT}") from e
    except (UnidentifiedImageError, OSError) as e:
        raise ValueError(str(e)) from e


def pixel_problem(width: int, height: int) -> str | None:
    """Why an image of this size is refused before decoding (over MAX_IMAGE_PIXELS), or None."""
    if width * height <= MAX_IMAGE_PIXELS:
        return None
    return f"it is {width}x{height} pixels, over {MAX_IMAGE_TEXT}"


def to_png(data: bytes) -> tuple[bytes, int, int]:
    """Decode the whole image (so a broken one is caught) and give it as PNG bytes with its size; ValueError if
    it cannot be decoded. CPU-heavy: call it on a worker thread, after the header passed `pixel_problem`."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            size = image.size
            if data.startswith(PNG_SIGNATURE):
                return data, size[0], size[1]
            out = io.BytesIO()
            image.save(out, "PNG")
            return out.getvalue(), size[0], size[1]
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as e:
        raise ValueError(str(e)) from e


def as_png(data: bytes) -> tuple[bytes, int, int]:
    """The server's image as PNG bytes (JPEG/WEBP converted) and its size; a 502 when it is no image or too big."""
    try:
        _, width, height = image_size(data)
        problem = pixel_problem(width, height)
    except TooManyPixels as e:
        problem = str(e)
    except ValueError as e:
        raise BackendBadResponse(f"The image server sent data that is not an image ({e}).", backend="images") from e
    if problem is not None:
        raise BackendBadResponse(f"The image server sent a picture NeuralRP does not decode: {problem}.",
                                 backend="images")
    try:
        return to_png(data)
    except ValueError as e:
        raise BackendBadResponse(f"The image server sent data that is not an image ({e}).", backend="images") from e


def _text_chunk(keyword: str, text: str) -> bytes:
    try:
        return make_chunk(b"tEXt", keyword.encode("latin-1") + b"\0" + text.encode("latin-1"))
    except UnicodeEncodeError:
        payload = keyword.encode("latin-1") + b"\0\0\0\0\0" + text.encode("utf-8")
        return make_chunk(b"iTXt", payload)


def with_parameters(png: bytes, infotext: str) -> bytes:
    """The PNG with its `parameters` text chunk replaced by `infotext` (tEXt, iTXt when not Latin-1)."""
    clean = strip_text_chunks(png, ["parameters"])
    iend = struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))
    if not clean.endswith(iend):
        raise InvalidInput("the generated PNG does not end with an IEND chunk")
    return clean[: -len(iend)] + _text_chunk("parameters", infotext) + iend


def _quote(value: Any) -> str:
    text = str(value)
    return json.dumps(text, ensure_ascii=False) if any(c in text for c in ',:"\n') else text


def infotext(img: NewImage, width: int, height: int) -> str:
    """A1111's infotext for the image: prompt, negative prompt, then `Key: value` pairs."""
    pairs = {"Steps": img.steps, "Sampler": img.sampler, "Schedule type": img.scheduler, "CFG scale": img.cfg_scale,
             "Seed": img.seed, "Size": f"{width}x{height}", "Model": img.model,
             "Denoising strength": img.request.get("denoising_strength") if img.source == "inpaint" else None,
             "Mask blur": img.request.get("mask_blur") if img.source == "inpaint" else None}
    lines = [img.prompt]
    if img.negative_prompt:
        lines.append(f"Negative prompt: {img.negative_prompt}")
    lines.append(", ".join(f"{k}: {_quote(v)}" for k, v in pairs.items() if v is not None and v != ""))
    return "\n".join(lines)


# --- files ----------------------------------------------------------------------------------------


def images_dir(data_dir: Path) -> Path:
    """The images/ folder of the data dir (created)."""
    folder = data_dir / "images"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def write_new_file(folder: Path, stem: str, data: bytes) -> str:
    """Write data to a new file `{stem}.png` (never overwriting); returns the file name."""
    name = f"{stem}.png"
    tmp = folder / f".{name}.tmp"
    tmp.write_bytes(data)
    fd = os.open(folder / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    os.close(fd)
    os.replace(tmp, folder / name)
    return name


def remove_file(folder: Path, name: str) -> None:
    """Delete a stored file (already gone is fine; a stored name that would leave images/ is never followed)."""
    try:
        inside(folder, name).unlink()
    except InvalidInput as e:
        log.warning("image file not deleted: %s", e.message)
    except FileNotFoundError:
        log.info("image file %s was already gone", name)


def read_file(folder: Path, name: str) -> bytes:
    """A stored file's bytes, or NotFound; InvalidInput when the stored name would leave images/."""
    path = inside(folder, name)
    if not path.is_file():
        raise NotFound(f"the image file {name} is missing from {folder}")
    return path.read_bytes()


# --- rows -----------------------------------------------------------------------------------------


def insert_image(conn: Any, folder: Path, img: NewImage) -> int:
    """Write the PNG (with its parameters chunk) and its row; returns the id. The file goes if the row fails."""
    png, width, height = as_png(img.png)
    uid = uuid.uuid4().hex
    name = write_new_file(folder, f"{img.source}-{uid}", with_parameters(png, infotext(img, width, height)))
    try:
        with transaction(conn):
            cur = conn.execute(
                "INSERT INTO images (uid, chat_id, message_id, file_name, source, prompt, negative_prompt, seed,"
                " sampler, scheduler, steps, cfg_scale, width, height, model, request_json, info_json, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (uid, img.chat_id, img.message_id, name, img.source, img.prompt, img.negative_prompt, img.seed,
                 img.sampler, img.scheduler, img.steps, img.cfg_scale, width, height, img.model,
                 json.dumps(img.request, ensure_ascii=False), json.dumps(img.meta, ensure_ascii=False), iso()))
    except BaseException:
        remove_file(folder, name)
        raise
    return int(cur.lastrowid)


def get_row(conn: Any, image_id: int) -> dict[str, Any]:
    """One image row, or NotFound."""
    row = conn.execute("SELECT * FROM images WHERE id = ?", (image_id,)).fetchone()
    if row is None:
        raise NotFound(f"image {image_id} does not exist")
    return dict(row)


def _tags_of(conn: Any, ids: list[int]) -> dict[int, list[str]]:
    if not ids:
        return {}
    marks = ", ".join("?" * len(ids))
    rows = conn.execute(f"SELECT it.image_id, t.name FROM image_tags it JOIN tags t ON t.id = it.tag_id"
                        f" WHERE it.image_id IN ({marks}) ORDER BY t.name COLLATE NOCASE", ids)
    out: dict[int, list[str]] = {}
    for row in rows:
        out.setdefault(row["image_id"], []).append(row["name"])
    return out


def _seqs_of(conn: Any, rows: list[dict[str, Any]]) -> dict[int, int]:
    ids = sorted({r["message_id"] for r in rows if r["message_id"] is not None})
    if not ids:
        return {}
    marks = ", ".join("?" * len(ids))
    return {r["id"]: r["seq"] for r in conn.execute(f"SELECT id, seq FROM messages WHERE id IN ({marks})", ids)}


def public(row: dict[str, Any], tags: list[str], seq: int | None) -> dict[str, Any]:
    """The API form of an image row (ImageOut)."""
    meta = json.loads(row["info_json"] or "{}")
    url = f"/api/images/{row['id']}/file"
    return {"id": row["id"], "uid": row["uid"], "url": url, "thumb_url": url, "chat_id": row["chat_id"],
            "message_id": row["message_id"], "message_seq": seq, "source": row["source"], "prompt": row["prompt"],
            "negative_prompt": row["negative_prompt"], "seed": row["seed"], "sampler": row["sampler"],
            "scheduler": row["scheduler"], "steps": row["steps"], "cfg_scale": row["cfg_scale"],
            "width": row["width"], "height": row["height"], "model": row["model"],
            "favorite": bool(row["favorite"]), "tags": tags, "created_at": row["created_at"],
            "request": json.loads(row["request_json"] or "{}"), "preset": meta.get("preset"),
            "keywords": meta.get("keywords")}


def publish(conn: Any, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows in API form, tags and message seqs looked up in two queries."""
    tags = _tags_of(conn, [r["id"] for r in rows])
    seqs = _seqs_of(conn, rows)
    return [public(r, tags.get(r["id"], []), seqs.get(r["message_id"])) for r in rows]


def image_public(conn: Any, image_id: int) -> dict[str, Any]:
    """One image in API form."""
    return publish(conn, [get_row(conn, image_id)])[0]


def list_images(conn: Any, *, chat_id: int | None = None, favorite: bool | None = None, tag: str | None = None,
                limit: int = 50, before_id: int | None = None) -> tuple[list[dict[str, Any]], int | None]:
    """Images newest first with filters; returns the page and the next `before_id` (None at the end)."""
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"'limit' must be between 1 and {MAX_LIMIT}")
    where: list[str] = ["1 = 1"]
    args: list[Any] = []
    for cond, arg, sql in [(chat_id is not None, chat_id, "chat_id = ?"), (favorite is not None,
                           int(bool(favorite)), "favorite = ?"), (before_id is not None, before_id, "id < ?")]:
        if cond:
            where.append(sql)
            args.append(arg)
    if tag:
        where.append("id IN (SELECT it.image_id FROM image_tags it JOIN tags t ON t.id = it.tag_id"
                     " WHERE t.name = ?)")
        args.append(tag.strip())
    rows = [dict(r) for r in conn.execute(f"SELECT * FROM images WHERE {' AND '.join(where)} ORDER BY id DESC"
                                          " LIMIT ?", (*args, limit + 1))]
    more = len(rows) > limit
    rows = rows[:limit]
    return publish(conn, rows), (rows[-1]["id"] if more else None)


def clean_tags(tags: Any) -> list[str]:
    """A list of tag strings, whitespace collapsed, deduplicated case-insensitively."""
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise InvalidInput("'tags' must be a list of strings")
    seen: dict[str, str] = {}
    for tag in tags:
        text = " ".join(tag.split())
        if len(text) > 100:
            raise InvalidInput(f"tag '{text[:30]}...' is longer than 100 characters")
        if text and text.casefold() not in seen:
            seen[text.casefold()] = text
    return list(seen.values())


def set_tags(conn: Any, image_id: int, tags: list[str]) -> None:
    """Make the image carry exactly these tags. Call inside a transaction."""
    conn.execute("DELETE FROM image_tags WHERE image_id = ?", (image_id,))
    for tag in tags:
        conn.execute("INSERT INTO tags (name) VALUES (?) ON CONFLICT (name) DO NOTHING", (tag,))
        tag_id = conn.execute("SELECT id FROM tags WHERE name = ?", (tag,)).fetchone()["id"]
        conn.execute("INSERT OR IGNORE INTO image_tags (image_id, tag_id) VALUES (?, ?)", (image_id, tag_id))


def update_image(conn: Any, image_id: int, *, favorite: bool | None, tags: list[str] | None) -> None:
    """Set the favourite flag and/or the tags."""
    with transaction(conn):
        get_row(conn, image_id)
        if favorite is not None:
            conn.execute("UPDATE images SET favorite = ? WHERE id = ?", (int(favorite), image_id))
        if tags is not None:
            set_tags(conn, image_id, tags)


def tag_counts(conn: Any) -> list[dict[str, Any]]:
    """Tags used on images with how many images carry each, most used first."""
    rows = conn.execute("SELECT t.name, count(*) AS count FROM image_tags it JOIN tags t ON t.id = it.tag_id"
                        " GROUP BY t.id ORDER BY count DESC, t.name COLLATE NOCASE")
    return [{"name": r["name"], "count": r["count"]} for r in rows]


def referenced_files(request: dict[str, Any]) -> list[str]:
    """Files of images/ that a stored request points at (`file:NAME` in init_images / mask)."""
    values = [*(request.get("init_images") or []), request.get("mask")]
    return [v[len(FILE_REF):] for v in values if isinstance(v, str) and v.startswith(FILE_REF)]


def delete_image(conn: Any, folder: Path, image_id: int) -> None:
    """Remove the row, its file and its mask file (unless another image's request still uses the mask)."""
    row = get_row(conn, image_id)
    request = json.loads(row["request_json"] or "{}")
    with transaction(conn):
        conn.execute("DELETE FROM images WHERE id = ?", (image_id,))
    remove_file(folder, row["file_name"])
    mask = request.get("mask")
    if isinstance(mask, str) and mask.startswith(FILE_REF):
        name = mask[len(FILE_REF):]
        users = conn.execute("SELECT count(*) AS n FROM images WHERE request_json LIKE ?",
                             (f"%{FILE_REF}{name}%",)).fetchone()["n"]
        if not users:
            remove_file(folder, name)
