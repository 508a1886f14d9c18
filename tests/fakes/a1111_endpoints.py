"""The fake A1111's non-generation endpoints: models, samplers, schedulers, options, progress, interrupt,
skip, png-info, the no-`--api` page and KoboldCpp's version; plus A1111's error body and the running `Job`.

`A1111Endpoints` is a mixin for `FakeA1111`, which supplies the state declared on it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from .a1111_params import A1111_SAMPLERS, KOBOLD_SAMPLERS, SCHEDULERS
from .a1111_png import decode_image, parse_infotext, png_text
from .base import parse_json


def a1111_error(status: int, error: str | None = None, detail: str = "", errors: str = "") -> JSONResponse:
    """A1111's custom error response `{"error", "detail", "body", "errors"}`."""
    name = error or ("HTTPException" if detail or status < 500 else "RuntimeError")
    return JSONResponse({"error": name, "detail": detail, "body": "", "errors": errors}, status_code=status)


@dataclass(eq=False)
class Job:
    """A running generation, for /progress and /interrupt."""

    name: str
    steps: int
    duration: float
    start: float = field(default_factory=time.monotonic)
    interrupted: bool = False
    skipped: bool = False

    def fraction(self) -> float:
        """Progress as A1111 reports it (0.01 .. 0.99 while running)."""
        if self.duration <= 0:
            return 0.01
        return min(0.99, max(0.01, (time.monotonic() - self.start) / self.duration))


class A1111Endpoints:
    """Handlers of the A1111 (and KoboldCpp look-alike) info, options and progress endpoints."""

    variant: str
    models: list[dict[str, Any]]
    options: dict[str, Any]
    job: Job | None
    last_job: Job | None
    interrupts: int
    kobold_version: str

    def _initial_options(self) -> dict[str, Any]:
        """The settings dict GET /options returns."""
        name = self.models[0]["title"] if self.models else None
        if self.variant == "koboldcpp":
            return {"samples_format": "png", "sd_model_checkpoint": name}
        return {"sd_model_checkpoint": name, "sd_vae": "Automatic", "CLIP_stop_at_last_layers": 1,
                "samples_format": "png", "enable_pnginfo": True, "return_grid": True,
                "show_progress_every_n_steps": 10, "live_previews_enable": True}

    async def _sd_models(self, request: Request) -> list[dict[str, Any]]:
        """GET /sdapi/v1/sd-models."""
        return self.models

    async def _samplers(self, request: Request) -> list[dict[str, Any]]:
        """GET /sdapi/v1/samplers (KoboldCpp: fixed list, empty without an image model)."""
        if self.variant == "koboldcpp":
            return KOBOLD_SAMPLERS if self.models else []
        return A1111_SAMPLERS

    async def _schedulers(self, request: Request) -> list[dict[str, Any]]:
        """GET /sdapi/v1/schedulers."""
        return SCHEDULERS

    async def _empty_list(self, request: Request) -> list[Any]:
        """Routes that answer an empty list here."""
        return []

    async def _get_options(self, request: Request) -> dict[str, Any]:
        """GET /sdapi/v1/options."""
        return self.options

    async def _post_options(self, request: Request) -> Response:
        """POST /sdapi/v1/options: change settings; unknown checkpoint -> 500 RuntimeError."""
        body = parse_json(await request.body())
        if not isinstance(body, dict):
            return JSONResponse({"detail": [{"loc": ["body"], "msg": "value is not a valid dict",
                                             "type": "type_error.dict"}]}, status_code=422)
        if "sd_model_checkpoint" in body:
            model = self._find_model(body["sd_model_checkpoint"])
            if model is None:
                return a1111_error(500, "RuntimeError", "", f"model '{body['sd_model_checkpoint']}' not found")
            body = {**body, "sd_model_checkpoint": model["title"]}
        self.options.update(body)
        return JSONResponse(None)

    def _find_model(self, alias: Any) -> dict[str, Any] | None:
        """A checkpoint by title, model name, file name or hash."""
        for model in self.models:
            names = {model["title"], model["model_name"], model["filename"], model["filename"].rsplit("/", 1)[-1],
                     model["hash"], model["sha256"]}
            if alias in names - {None}:
                return model
        return None

    async def _progress(self, request: Request) -> dict[str, Any]:
        """GET /sdapi/v1/progress."""
        job = self.job
        state = {"skipped": False, "interrupted": bool(self.last_job and self.last_job.interrupted),
                 "stopping_generation": False, "job": "", "job_count": 0,
                 "job_timestamp": time.strftime("%Y%m%d%H%M%S"), "job_no": 0, "sampling_step": 0,
                 "sampling_steps": 0}
        if job is None:
            return {"progress": 0.0, "eta_relative": 0.0, "state": state, "current_image": None, "textinfo": None}
        fraction = job.fraction()
        state.update(job=job.name, job_count=1, interrupted=job.interrupted, skipped=job.skipped,
                     sampling_step=int(fraction * job.steps), sampling_steps=job.steps)
        eta = max(0.0, job.duration - (time.monotonic() - job.start))
        return {"progress": fraction, "eta_relative": eta, "state": state, "current_image": None,
                "textinfo": None}

    async def _interrupt(self, request: Request) -> dict[str, Any]:
        """POST /sdapi/v1/interrupt: end the running job early."""
        self.interrupts += 1
        if self.job is not None:
            self.job.interrupted = True
        return {}

    async def _skip(self, request: Request) -> Response:
        """POST /sdapi/v1/skip."""
        if self.job is not None:
            self.job.skipped = True
        return JSONResponse(None)

    async def _png_info(self, request: Request) -> Response:
        """POST /sdapi/v1/png-info: read the `parameters` chunk back."""
        body = parse_json(await request.body())
        try:
            data = decode_image(body.get("image") if isinstance(body, dict) else None)
        except ValueError:
            return a1111_error(500, "HTTPException", "Invalid encoded image")
        items = png_text(data)
        info = items.pop("parameters", "")
        return JSONResponse({"info": info, "items": items, "parameters": parse_infotext(info) if info else {}})

    async def _webui_page(self, request: Request) -> HTMLResponse:
        """GET / of a webui without --api."""
        return HTMLResponse("<!doctype html><title>Stable Diffusion</title><gradio-app></gradio-app>")

    async def _kcpp_version(self, request: Request) -> dict[str, Any]:
        """GET /api/extra/version (KoboldCpp)."""
        return {"result": "KoboldCpp", "version": self.kobold_version, "protected": False, "txt2img": bool(self.models),
                "vision": False, "transcribe": False}
