"""The image service: manual generation, snapshots, inpainting, recreate, and the gallery's stored images."""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from neuralrp.backends import ProbeCache
from neuralrp.config import ImageSettings, Settings
from neuralrp.db import appstate
from neuralrp.db.connection import Database
from neuralrp.errors import BackendError, BackendUnavailable, NotFound
from neuralrp.images import b64, storage
from neuralrp.images.client import HOW_TO_ENABLE, A1111Client, Generated, ImageClient, ServerInfo
from neuralrp.images.client import for_server as client_for_server
from neuralrp.images.presets import apply_preset, chat_context_tokens, pick_preset
from neuralrp.images.storage import FILE_REF, NewImage
from neuralrp.llm.types import LLMBackend

log = logging.getLogger(__name__)

MANUAL_PROMPT_KEY = "images.manual_prompt"
MAX_SEED = 2**32 - 1
MAX_DECODES = 2
ClientFactory = Callable[[ImageSettings], ImageClient]


@dataclass
class Job:
    """One generation to run: the payload to send and what to store with the result."""

    source: str
    payload: dict[str, Any]
    chat_id: int | None = None
    message_id: int | None = None
    meta: dict[str, Any] | None = None
    stored_request: dict[str, Any] | None = None

    @property
    def img2img(self) -> bool:
        """Whether it goes to img2img (it has an init image)."""
        return bool(self.payload.get("init_images"))


def resolve_seed(seed: int | None) -> int:
    """A concrete seed: -1/None become a random one (so the stored payload recreates the same image)."""
    if seed is None or seed < 0:
        return random.randint(0, MAX_SEED)
    return seed


def base_payload(cfg: ImageSettings, prompt: str, **given: Any) -> dict[str, Any]:
    """A txt2img payload: the given values over the images.* defaults."""
    def pick(key: str, default: Any) -> Any:
        return default if given.get(key) is None else given[key]

    return {
        "prompt": prompt, "negative_prompt": pick("negative_prompt", cfg.negative_prompt),
        "seed": resolve_seed(given.get("seed")), "sampler_name": pick("sampler_name", cfg.sampler),
        "scheduler": pick("scheduler", cfg.scheduler), "steps": pick("steps", cfg.steps),
        "cfg_scale": pick("cfg_scale", cfg.cfg_scale), "width": pick("width", cfg.width),
        "height": pick("height", cfg.height), "batch_size": 1, "n_iter": 1, "send_images": True,
        "save_images": False,
    }


def for_server(payload: dict[str, Any], info: ServerInfo) -> dict[str, Any]:
    """The payload as this server takes it, with the values it really uses (neuralrp/images/client.py)."""
    return client_for_server(payload, info)


