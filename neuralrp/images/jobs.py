"""Building generation jobs: a manual prompt, a chat snapshot, an inpainting of a stored image."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any

from neuralrp.chats import store
from neuralrp.db.connection import Connection
from neuralrp.errors import InvalidInput, PayloadTooLarge
from neuralrp.images import b64, storage
from neuralrp.images.prompting import Subject, snapshot_prompt, subject_of, substitute_names, user_subject
from neuralrp.images.scene import SNAPSHOT_MESSAGES, extract_keywords
from neuralrp.images.service import ImageService, Job, base_payload, resolve_seed
from neuralrp.library import characters as chars
from neuralrp.library.pngchunks import PNG_SIGNATURE

MAX_PICTURED = 3
MAX_PROMPT_CHARS = 4000
MASK_FORMATS = ("PNG", "JPEG", "WEBP")
INPAINT_DEFAULTS: dict[str, Any] = {"denoising_strength": 0.75, "mask_blur": 4, "inpainting_fill": 1,
                                    "inpaint_full_res": False, "inpaint_full_res_padding": 32,
                                    "inpainting_mask_invert": 0}


# --- manual ---------------------------------------------------------------------------------------


def manual_job(service: ImageService, body: dict[str, Any]) -> Job:
    """A txt2img job from the image panel: `[Name]` replaced, preset applied for large chats, prompt remembered."""
    raw = str(body.get("prompt") or "").strip()
    if not raw:
        raise InvalidInput("'prompt' is empty; describe the image (use [Name] for a character's looks)")
    if len(raw) > MAX_PROMPT_CHARS:
        raise InvalidInput(f"'prompt' is {len(raw)} characters long; the limit is {MAX_PROMPT_CHARS}")
    chat_id, message_id = body.get("chat_id"), body.get("message_id")
    with service.db.session() as conn:
        if chat_id is not None:
            store.get_chat(conn, chat_id)
        if message_id is not None:
            message = store.get_message(conn, message_id)
            if chat_id is not None and message.chat_id != chat_id:
                raise InvalidInput(f"message {message_id} is not in chat {chat_id}")
            chat_id = message.chat_id
        prompt = substitute_names(conn, raw, chat_id)
    cfg = service.settings().images
    given = {k: body.get(k) for k in ("negative_prompt", "seed", "sampler_name", "scheduler", "steps", "cfg_scale",
                                      "width", "height")}
    payload, preset = service.with_preset(base_payload(cfg, prompt, **given), chat_id, bool(body.get("skip_preset")))
    service.remember_prompt(raw, payload["negative_prompt"], int(given["width"] or cfg.width),
                            int(given["height"] or cfg.height))
    return Job("manual", payload, chat_id, message_id, {"preset": preset, "typed_prompt": raw})


# --- snapshot -------------------------------------------------------------------------------------


@dataclass
class Scene:
    """What a snapshot pictures and reads."""

    subjects: list[Subject]
    character_ids: list[int]
    lines: list[tuple[str, str]]
    hidden_names: list[str]
    message_id: int


def _default_pictured(conn: Connection, chat: store.Chat, recent: list[store.Message]) -> list[int]:
    """Focus mode: the focus character; else the (up to 3) latest speakers of the active cast, in cast order."""
    active = [m.character_id for m in store.cast_members(conn, chat.id) if m.is_active]
    if not active:
        raise InvalidInput("nobody in this chat's cast is active, so there is nobody to picture")
    if chat.mode == "focus":
        return [chat.focus_character_id if chat.focus_character_id in active else active[0]]
    spoke: list[int] = []
    for message in reversed(recent):
        cid = message.character_id
        if message.role == "assistant" and cid in active and cid not in spoke:
            spoke.append(cid)
    latest = spoke[:MAX_PICTURED]
    return [cid for cid in active if cid in latest] or active[:1]


def _pictured(conn: Connection, chat: store.Chat, recent: list[store.Message],
              wanted: list[int] | None) -> list[int]:
    if wanted is None:
        return _default_pictured(conn, chat, recent)
    if not wanted or len(wanted) > MAX_PICTURED:
        raise InvalidInput(f"'character_ids' must list 1 to {MAX_PICTURED} characters of the chat's cast")
    cast = {m.character_id for m in store.cast_members(conn, chat.id)}
    for cid in wanted:
        if cid not in cast:
            raise InvalidInput(f"character {cid} is not in chat {chat.id}'s cast")
    return list(dict.fromkeys(wanted))


def snapshot_scene(conn: Connection, chat_id: int, wanted: list[int] | None, include_user: bool, cfg: Any) -> Scene:
    """Who is pictured, the last 20 messages, and the message the snapshot belongs to."""
    chat = store.get_chat(conn, chat_id)
    recent = [m for m in store.list_messages(conn, chat_id, limit=SNAPSHOT_MESSAGES)
              if m.role != "system" and m.status != "streaming"]
    if not recent:
        raise InvalidInput("this chat has no messages yet, so there is no scene to picture")
    ids = _pictured(conn, chat, recent, wanted)
    subjects = [subject_of(chars.get_character(conn, cid)) for cid in ids]
    user_name = chat.user_name
    if include_user:
        subjects.append(user_subject(cfg, user_name))
    names = [m.name for m in store.cast_members(conn, chat_id)] + [user_name]
    lines = [(m.speaker_name or m.role, m.content) for m in recent]
    return Scene(subjects, ids, lines, names, recent[-1].id)


async def snapshot_job(service: ImageService, chat_id: int, body: dict[str, Any]) -> Job:
    """A txt2img job picturing the chat's current moment; nothing of it is written into the chat."""
    cfg = service.settings().images
    include_user = cfg.user_in_shot if body.get("include_user") is None else bool(body["include_user"])
    scene = await service.db.run(snapshot_scene, chat_id, body.get("character_ids"), include_user, cfg)
    keywords = await extract_keywords(service.llm(), scene.lines, scene.hidden_names)
    prompt = snapshot_prompt(cfg.quality_tags, scene.subjects, keywords.values)
    given = {"width": body.get("width"), "height": body.get("height")}
    payload, preset = await asyncio.to_thread(service.with_preset, base_payload(cfg, prompt, **given), chat_id,
                                              False)
    meta = {"preset": preset, "keywords": keywords.values, "keywords_source": keywords.source,
            "character_ids": scene.character_ids, "include_user": include_user}
    return Job("snapshot", payload, chat_id, scene.message_id, meta)


