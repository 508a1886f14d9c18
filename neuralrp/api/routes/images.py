"""Image routes: server status and options, generate, snapshot, inpaint, recreate, and the gallery."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from neuralrp.api.bodies import OffLoopJSONRoute
from neuralrp.api.deps import get_services
from neuralrp.images import jobs
from neuralrp.images.service import ImageService

router = APIRouter(tags=["images"], route_class=OffLoopJSONRoute)


class GenerateBody(BaseModel):
    """A manual generation from the image panel."""

    prompt: str = Field(max_length=jobs.MAX_PROMPT_CHARS)
    negative_prompt: str | None = Field(None, max_length=jobs.MAX_PROMPT_CHARS)
    width: int | None = Field(None, ge=64, le=4096)
    height: int | None = Field(None, ge=64, le=4096)
    steps: int | None = Field(None, ge=1, le=150)
    cfg_scale: float | None = Field(None, ge=1, le=30)
    sampler_name: str | None = None
    scheduler: str | None = None
    seed: int | None = Field(None, ge=-1, le=2**32 - 1)
    chat_id: int | None = None
    message_id: int | None = None
    skip_preset: bool = False


class SnapshotBody(BaseModel):
    """Who to picture (default: the focus character, or the cast who spoke lately) and the size."""

    character_ids: list[int] | None = None
    include_user: bool | None = None
    width: int | None = Field(None, ge=64, le=4096)
    height: int | None = Field(None, ge=64, le=4096)


class InpaintBody(BaseModel):
    """A mask (white = repaint) and img2img parameters."""

    mask: str
    prompt: str | None = Field(None, max_length=jobs.MAX_PROMPT_CHARS)
    negative_prompt: str | None = Field(None, max_length=jobs.MAX_PROMPT_CHARS)
    denoising_strength: float | None = Field(None, ge=0, le=1)
    mask_blur: int | None = Field(None, ge=0, le=64)
    inpainting_fill: int | None = Field(None, ge=0, le=3)
    inpaint_full_res: bool | None = None
    inpaint_full_res_padding: int | None = Field(None, ge=0, le=256)
    inpainting_mask_invert: int | None = Field(None, ge=0, le=1)
    steps: int | None = Field(None, ge=1, le=150)
    cfg_scale: float | None = Field(None, ge=1, le=30)
    sampler_name: str | None = None
    seed: int | None = Field(None, ge=-1, le=2**32 - 1)


class ImagePatch(BaseModel):
    """Favourite flag and/or tags."""

    favorite: bool | None = None
    tags: list[str] | None = None


def _images(request: Request) -> ImageService:
    return get_services(request).images


@router.get("/api/images/status")
async def image_status(request: Request) -> dict[str, Any]:
    """Whether an image server is configured and reachable; how to enable one."""
    return await _images(request).status()


@router.get("/api/images/options")
async def image_options(request: Request) -> dict[str, Any]:
    """Samplers, schedulers, models, size presets and defaults (503 when no server)."""
    return await _images(request).options()


@router.get("/api/images/progress")
async def image_progress(request: Request) -> dict[str, Any]:
    """The running generation's progress."""
    return await _images(request).progress()


@router.post("/api/images/interrupt")
async def interrupt(request: Request) -> dict[str, bool]:
    """Stop the running generation (not possible on KoboldCpp)."""
    return await _images(request).interrupt()


@router.get("/api/images/manual-prompt")
def manual_prompt(request: Request) -> dict[str, Any]:
    """The last manual prompt, negative prompt and size."""
    return _images(request).manual_prompt()


@router.get("/api/images/tags")
def image_tags(request: Request) -> list[dict[str, Any]]:
    """Tags on images with counts."""
    return _images(request).tags()


@router.get("/api/images")
def list_images(request: Request, chat_id: int | None = None, favorite: bool | None = None, tag: str | None = None,
                limit: int = 50, before_id: int | None = None) -> dict[str, Any]:
    """Stored images, newest first, filtered; `next_before_id` pages on."""
    return _images(request).page(chat_id=chat_id, favorite=favorite, tag=tag, limit=limit, before_id=before_id)


@router.post("/api/images/generate", status_code=201)
async def generate(body: GenerateBody, request: Request) -> dict[str, Any]:
    """Generate from a prompt (`[Name]` becomes that character's visual tags)."""
    service = _images(request)
    job = await asyncio.to_thread(jobs.manual_job, service, body.model_dump())
    return await service.run(job)


@router.post("/api/chats/{chat_id}/snapshot", status_code=201)
async def snapshot(chat_id: int, request: Request, body: SnapshotBody | None = None) -> dict[str, Any]:
    """Picture the chat's current moment; attached to its last message, never part of the chat prompt."""
    service = _images(request)
    job = await jobs.snapshot_job(service, chat_id, (body or SnapshotBody()).model_dump())
    return await service.run(job)


@router.get("/api/images/{image_id:int}")
def get_image(image_id: int, request: Request) -> dict[str, Any]:
    """One stored image with its metadata."""
    return _images(request).get(image_id)


@router.get("/api/images/{image_id:int}/file")
def image_file(image_id: int, request: Request) -> Response:
    """The stored PNG (with its `parameters` chunk)."""
    data = _images(request).file_bytes(image_id)
    return Response(data, media_type="image/png", headers={"Cache-Control": "private, max-age=86400"})


@router.patch("/api/images/{image_id:int}")
def update_image(image_id: int, body: ImagePatch, request: Request) -> dict[str, Any]:
    """Set favourite and/or tags."""
    return _images(request).update(image_id, favorite=body.favorite, tags=body.tags)


@router.delete("/api/images/{image_id:int}")
def delete_image(image_id: int, request: Request) -> dict[str, bool]:
    """Remove the image's row and file."""
    _images(request).delete(image_id)
    return {"deleted": True}


@router.post("/api/images/{image_id:int}/inpaint", status_code=201)
async def inpaint(image_id: int, body: InpaintBody, request: Request) -> dict[str, Any]:
    """Repaint the masked part of a stored image (img2img with a mask)."""
    return await jobs.inpaint(_images(request), image_id, body.model_dump())


@router.post("/api/images/{image_id:int}/recreate", status_code=201)
async def recreate(image_id: int, request: Request) -> dict[str, Any]:
    """Send the image's stored request again."""
    return await _images(request).recreate(image_id)
