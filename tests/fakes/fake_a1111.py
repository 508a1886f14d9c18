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
* "forge": the a1111 routes plus `GET /sdapi/v1/sd-modules` (Forge's VAE/text-encoder list).
* "sdnext": the a1111 routes plus `GET /sdapi/v1/checkpoint`, and its `/sdapi/v1/schedulers` lists its
  samplers as `{name, cls, options}` (SD.Next modules/api/endpoints.py `get_schedulers`: diffusers schedulers
  are its samplers; it has no A1111-style scheduler).

KoboldCpp (`kobold_version`, "1.102" by default), as koboldcpp.py `sd_generate` reads a request: 1.102 takes
`scheduler` (lower-cased; `fake.kobold_seen` records what it used), clamps `steps` to 1..80 and `cfg_scale`
to 1..25 without saying so, and uses `mask`; 1.76 has no scheduler and no mask (it repaints the whole
picture) and floors sizes to multiples of 64. A failed generation still answers 200 with `images: [""]`
(`fault("kobold_fail")`). `api_auth="user:password"` is A1111's `--api-auth`: every `/sdapi/v1` route then
wants HTTP Basic and answers 401 "Incorrect username or password" (modules/api/api.py `Api.auth`).

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

Helpers live in sibling modules: `a1111_png` (PNGs, infotext), `a1111_params` (catalogue, defaults,
parameter echo), `a1111_endpoints` (non-generation endpoints) and `base` (recording and faults).
"""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import random
import time
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from .a1111_endpoints import A1111Endpoints, Job, a1111_error
from .a1111_params import (
    A1111_MODELS,
    IMG2IMG_DEFAULTS,
    KOBOLD_MODELS,
    TXT2IMG_DEFAULTS,
    echo_parameters,
    resolve_sampler,
)
from .a1111_png import build_infotext, decode_image, make_png
from .base import FakeServerBase, Faults, RecordedRequest, kobold_not_found, parse_json

VARIANTS = ("a1111", "koboldcpp", "noapi", "forge", "sdnext")
TXT2IMG_PATH = "/sdapi/v1/txt2img"
IMG2IMG_PATH = "/sdapi/v1/img2img"
VERSION = "v1.10.1"
_FILL_NAMES = ("fill", "original", "latent noise", "latent nothing")


@dataclass
class _Output:
    """What a finished A1111 generation hands back."""

    images: list[str]
    infotexts: list[str]
    seeds: list[int]
    subseeds: list[int]
    index_of_first_image: int


class FakeA1111(A1111Endpoints, FakeServerBase):
    """A fake A1111-style image API (`variant` a1111, koboldcpp or noapi)."""

    fault_kinds = {
        "status": frozenset({"code", "error", "detail", "errors", "body"}),
        "slow": frozenset({"seconds"}),
        "kobold_fail": frozenset(),
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
        kobold_version: str = "1.102",
        api_auth: str | None = None,
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
        self.job: Job | None = None
        self.last_job: Job | None = None
        self.generations = 0
        self.interrupts = 0
        self._locks: dict[int, asyncio.Lock] = {}
        self.kobold_version = kobold_version
        self.kobold_seen: dict[str, Any] = {}
        self.api_auth = api_auth
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

    def _forge_routes(self) -> None:
        """Forge: the A1111 routes plus its module list."""
        self._a1111_routes()
        self._route("GET", "/sdapi/v1/sd-modules", self._empty_list)

    def _sdnext_routes(self) -> None:
        """SD.Next: the A1111 routes, its checkpoint route, and "schedulers" that are its samplers."""
        self._a1111_routes()
        self.app.router.routes = [r for r in self.app.router.routes
                                  if getattr(r, "path", "") != "/sdapi/v1/schedulers"]
        self._route("GET", "/sdapi/v1/schedulers", self._sdnext_schedulers)
        self._route("GET", "/sdapi/v1/checkpoint", self._sdnext_checkpoint)

    async def _sdnext_schedulers(self, request: Request) -> list[dict[str, Any]]:
        """SD.Next's /schedulers: its sampler list with diffusers class names."""
        return [{"name": s["name"], "cls": s["name"].replace(" ", "") + "Scheduler", "options": {}}
                for s in await self._samplers(request)]

    async def _sdnext_checkpoint(self, request: Request) -> dict[str, Any]:
        """SD.Next's GET /sdapi/v1/checkpoint."""
        return {"type": "sd", "class": "StableDiffusionPipeline", "title": self.options.get("sd_model_checkpoint")}

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
        """Refuse requests without the `--api-auth` login; apply `status` faults before routing."""
        if self.api_auth and record.path.startswith("/sdapi/") and not self._logged_in(record):
            return JSONResponse({"detail": "Incorrect username or password"}, status_code=401,
                                headers={"WWW-Authenticate": "Basic"})
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

    def _logged_in(self, record: RecordedRequest) -> bool:
        """Whether the request carries the HTTP Basic login `api_auth` names."""
        scheme, _, token = record.headers.get("authorization", "").partition(" ")
        try:
            given = base64.b64decode(token).decode() if scheme.lower() == "basic" else ""
        except ValueError:
            return False
        return bool(self.api_auth) and given in str(self.api_auth).split(",")

    # ---- generation

    def _queue_lock(self) -> asyncio.Lock:
        """The generation lock of the running event loop."""
        loop_id = id(asyncio.get_running_loop())
        return self._locks.setdefault(loop_id, asyncio.Lock())

    async def _run_job(self, name: str, steps: int, faults: Faults) -> Job:
        """Hold the queue lock for the generation's duration (interruptible)."""
        duration = float(faults["slow"].get("seconds", 1.0)) if "slow" in faults else self.delay
        async with self._queue_lock():
            job = Job(name, steps, duration)
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
            self.kobold_seen = self._kcpp_read(body)
        except (TypeError, ValueError):
            return JSONResponse({"detail": {"msg": "Error parsing input.", "type": "bad_input"}}, status_code=500)
        faults = request.scope.get("fake.faults", {})
        await self._run_job("kcpp", self.kobold_seen["steps"], faults)
        if "kobold_fail" in faults:  # koboldcpp.py: a failed sd_generate still answers 200, with an empty image
            return JSONResponse({"images": [""], "parameters": {}, "info": "", "animated": False})
        seed = self.kobold_seen["seed"] if self.kobold_seen["seed"] != -1 else self.rng.randrange(2**32)
        image = base64.b64encode(make_png(self.kobold_seen["width"], self.kobold_seen["height"], seed, None,
                                          self.max_side)).decode()
        return JSONResponse({"images": [image], "parameters": {}, "info": "", "animated": False})

    def _kcpp_read(self, body: dict[str, Any]) -> dict[str, Any]:
        """What KoboldCpp's sd_generate takes from a request (1.102, or 1.76 when kobold_version says so)."""
        new = tuple(int(p) for p in self.kobold_version.split(".")[:2]) >= (1, 102)
        width, height = int(body.get("width", 512)), int(body.get("height", 512))
        if not new:
            width, height = width - width % 64, height - height % 64
        return {"steps": min(80, max(1, int(body.get("steps", 20)))),
                "cfg_scale": min(25.0, max(1.0, float(body.get("cfg_scale", 5)))),
                "width": width, "height": height, "seed": int(body.get("seed", -1)),
                "sampler": str(body.get("sampler_name") or "default").lower(),
                "scheduler": str(body.get("scheduler") or "default").lower() if new else None,
                "mask": bool(body.get("mask")) if new else False}
