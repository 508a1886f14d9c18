"""A fake AUTOMATIC1111 `--api` image server (and its KoboldCpp and no-`--api` look-alikes).

`FakeA1111(variant="a1111", models=None, delay=0.0, max_side=1024, seed=1234)` builds a FastAPI app in
`.app` (see shared/reference/api-contracts.md §1 and §2.1).  Variants:

* "a1111": `GET /sdapi/v1/sd-models`, `/samplers`, `/schedulers`, `/upscalers`, `/loras`, `GET`/`POST
  /sdapi/v1/options`, `GET /sdapi/v1/progress`, `POST /sdapi/v1/interrupt`, `/skip`, `/txt2img`, `/img2img`,
  `/png-info`.  Generation answers `{"images": [...], "parameters": {...}, "info": "<JSON string>"}`;
  images are real PNGs (solid colour from the seed, requested size scaled down to fit `max_side`) with a
  `parameters` text chunk holding the A1111 infotext.  `parameters` echoes the request with every default
  filled (steps 50, sampler_index "Euler", ...; unknown keys dropped, numbers coerced, bad numbers -> 422).
  Seeds -1 become deterministic pseudo-random seeds (`seed` seeds the generator).  img2img without
  `init_images` -> 404 `Init image not found`; undecodable images -> 500 `Invalid encoded image`.
  Generation requests serialise on a lock like the real server.
* "koboldcpp": sd-models (one entry, or `models`), a fixed sampler list, `GET` options, txt2img/img2img
  (one handler, `init_images` optional) answering one plain PNG, `"parameters": {}`, `"info": ""`,
  `"animated": false`; `/api/extra/version`.  No schedulers, progress, interrupt or POST options (404).
* "noapi": the webui without `--api`: every `/sdapi/v1/*` path is 404 `{"detail": "Not Found"}`.

Progress: while a generation runs (`delay` seconds, or a `slow` fault), `/progress` reports
`progress` = elapsed / duration (0.01..0.99), `eta_relative`, `state.job_count` 1 and sampling steps.
`/interrupt` ends the running job early; it still answers 200 with its images (`interrupts` counts calls).

Recording and faults work as in `FakeLLM` (`requests`, `requests_to`, `last_request`, `fault`,
`set_fault`, `clear_faults`; helpers `txt2img_requests()`, `last_txt2img_request()`, `img2img_requests()`,
`last_img2img_request()`).  Faults (`path=None` targets txt2img and img2img):

* `status`: `code=500`, `error=None`, `detail=""`, `errors=""`, `body=None` - A1111's custom error body
  `{"error", "detail", "body", "errors"}` (e.g. `fault("status", code=500, error="OutOfMemoryError",
  errors="CUDA out of memory")`); for variant koboldcpp the `{"detail": {"msg", "type"}}` shape (503 =
  "Server is busy").
* `slow`: `seconds` - the generation takes that long (progress can be polled meanwhile).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import copy
import io
import json
import random
import re
import time
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from PIL import Image, UnidentifiedImageError
from PIL.PngImagePlugin import PngInfo
from starlette.exceptions import HTTPException as StarletteHTTPException

from .fake_llm import FakeServerBase, Faults, RecordedRequest, kobold_not_found, parse_json

VARIANTS = ("a1111", "koboldcpp", "noapi")
TXT2IMG_PATH = "/sdapi/v1/txt2img"
IMG2IMG_PATH = "/sdapi/v1/img2img"
VERSION = "v1.10.1"

A1111_MODELS: list[dict[str, Any]] = [
    {"title": "v1-5-pruned-emaonly.safetensors [6ce0161689]", "model_name": "v1-5-pruned-emaonly",
     "hash": "6ce0161689", "sha256": "6ce0161689b3853acaa03779ec93eafe75a02f4ced659bee03f50797806fa2fa",
     "filename": "/models/Stable-diffusion/v1-5-pruned-emaonly.safetensors", "config": None},
    {"title": "anime/animagineXL_v31.safetensors", "model_name": "anime_animagineXL_v31", "hash": None,
     "sha256": None, "filename": "/models/Stable-diffusion/anime/animagineXL_v31.safetensors", "config": None},
]
KOBOLD_MODELS: list[dict[str, Any]] = [
    {"title": "sd15_dreamshaper", "model_name": "sd15_dreamshaper", "hash": "8888888888", "sha256": "8" * 64,
     "filename": "/models/sd15_dreamshaper.safetensors", "config": None},
]
A1111_SAMPLERS: list[dict[str, Any]] = [
    {"name": "DPM++ 2M", "aliases": ["k_dpmpp_2m"], "options": {"scheduler": "karras"}},
    {"name": "DPM++ SDE", "aliases": ["k_dpmpp_sde"], "options": {"scheduler": "karras", "second_order": "True"}},
    {"name": "DPM++ 2M SDE", "aliases": ["k_dpmpp_2m_sde"], "options": {"scheduler": "exponential"}},
    {"name": "Euler a", "aliases": ["k_euler_a", "k_euler_ancestral"], "options": {"uses_ensd": "True"}},
    {"name": "Euler", "aliases": ["k_euler"], "options": {}},
    {"name": "LMS", "aliases": ["k_lms"], "options": {}},
    {"name": "Heun", "aliases": ["k_heun"], "options": {"second_order": "True"}},
    {"name": "DPM2", "aliases": ["k_dpm_2"], "options": {"discard_next_to_last_sigma": "True"}},
    {"name": "DDIM", "aliases": ["ddim"], "options": {}},
    {"name": "UniPC", "aliases": ["unipc"], "options": {}},
    {"name": "LCM", "aliases": ["k_lcm"], "options": {}},
]
KOBOLD_SAMPLERS = [{"name": n, "aliases": [n], "options": {}}
                   for n in ("Euler", "Euler a", "Heun", "DPM2", "DPM++ 2M", "DDIM", "LCM", "Default")]
SCHEDULERS: list[dict[str, Any]] = [
    {"name": name, "label": label, "aliases": aliases, "default_rho": rho, "need_inner_model": inner}
    for name, label, aliases, rho, inner in [
        ("automatic", "Automatic", None, -1.0, False), ("uniform", "Uniform", None, -1.0, True),
        ("karras", "Karras", None, 7.0, False), ("exponential", "Exponential", None, -1.0, False),
        ("polyexponential", "Polyexponential", None, 1.0, False),
        ("sgm_uniform", "SGM Uniform", ["SGMUniform"], -1.0, True), ("kl_optimal", "KL Optimal", None, -1.0, False),
        ("align_your_steps", "Align Your Steps", None, -1.0, False), ("simple", "Simple", None, -1.0, True),
        ("normal", "Normal", None, -1.0, True), ("ddim", "DDIM", None, -1.0, True), ("beta", "Beta", None, -1.0, True),
    ]
]

BASE_DEFAULTS: dict[str, Any] = {
    "prompt": "", "negative_prompt": "", "styles": None, "seed": -1, "subseed": -1, "subseed_strength": 0,
    "seed_resize_from_h": -1, "seed_resize_from_w": -1, "sampler_name": None, "scheduler": None,
    "batch_size": 1, "n_iter": 1, "steps": 50, "cfg_scale": 7.0, "width": 512, "height": 512,
    "restore_faces": None, "tiling": None, "do_not_save_samples": False, "do_not_save_grid": False, "eta": None,
    "denoising_strength": 0.75, "s_min_uncond": None, "s_churn": None, "s_tmax": None, "s_tmin": None,
    "s_noise": None, "override_settings": None, "override_settings_restore_afterwards": True,
    "refiner_checkpoint": None, "refiner_switch_at": None, "disable_extra_networks": False,
    "firstpass_image": None, "comments": None,
}
TXT2IMG_ONLY: dict[str, Any] = {
    "enable_hr": False, "firstphase_width": 0, "firstphase_height": 0, "hr_scale": 2.0, "hr_upscaler": None,
    "hr_second_pass_steps": 0, "hr_resize_x": 0, "hr_resize_y": 0, "hr_checkpoint_name": None,
    "hr_sampler_name": None, "hr_scheduler": None, "hr_prompt": "", "hr_negative_prompt": "", "force_task_id": None,
}
IMG2IMG_ONLY: dict[str, Any] = {
    "init_images": None, "resize_mode": 0, "image_cfg_scale": None, "mask": None, "mask_blur_x": 4,
    "mask_blur_y": 4, "mask_blur": None, "mask_round": True, "inpainting_fill": 0, "inpaint_full_res": True,
    "inpaint_full_res_padding": 0, "inpainting_mask_invert": 0, "initial_noise_multiplier": None,
    "latent_mask": None, "force_task_id": None, "include_init_images": False,
}
API_EXTRAS: dict[str, Any] = {
    "sampler_index": "Euler", "script_name": None, "script_args": [], "send_images": True, "save_images": False,
    "alwayson_scripts": {}, "infotext": None,
}
TXT2IMG_DEFAULTS = {**BASE_DEFAULTS, **TXT2IMG_ONLY, **API_EXTRAS}
IMG2IMG_DEFAULTS = {**BASE_DEFAULTS, **IMG2IMG_ONLY, **API_EXTRAS}
INT_FIELDS = frozenset({
    "seed", "subseed", "seed_resize_from_h", "seed_resize_from_w", "batch_size", "n_iter", "steps", "width",
    "height", "firstphase_width", "firstphase_height", "hr_second_pass_steps", "hr_resize_x", "hr_resize_y",
    "resize_mode", "mask_blur", "mask_blur_x", "mask_blur_y", "inpainting_fill", "inpaint_full_res_padding",
    "inpainting_mask_invert",
})
FLOAT_FIELDS = frozenset({
    "subseed_strength", "cfg_scale", "eta", "denoising_strength", "s_min_uncond", "s_churn", "s_tmax", "s_tmin",
    "s_noise", "refiner_switch_at", "hr_scale", "image_cfg_scale", "initial_noise_multiplier",
})
_FILL_NAMES = ("fill", "original", "latent noise", "latent nothing")
_PARAM_RE = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')


# --------------------------------------------------------------------------- images and infotext


def make_png(width: int, height: int, seed: int, parameters: str | None = None, max_side: int = 1024) -> bytes:
    """A solid-colour PNG (colour from `seed`) with an optional `parameters` text chunk."""
    scale = min(1.0, max_side / max(width, height, 1))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    colour = ((seed * 67) % 256, (seed * 131) % 256, (seed * 29) % 256)
    info = PngInfo()
    if parameters is not None:
        info.add_text("parameters", parameters)
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "PNG", pnginfo=info)
    return buffer.getvalue()


def png_text(data: bytes) -> dict[str, str]:
    """The text chunks (tEXt/iTXt/zTXt) of a PNG as a dict."""
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return {k: v for k, v in image.info.items() if isinstance(v, str)}


def decode_image(value: Any) -> bytes:
    """Decode a base64 image (optionally a data: URL); ValueError when it is not an image."""
    if not isinstance(value, str):
        raise ValueError("not a string")
    if value.startswith("data:"):
        value = value.partition(",")[2]
    try:
        data = base64.b64decode(value, validate=True)
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
    except (binascii.Error, UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ValueError("invalid image") from exc
    return data


def _quote(value: Any) -> str:
    """Quote an infotext value the way A1111 does (JSON string when it has `,` `:` or a newline)."""
    text = str(value)
    if "," not in text and ":" not in text and "\n" not in text and '"' not in text:
        return text
    return json.dumps(text, ensure_ascii=False)


def build_infotext(prompt: str, negative: str, pairs: dict[str, Any]) -> str:
    """Assemble an A1111 infotext: prompt, optional negative prompt, then `Key: value` pairs."""
    lines = [prompt]
    if negative:
        lines.append(f"Negative prompt: {negative}")
    lines.append(", ".join(f"{k}: {_quote(v)}" for k, v in pairs.items() if v is not None))
    return "\n".join(lines)


def parse_infotext(text: str) -> dict[str, Any]:
    """Parse an infotext into `Prompt`, `Negative prompt` and the key/value pairs (Size split in two)."""
    lines = text.strip().split("\n")
    params_line = lines.pop() if lines and len(_PARAM_RE.findall(lines[-1])) >= 3 else ""
    prompt, negative, in_negative = [], [], False
    for line in lines:
        if line.startswith("Negative prompt:"):
            in_negative, line = True, line[len("Negative prompt:"):].strip()
        (negative if in_negative else prompt).append(line)
    result: dict[str, Any] = {"Prompt": "\n".join(prompt), "Negative prompt": "\n".join(negative)}
    for key, raw in _PARAM_RE.findall(params_line):
        value = json.loads(raw) if raw.startswith('"') else raw
        result[key] = _number(value)
    if isinstance(result.get("Size"), str) and "x" in result["Size"]:
        width, _, height = result["Size"].partition("x")
        result["Size-1"], result["Size-2"] = _number(width), _number(height)
    return result


def _number(value: Any) -> Any:
    """Turn numeric strings into int/float, leave anything else alone."""
    if not isinstance(value, str):
        return value
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            continue
    return value


def resolve_sampler(name: str | None, index: str | None, scheduler: str | None) -> tuple[str, str]:
    """A1111 1.10 sampler/scheduler resolution: combined names split, unknown sampler -> DPM++ 2M."""
    wanted = name or index or "Euler"
    for entry in SCHEDULERS:
        for label in [entry["label"], entry["name"], *(entry["aliases"] or [])]:
            if wanted.lower().endswith(" " + label.lower()) and _find_sampler(wanted[: -len(label) - 1]):
                wanted, scheduler = wanted[: -len(label) - 1], entry["label"]
                break
    sampler = _find_sampler(wanted) or A1111_SAMPLERS[0]
    sched = _find_scheduler(scheduler)
    if sched is None or sched["name"] == sampler["options"].get("scheduler"):
        return sampler["name"], "Automatic"
    return sampler["name"], sched["label"]


def _find_sampler(name: str) -> dict[str, Any] | None:
    """A sampler by name or alias (case-insensitive)."""
    low = name.lower()
    return next((s for s in A1111_SAMPLERS if low in [s["name"].lower(), *(a.lower() for a in s["aliases"])]), None)


def _find_scheduler(name: str | None) -> dict[str, Any] | None:
    """A scheduler by name, label or alias (case-insensitive)."""
    if not name:
        return None
    low = name.lower()
    for entry in SCHEDULERS:
        if low in [entry["name"], entry["label"].lower(), *(a.lower() for a in entry["aliases"] or [])]:
            return entry
    return None


def echo_parameters(body: dict[str, Any], defaults: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Merge a request into the defaults like pydantic v1 would: drop unknown keys, coerce numbers."""
    params = copy.deepcopy(defaults)
    errors: list[dict[str, Any]] = []
    for key, value in body.items():
        if key not in params:
            continue
        try:
            params[key] = _coerce(key, value)
        except (TypeError, ValueError):
            kind = "integer" if key in INT_FIELDS else "float" if key in FLOAT_FIELDS else "str"
            msg = "str type expected" if kind == "str" else f"value is not a valid {kind}"
            errors.append({"loc": ["body", key], "msg": msg, "type": f"type_error.{kind}"})
    if params.get("mask_blur") is not None:
        params["mask_blur_x"] = params["mask_blur_y"] = params["mask_blur"]
    return params, errors