# --- inpaint --------------------------------------------------------------------------------------


def mask_bytes(value: Any, size: tuple[int, int]) -> bytes:
    """The mask's bytes from a data URL (or raw base64), checked from its header alone: a PNG, JPEG or WebP
    image exactly the picture's size and within the pixel limit. A PNG's size is in its first 24 bytes, so a
    PNG that is too big is refused before the rest is even base64-decoded."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput("'mask' is missing: send the mask as a PNG data URL (white = repaint)")
    text = value.partition(",")[2] if value.startswith("data:") else value
    try:
        head = b64.decode(text[:32])
        if head.startswith(PNG_SIGNATURE):
            _check_mask(storage.image_size(head), size)
        data = b64.decode(text)
        _check_mask(storage.image_size(data), size)
    except storage.TooManyPixels as e:
        raise PayloadTooLarge(f"'mask' is refused: {e}") from e
    except ValueError as e:  # binascii.Error is one
        raise InvalidInput("'mask' is not a base64 PNG image") from e
    return data


def _check_mask(header: tuple[str, int, int], size: tuple[int, int]) -> None:
    """Refuse a mask by its header: not PNG/JPEG/WebP (422), over the pixel limit (413), not the image's size."""
    kind, width, height = header
    if kind not in MASK_FORMATS:
        raise InvalidInput(f"'mask' is a {kind} image; send a PNG (or JPEG/WebP) data URL")
    problem = storage.pixel_problem(width, height)
    if problem is not None:
        raise PayloadTooLarge(f"'mask' is refused: {problem}")
    if (width, height) != size:
        raise InvalidInput(f"'mask' is {width}x{height} but the image is {size[0]}x{size[1]}; "
                           "draw the mask at the image's size")


def decode_mask(data: bytes) -> bytes:
    """The checked mask decoded in full (a broken one is refused) as PNG bytes; CPU-heavy, for a worker thread."""
    try:
        png, _, _ = storage.to_png(data)
    except ValueError as e:
        raise InvalidInput("'mask' is not a base64 PNG image") from e
    return png


def inpaint_job(service: ImageService, row: dict[str, Any], mask_data: bytes,
                body: dict[str, Any]) -> tuple[Job, str]:
    """An img2img job repainting the masked part of a stored image, and the file the mask was kept in.

    Decodes the mask, reads the picture and encodes both: run it on a worker thread.
    """
    mask = decode_mask(mask_data)
    source_png = storage.read_file(service.folder, row["file_name"])
    mask_name = storage.write_new_file(service.folder, f"mask-{uuid.uuid4().hex}", mask)
    cfg = service.settings().images
    payload = {
        "prompt": str(body.get("prompt") or row["prompt"]),
        "negative_prompt": str(body.get("negative_prompt") if body.get("negative_prompt") is not None
                               else row["negative_prompt"]),
        **{k: body.get(k, v) if body.get(k) is not None else v for k, v in INPAINT_DEFAULTS.items()},
        "resize_mode": 0, "seed": resolve_seed(body.get("seed")),
        "sampler_name": body.get("sampler_name") or row["sampler"] or cfg.sampler,
        "scheduler": row["scheduler"], "steps": body.get("steps") or row["steps"] or cfg.steps,
        "cfg_scale": body.get("cfg_scale") or row["cfg_scale"] or cfg.cfg_scale,
        "width": row["width"], "height": row["height"], "batch_size": 1, "n_iter": 1, "send_images": True,
        "save_images": False,
    }
    stored = {**payload, "init_images": [storage.FILE_REF + row["file_name"]], "mask": storage.FILE_REF + mask_name}
    sent = {**payload, "init_images": [b64.encode(source_png)], "mask": b64.encode(mask)}
    meta = {"inpainted_from": row["id"], "preset": None}
    return Job("inpaint", sent, row["chat_id"], row["message_id"], meta, stored_request=stored), mask_name


async def inpaint(service: ImageService, image_id: int, body: dict[str, Any]) -> dict[str, Any]:
    """Run an inpainting; the mask is checked from its header before any decoding, decoded on a worker thread
    (a bounded number at a time), and its file is removed again when the generation fails."""
    row = await service.db.run(storage.get_row, image_id)
    data = await asyncio.to_thread(mask_bytes, body.get("mask"), (row["width"], row["height"]))
    async with service.decode_slots:
        job, mask_name = await asyncio.to_thread(inpaint_job, service, row, data, body)
    try:
        return await service.run(job)
    except BaseException:
        await asyncio.to_thread(storage.remove_file, service.folder, mask_name)
        raise