class ImageService:
    """Talks to the image server through an ImageClient and stores what comes back."""

    def __init__(self, db: Database, settings: Callable[[], Settings], llm: Callable[[], LLMBackend | None],
                 *, transport: httpx.AsyncBaseTransport | None = None,
                 client_factory: ClientFactory | None = None) -> None:
        self.db = db
        self.settings = settings
        self.llm = llm
        self._factory = client_factory or (lambda cfg: A1111Client(
            cfg.base_url or "", timeout_s=cfg.timeout_s, transport=transport,
            auth=(cfg.username, cfg.password or "") if cfg.username else None))
        self._client: ImageClient | None = None
        self._client_key: tuple[Any, ...] | None = None
        self._retired: list[ImageClient] = []
        self.in_flight = 0
        # decoding a picture can take hundreds of MB: only this many at once (the rest wait their turn)
        self.decode_slots = asyncio.Semaphore(MAX_DECODES)
        self.status_cache = ProbeCache()  # the status page's last look at the server

    @property
    def folder(self) -> Path:
        """The images/ folder of the data dir."""
        return storage.images_dir(self.settings().data_dir)

    def client(self) -> ImageClient:
        """The client for the configured server (rebuilt when images.base_url changes); 503 when none is set."""
        cfg = self.settings().images
        if not cfg.base_url:
            raise BackendUnavailable("No image server is configured. " + HOW_TO_ENABLE, backend="images")
        key = (cfg.base_url, cfg.timeout_s, cfg.username, cfg.password)
        if self._client is None or self._client_key != key:
            if self._client is not None:
                self._retired.append(self._client)
            self._client, self._client_key = self._factory(cfg), key
        return self._client

    async def aclose(self) -> None:
        """Close the clients."""
        for client in [*self._retired, *([self._client] if self._client else [])]:
            await client.aclose()
        self._retired, self._client = [], None

    # --- server facts -----------------------------------------------------------------------------

    async def status(self) -> dict[str, Any]:
        """Whether a server is configured and reachable, which kind and model; never raises."""
        cfg = self.settings().images
        if not cfg.base_url:
            return {"configured": False, "reachable": False, "backend": None, "model": None,
                    "detail": "No image server is configured.", "how_to_enable": HOW_TO_ENABLE}
        try:
            info = await self.client().detect(refresh=True)
        except BackendError as e:
            return {"configured": True, "reachable": False, "backend": None, "model": None, "detail": e.message,
                    "how_to_enable": HOW_TO_ENABLE}
        return {"configured": True, "reachable": True, "backend": info.kind, "model": info.model,
                "detail": f"{info.kind} at {cfg.base_url} with model {info.model or '(none)'}",
                "how_to_enable": HOW_TO_ENABLE}

    async def options(self) -> dict[str, Any]:
        """Samplers, schedulers, models, size presets and defaults for the image panel."""
        client = self.client()
        info = await client.detect(refresh=True)
        samplers, schedulers = await asyncio.gather(client.samplers(), client.schedulers())
        cfg = self.settings().images
        return {"samplers": samplers, "schedulers": schedulers, "models": info.models, "model": info.model,
                "backend": info.kind, "size_presets": [p.model_dump() for p in cfg.size_presets],
                "defaults": {"steps": cfg.steps, "cfg_scale": cfg.cfg_scale, "sampler_name": cfg.sampler,
                             "scheduler": cfg.scheduler if info.kind != "koboldcpp" else None,
                             "width": cfg.width, "height": cfg.height, "negative_prompt": cfg.negative_prompt}}

    async def progress(self) -> dict[str, Any]:
        """The running job's progress; our own in-flight count where the server reports none."""
        ours = self.in_flight > 0
        theirs = None
        if self.settings().images.base_url:
            try:
                theirs = await self.client().progress()
            except BackendError as e:
                log.debug("no progress from the image server: %s", e.message)
        if theirs is None or not theirs.active:
            return {"active": ours, "progress": 0.0, "eta_s": None, "step": None, "steps": None}
        return {"active": True, "progress": theirs.progress, "eta_s": theirs.eta_s, "step": theirs.step,
                "steps": theirs.steps}

    async def interrupt(self) -> dict[str, bool]:
        """Ask the server to stop the running job."""
        if not self.settings().images.base_url:
            return {"interrupted": False}
        return {"interrupted": await self.client().interrupt()}

    # --- running ----------------------------------------------------------------------------------

    def with_preset(self, payload: dict[str, Any], chat_id: int | None, skip: bool) -> tuple[dict[str, Any],
                                                                                              str | None]:
        """The payload with the performance preset applied when the chat's context is large; and its name."""
        with self.db.session() as conn:
            tokens = chat_context_tokens(conn, chat_id)
        preset = pick_preset(self.settings().images, tokens, skip=skip)
        if preset is None:
            return payload, None
        log.info("image preset %s applied (chat context %d tokens)", preset.name, tokens)
        return apply_preset(payload, preset), preset.name

    async def run(self, job: Job) -> dict[str, Any]:
        """Send the job to the server, store the image with its metadata; the stored image in API form."""
        client = self.client()
        info = await client.detect()
        payload = for_server(job.payload, info)
        self.in_flight += 1
        try:
            result = await (client.img2img(payload) if job.img2img else client.txt2img(payload))
        finally:
            self.in_flight -= 1
        async with self.decode_slots:
            image_id = await asyncio.to_thread(self._store, job, payload, result, info)
        return await self.db.run(storage.image_public, image_id)

    def _store(self, job: Job, payload: dict[str, Any], result: Generated, info: ServerInfo) -> int:
        got = result.info
        request = job.stored_request if job.stored_request is not None else payload
        new = NewImage(
            source=job.source, png=result.image, request=request, prompt=str(got.get("prompt") or payload["prompt"]),
            negative_prompt=str(got.get("negative_prompt") or payload.get("negative_prompt") or ""),
            seed=got.get("seed") if isinstance(got.get("seed"), int) else payload.get("seed"),
            sampler=got.get("sampler_name") or payload.get("sampler_name"), scheduler=payload.get("scheduler"),
            steps=got.get("steps") or payload.get("steps"), cfg_scale=got.get("cfg_scale") or payload.get("cfg_scale"),
            model=got.get("sd_model_name") or info.model, chat_id=job.chat_id, message_id=job.message_id,
            meta={"backend": info.kind, **(job.meta or {})})
        with self.db.session() as conn:
            return storage.insert_image(conn, self.folder, new)

    # --- stored images ----------------------------------------------------------------------------

    def get(self, image_id: int) -> dict[str, Any]:
        """One stored image in API form."""
        with self.db.session() as conn:
            return storage.image_public(conn, image_id)

    def row(self, image_id: int) -> dict[str, Any]:
        """One stored image row."""
        with self.db.session() as conn:
            return storage.get_row(conn, image_id)

    def file_bytes(self, image_id: int) -> bytes:
        """The stored PNG."""
        return storage.read_file(self.folder, self.row(image_id)["file_name"])

    def expand(self, request: dict[str, Any]) -> dict[str, Any]:
        """A stored request with its `file:NAME` references replaced by the files' base64."""
        def load(value: Any) -> Any:
            if isinstance(value, str) and value.startswith(FILE_REF):
                try:
                    data = storage.read_file(self.folder, value[len(FILE_REF):])
                except NotFound as e:
                    raise NotFound(f"{e.message}; the image it was made from was deleted, so it cannot be "
                                   "recreated") from e
                return b64.encode(data)
            return value

        out = dict(request)
        if out.get("init_images"):
            out["init_images"] = [load(v) for v in out["init_images"]]
        if "mask" in out:
            out["mask"] = load(out["mask"])
        return out

    async def recreate(self, image_id: int) -> dict[str, Any]:
        """Send the stored request again; the new image keeps the original's chat, message, preset and keywords."""
        row = await self.db.run(storage.get_row, image_id)
        request = json.loads(row["request_json"] or "{}")
        if not request.get("prompt") and not request.get("init_images"):
            raise NotFound(f"image {image_id} has no stored request to recreate it from")
        meta = json.loads(row["info_json"] or "{}")
        keep = {k: meta[k] for k in ("preset", "keywords", "keywords_source") if k in meta}
        job = Job("recreate", await asyncio.to_thread(self.expand, request), row["chat_id"], row["message_id"],
                  {**keep, "recreated_from": image_id}, stored_request=request)
        return await self.run(job)

    def page(self, **filters: Any) -> dict[str, Any]:
        """A page of stored images, newest first."""
        with self.db.session() as conn:
            images, next_id = storage.list_images(conn, **filters)
        return {"images": images, "next_before_id": next_id}

    def update(self, image_id: int, *, favorite: bool | None, tags: list[str] | None) -> dict[str, Any]:
        """Favourite flag and tags."""
        with self.db.session() as conn:
            storage.update_image(conn, image_id, favorite=favorite,
                                 tags=storage.clean_tags(tags) if tags is not None else None)
            return storage.image_public(conn, image_id)

    def tags(self) -> list[dict[str, Any]]:
        """Image tags with counts."""
        with self.db.session() as conn:
            return storage.tag_counts(conn)

    def delete(self, image_id: int) -> None:
        """Remove the row and the file."""
        with self.db.session() as conn:
            storage.delete_image(conn, self.folder, image_id)

    # --- the remembered manual prompt -------------------------------------------------------------

    def manual_prompt(self) -> dict[str, Any]:
        """The last manual prompt (defaults when none was used yet)."""
        cfg = self.settings().images
        default = {"prompt": "", "negative_prompt": cfg.negative_prompt, "width": cfg.width, "height": cfg.height}
        with self.db.session() as conn:
            stored = appstate.get_value(conn, MANUAL_PROMPT_KEY)
        return {**default, **(stored if isinstance(stored, dict) else {})}

    def remember_prompt(self, prompt: str, negative: str, width: int, height: int) -> None:
        """Keep the manual prompt for the next time the panel opens."""
        value = {"prompt": prompt, "negative_prompt": negative, "width": width, "height": height}
        with self.db.session() as conn:
            appstate.set_value(conn, MANUAL_PROMPT_KEY, value)