def _coerce(key: str, value: Any) -> Any:
    """Coerce one field value; TypeError/ValueError when pydantic v1 would refuse it."""
    if value is None:
        return None
    if key in INT_FIELDS:
        if isinstance(value, bool | int | float | str):
            return int(float(value)) if isinstance(value, float) else int(value)
        raise TypeError(key)
    if key in FLOAT_FIELDS:
        if isinstance(value, bool | int | float | str):
            return float(value)
        raise TypeError(key)
    if key in ("prompt", "negative_prompt") and not isinstance(value, str):
        raise TypeError(key)
    return value


def a1111_error(status: int, error: str | None = None, detail: str = "", errors: str = "") -> JSONResponse:
    """A1111's custom error response `{"error", "detail", "body", "errors"}`."""
    name = error or ("HTTPException" if detail or status < 500 else "RuntimeError")
    return JSONResponse({"error": name, "detail": detail, "body": "", "errors": errors}, status_code=status)


# --------------------------------------------------------------------------- the fake


@dataclass(eq=False)
class _Job:
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


@dataclass
class _Output:
    """What a finished A1111 generation hands back."""

    images: list[str]
    infotexts: list[str]
    seeds: list[int]
    subseeds: list[int]
    index_of_first_image: int


class FakeA1111(FakeServerBase):
    """A fake A1111-style image API (`variant` a1111, koboldcpp or noapi)."""

    fault_kinds = {
        "status": frozenset({"code", "error", "detail", "errors", "body"}),
        "slow": frozenset({"seconds"}),
    }
    default_fault_paths = (TXT2IMG_PATH, IMG2IMG_PATH)

    def __init__(
        self,
        variant: str = "a1111",
        *,
        models: list[dict[str, Any]] | None = None,
        delay: float = 0.0,
        max_side: int = 1024,
        seed: int = 1234,
    ) -> None:
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, not {variant!r}")
        super().__init__()
        self.variant = variant
        default_models = KOBOLD_MODELS if variant == "koboldcpp" else A1111_MODELS
        self.models = copy.deepcopy(default_models if models is None else models)
        self.delay = delay
        self.max_side = max_side
        self.rng = random.Random(seed)
        self.options = self._initial_options()
        self.job: _Job | None = None
        self.last_job: _Job | None = None
        self.generations = 0
        self.interrupts = 0
        self._locks: dict[int, asyncio.Lock] = {}
        getattr(self, f"_{variant}_routes")()

    # ---- public helpers

    def txt2img_requests(self) -> list[RecordedRequest]:
        """Recorded POSTs to /sdapi/v1/txt2img."""
        return self.requests_to(TXT2IMG_PATH, "POST")

    def last_txt2img_request(self) -> RecordedRequest:
        """The latest txt2img request."""
        return self.last_request(TXT2IMG_PATH)

    def img2img_requests(self) -> list[RecordedRequest]:
        """Recorded POSTs to /sdapi/v1/img2img."""
        return self.requests_to(IMG2IMG_PATH, "POST")

    def last_img2img_request(self) -> RecordedRequest:
        """The latest img2img request."""
        return self.last_request(IMG2IMG_PATH)

    # ---- routes

    def _route(self, method: str, path: str, endpoint: Any) -> None:
        """Register one route."""
        self.app.add_api_route(path, endpoint, methods=[method])

    def _a1111_routes(self) -> None:
        """The A1111 `--api` routes."""
        for path, endpoint in [
            ("sd-models", self._sd_models), ("samplers", self._samplers), ("schedulers", self._schedulers),
            ("options", self._get_options), ("progress", self._progress), ("upscalers", self._empty_list),
            ("loras", self._empty_list),
        ]:
            self._route("GET", f"/sdapi/v1/{path}", endpoint)
        for path, endpoint in [
            ("options", self._post_options), ("interrupt", self._interrupt), ("skip", self._skip),
            ("txt2img", self._txt2img), ("img2img", self._img2img), ("png-info", self._png_info),
        ]:
            self._route("POST", f"/sdapi/v1/{path}", endpoint)

    def _koboldcpp_routes(self) -> None:
        """KoboldCpp's partial emulation of the A1111 API."""
        self._route("GET", "/sdapi/v1/sd-models", self._sd_models)
        self._route("GET", "/sdapi/v1/samplers", self._samplers)
        self._route("GET", "/sdapi/v1/options", self._get_options)
        self._route("GET", "/sdapi/v1/upscalers", self._empty_list)
        self._route("GET", "/sdapi/v1/latent-upscale-modes", self._empty_list)
        self._route("POST", TXT2IMG_PATH, self._kcpp_generate)
        self._route("POST", IMG2IMG_PATH, self._kcpp_generate)
        self._route("GET", "/api/extra/version", self._kcpp_version)
        self.app.add_exception_handler(StarletteHTTPException, self._kcpp_not_found)

    def _noapi_routes(self) -> None:
        """The webui started without `--api`: only the HTML page."""
        self._route("GET", "/", self._webui_page)

    async def _kcpp_not_found(self, request: Request, exc: Exception) -> Response:
        """KoboldCpp's unknown-route answer (also for wrong methods)."""
        status = getattr(exc, "status_code", 500)
        if status in (404, 405):
            return kobold_not_found(request.method)
        return JSONResponse({"detail": getattr(exc, "detail", "")}, status_code=status)

    def _early_response(self, record: RecordedRequest, faults: Faults) -> Response | None:
        """Apply `status` faults before routing."""
        if "status" not in faults:
            return None
        params = faults["status"]
        code = int(params.get("code", 500))
        if params.get("body") is not None:
            return JSONResponse(params["body"], status_code=code)
        if self.variant == "koboldcpp":
            msg, kind = ("Server is busy; please try again later.", "service_unavailable") if code == 503 \
                else (params.get("detail") or "Error parsing input.", "bad_input")
            return JSONResponse({"detail": {"msg": msg, "type": kind}}, status_code=code)
        return a1111_error(code, params.get("error"), params.get("detail", ""), params.get("errors", ""))

    # ---- simple endpoints

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
        return {"result": "KoboldCpp", "version": "1.102", "protected": False, "txt2img": bool(self.models),
                "vision": False, "transcribe": False}

    # ---- generation

    def _queue_lock(self) -> asyncio.Lock:
        """The generation lock of the running event loop."""
        loop_id = id(asyncio.get_running_loop())
        return self._locks.setdefault(loop_id, asyncio.Lock())

    async def _run_job(self, name: str, steps: int, faults: Faults) -> _Job:
        """Hold the queue lock for the generation's duration (interruptible)."""
        duration = float(faults["slow"].get("seconds", 1.0)) if "slow" in faults else self.delay
        async with self._queue_lock():
            job = _Job(name, steps, duration)
            self.job = job
            try:
                while not job.interrupted and not job.skipped and time.monotonic() - job.start < duration:
                    await asyncio.sleep(0.01)
            finally:
                self.job, self.last_job = None, job
                self.generations += 1
        return job

    async def _txt2img(self, request: Request) -> Response:
        """POST /sdapi/v1/txt2img."""
        return await self._a1111_generate(request, "txt2img")

    async def _img2img(self, request: Request) -> Response:
        """POST /sdapi/v1/img2img."""
        return await self._a1111_generate(request, "img2img")

    async def _a1111_generate(self, request: Request, kind: str) -> Response:
        """Validate, run and answer an A1111 generation."""
        body = parse_json(await request.body())
        if not isinstance(body, dict):
            return JSONResponse({"detail": [{"loc": ["body"], "msg": "value is not a valid dict",
                                             "type": "type_error.dict"}]}, status_code=422)
        params, errors = echo_parameters(body, TXT2IMG_DEFAULTS if kind == "txt2img" else IMG2IMG_DEFAULTS)
        if errors:
            return JSONResponse({"detail": errors}, status_code=422)
        if kind == "img2img":
            problem = self._check_img2img(params)
            if problem is not None:
                return problem
        await self._run_job(f"scripts_{kind}", int(params["steps"]), request.scope.get("fake.faults", {}))
        output = self._render(params, kind)
        if kind == "img2img" and not params["include_init_images"]:
            params["init_images"] = params["mask"] = None
        info = self._info(params, output)
        return JSONResponse({"images": output.images, "parameters": params, "info": json.dumps(info)})

    def _check_img2img(self, params: dict[str, Any]) -> Response | None:
        """img2img input errors: missing (404), undecodable (500) or too many (500) images."""
        images = params.get("init_images")
        if not images:
            return a1111_error(404, "HTTPException", "Init image not found")
        try:
            for value in [*images, *([params["mask"]] if params.get("mask") else [])]:
                decode_image(value)
        except ValueError:
            return a1111_error(500, "HTTPException", "Invalid encoded image")
        if len(images) > int(params["batch_size"]):
            errors = f"bad number of images passed: {len(images)}; expecting {params['batch_size']} or less"
            return a1111_error(500, "RuntimeError", "", errors)
        return None

    def _seeds(self, params: dict[str, Any], count: int) -> tuple[list[int], list[int]]:
        """Seeds and subseeds for `count` images (-1 picks a pseudo-random start)."""
        seed = int(params["seed"]) if int(params["seed"]) != -1 else self.rng.randrange(2**32)
        subseed = int(params["subseed"]) if int(params["subseed"]) != -1 else self.rng.randrange(2**32)
        return [seed + i for i in range(count)], [subseed + i for i in range(count)]

    def _render(self, params: dict[str, Any], kind: str) -> _Output:
        """Make the PNGs and their infotexts (plus a grid when A1111 would add one)."""
        count = max(1, int(params["batch_size"])) * max(1, int(params["n_iter"]))
        seeds, subseeds = self._seeds(params, count)
        texts = [self._infotext(params, kind, seed) for seed in seeds]
        width, height = int(params["width"]), int(params["height"])
        pngs = [make_png(width, height, seed, text, self.max_side) for seed, text in zip(seeds, texts, strict=True)]
        first = 0
        if count > 1 and params["save_images"] and self.options.get("return_grid"):
            pngs.insert(0, make_png(width, height, seeds[0], texts[0], self.max_side))
            texts.insert(0, texts[0])
            first = 1
        images = [base64.b64encode(p).decode() for p in pngs] if params["send_images"] else []
        return _Output(images, texts, seeds, subseeds, first)

    def _model(self, params: dict[str, Any]) -> dict[str, Any]:
        """The checkpoint used (override_settings first, then the current option)."""
        override = (params.get("override_settings") or {}).get("sd_model_checkpoint")
        model = self._find_model(override) or self._find_model(self.options.get("sd_model_checkpoint"))
        return model or {"model_name": None, "hash": None}

    def _clip_skip(self, params: dict[str, Any]) -> int:
        """CLIP skip from override_settings or the options."""
        override = params.get("override_settings") or {}
        return int(override.get("CLIP_stop_at_last_layers", self.options.get("CLIP_stop_at_last_layers", 1)))

    def _infotext(self, params: dict[str, Any], kind: str, seed: int) -> str:
        """The A1111 infotext for one image."""
        sampler, scheduler = resolve_sampler(params["sampler_name"], params["sampler_index"], params["scheduler"])
        model = self._model(params)
        clip_skip = self._clip_skip(params)
        pairs: dict[str, Any] = {
            "Steps": params["steps"], "Sampler": sampler, "Schedule type": scheduler,
            "CFG scale": f"{float(params['cfg_scale']):g}", "Seed": seed,
            "Size": f"{params['width']}x{params['height']}", "Model hash": model["hash"],
            "Model": model["model_name"],
        }
        if kind == "img2img" or params.get("enable_hr"):
            pairs["Denoising strength"] = f"{float(params['denoising_strength']):g}"
        if clip_skip > 1:
            pairs["Clip skip"] = clip_skip
        if kind == "img2img" and params.get("mask"):
            pairs.update(self._mask_pairs(params))
        pairs["Version"] = VERSION
        return build_infotext(params["prompt"], params["negative_prompt"], pairs)

    def _mask_pairs(self, params: dict[str, Any]) -> dict[str, Any]:
        """Infotext pairs describing an inpainting mask."""
        pairs: dict[str, Any] = {"Mask blur": params["mask_blur_x"]}
        if params["inpaint_full_res"]:
            pairs["Inpaint area"] = "Only masked"
            pairs["Masked area padding"] = params["inpaint_full_res_padding"]
        pairs["Masked content"] = _FILL_NAMES[int(params["inpainting_fill"]) % 4]
        if params["inpainting_mask_invert"]:
            pairs["Mask mode"] = "Inpaint not masked"
        return pairs

    def _info(self, params: dict[str, Any], output: _Output) -> dict[str, Any]:
        """The dict that becomes the `info` JSON string."""
        sampler, _ = resolve_sampler(params["sampler_name"], params["sampler_index"], params["scheduler"])
        model = self._model(params)
        count = len(output.seeds)
        return {
            "prompt": params["prompt"], "all_prompts": [params["prompt"]] * count,
            "negative_prompt": params["negative_prompt"], "all_negative_prompts": [params["negative_prompt"]] * count,
            "seed": output.seeds[0], "all_seeds": output.seeds, "subseed": output.subseeds[0],
            "all_subseeds": output.subseeds, "subseed_strength": params["subseed_strength"],
            "width": params["width"], "height": params["height"], "sampler_name": sampler,
            "cfg_scale": params["cfg_scale"], "steps": params["steps"], "batch_size": params["batch_size"],
            "restore_faces": bool(params["restore_faces"]), "face_restoration_model": None,
            "sd_model_name": model["model_name"], "sd_model_hash": model["hash"], "sd_vae_name": None,
            "sd_vae_hash": None, "seed_resize_from_w": params["seed_resize_from_w"],
            "seed_resize_from_h": params["seed_resize_from_h"], "denoising_strength": params["denoising_strength"],
            "extra_generation_params": {}, "index_of_first_image": output.index_of_first_image,
            "infotexts": output.infotexts, "styles": params["styles"] or [],
            "job_timestamp": time.strftime("%Y%m%d%H%M%S"), "clip_skip": self._clip_skip(params),
            "is_using_inpainting_conditioning": False, "version": VERSION,
        }

    async def _kcpp_generate(self, request: Request) -> Response:
        """KoboldCpp txt2img/img2img: one plain PNG, empty parameters, info ""."""
        body = parse_json(await request.body())
        if not isinstance(body, dict):
            return JSONResponse({"detail": {"msg": "Error parsing input.", "type": "bad_input"}}, status_code=500)
        try:
            steps = min(80, max(1, int(body.get("steps", 20))))
            width, height = int(body.get("width", 512)), int(body.get("height", 512))
            seed = int(body.get("seed", -1))
        except (TypeError, ValueError):
            return JSONResponse({"detail": {"msg": "Error parsing input.", "type": "bad_input"}}, status_code=500)
        await self._run_job("kcpp", steps, request.scope.get("fake.faults", {}))
        seed = seed if seed != -1 else self.rng.randrange(2**32)
        image = base64.b64encode(make_png(width, height, seed, None, self.max_side)).decode()
        return JSONResponse({"images": [image], "parameters": {}, "info": "", "animated": False})
