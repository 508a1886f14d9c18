"""A client for AUTOMATIC1111-style image servers (A1111, Forge, SD.Next, KoboldCpp) over the `sdapi` API.

What each server really takes (read in their source): A1111 1.9+ and Forge have samplers and schedulers;
SD.Next (modules/api/endpoints.py) answers /sdapi/v1/schedulers with its samplers (diffusers schedulers) and has
no A1111 scheduler, so none is sent; KoboldCpp 1.102 (koboldcpp.py `sd_generate`) takes `scheduler`, clamps
steps to 1..80 and CFG to 1..25 without saying so, and uses `mask`; KoboldCpp 1.76 has no scheduler and no
mask (inpainting would repaint the whole picture) and floors sizes to multiples of 64. `for_server` sends each
server what it uses and keeps the values it really used, so the stored image records them. A1111 and Forge
started with `--api-auth user:password` (SD.Next: `--auth`) want HTTP Basic: images.username / images.password.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import httpx

from neuralrp.backends import guarded
from neuralrp.errors import BackendBadResponse, BackendUnavailable, NotSupportedByBackend
from neuralrp.images import b64

log = logging.getLogger(__name__)

ImageBackendKind = Literal["a1111", "forge", "sdnext", "koboldcpp"]
PROBE_TIMEOUT_S = 10.0
HOW_TO_ENABLE = (
    "Set the image server URL on the Settings page (Images), or images.base_url in config.yaml (or "
    "NEURALRP_IMAGES_BASE_URL), e.g. http://127.0.0.1:7860 for "
    "AUTOMATIC1111 / Forge / SD.Next started with --api, or http://127.0.0.1:5001 for KoboldCpp started with an "
    "image model (--sdmodel)."
)


@dataclass(frozen=True)
class ServerInfo:
    """What detection learned about the image server."""

    kind: ImageBackendKind
    model: str | None
    models: list[str] = field(default_factory=list)
    version: str = ""  # KoboldCpp's version ("" elsewhere)


@dataclass(frozen=True)
class Generated:
    """One generation's answer: the first real image and the parsed `info`."""

    image: bytes
    info: dict[str, Any]


@dataclass(frozen=True)
class Progress:
    """The server's progress report (None fields when it has none)."""

    active: bool
    progress: float = 0.0
    eta_s: float | None = None
    step: int | None = None
    steps: int | None = None


class ImageClient(Protocol):
    """What the image service needs from an image server."""

    base_url: str

    async def detect(self, *, refresh: bool = False) -> ServerInfo:
        """Which server this is and its current model (cached unless refresh)."""
        ...

    async def txt2img(self, payload: dict[str, Any]) -> Generated:
        """Generate from a prompt."""
        ...

    async def img2img(self, payload: dict[str, Any]) -> Generated:
        """Generate from an init image (and a mask for inpainting)."""
        ...

    async def samplers(self) -> list[str]:
        """Sampler names."""
        ...

    async def schedulers(self) -> list[str]:
        """Scheduler labels ([] where the server has none)."""
        ...

    async def progress(self) -> Progress:
        """The running job's progress."""
        ...

    async def interrupt(self) -> bool:
        """Stop the running job; False where the server cannot."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


def parse_info(raw: Any) -> dict[str, Any]:
    """A1111's `info` (a JSON string); KoboldCpp's "" and anything unreadable give {}."""
    if isinstance(raw, dict):
        return raw
    if not isinstance(raw, str) or not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        log.warning("image server sent an unreadable 'info'; ignoring it")
        return {}
    return value if isinstance(value, dict) else {}


def error_message(resp: httpx.Response) -> str:
    """The readable part of an error answer (A1111 `{error, detail, errors}` or KoboldCpp `{detail: {msg}}`)."""
    try:
        body = resp.json()
    except ValueError:
        return resp.text.strip()[:300] or resp.reason_phrase
    if not isinstance(body, dict):
        return str(body)[:300]
    detail = body.get("detail")
    if isinstance(detail, dict):
        return str(detail.get("msg") or detail)
    if isinstance(detail, list):
        return "; ".join(f"{'.'.join(str(p) for p in d.get('loc', []))}: {d.get('msg')}" for d in detail
                         if isinstance(d, dict)) or str(detail)
    parts = [str(body.get("error") or ""), str(body.get("errors") or detail or "")]
    return ": ".join(p for p in parts if p) or resp.reason_phrase


def generated(resp: httpx.Response, path: str) -> Generated:
    """The first real image and the parsed `info` of a txt2img/img2img answer (CPU-heavy: a worker thread)."""
    try:
        body = resp.json()
    except ValueError as e:
        raise BackendBadResponse(f"The image server sent something other than JSON from {path}.",
                                 backend="images") from e
    info = parse_info(body.get("info")) if isinstance(body, dict) else {}
    images = body.get("images") if isinstance(body, dict) else None
    first = int(info.get("index_of_first_image") or 0)
    if not isinstance(images, list) or len(images) <= first or not images[first]:
        raise BackendBadResponse(f"The image server answered {path} without an image (it may have failed; "
                                 "check its console).", backend="images")
    text = str(images[first])
    try:
        data = b64.decode(text.partition(",")[2] if text.startswith("data:") else text)
    except ValueError as e:
        raise BackendBadResponse(f"The image from {path} is not valid base64.", backend="images") from e
    return Generated(data, info)


class A1111Client:
    """The `sdapi/v1` API of AUTOMATIC1111 and the servers that copy it."""

    def __init__(self, base_url: str, *, timeout_s: float = 600.0,
                 transport: httpx.AsyncBaseTransport | None = None, auth: tuple[str, str] | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self._http = httpx.AsyncClient(base_url=self.base_url, transport=guarded(transport), trust_env=False,
                                       timeout=httpx.Timeout(timeout_s, connect=PROBE_TIMEOUT_S),
                                       auth=httpx.BasicAuth(*auth) if auth else None)
        self._info: ServerInfo | None = None

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._http.aclose()

    async def _request(self, method: str, path: str, *, json_body: Any = None,
                       timeout: float | None = None) -> httpx.Response:
        """One request; connection problems become a 503 naming the server."""
        try:
            return await self._http.request(method, path, json=json_body,
                                            timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT)
        except httpx.TimeoutException as e:
            self._info = None
            raise BackendUnavailable(f"The image server at {self.base_url} did not answer {path} in time "
                                     f"({type(e).__name__}); it may be busy or loading a model.",
                                     backend="images") from e
        except httpx.HTTPError as e:
            self._info = None
            raise BackendUnavailable(f"The image server at {self.base_url} is not reachable ({type(e).__name__}). "
                                     "Start it (AUTOMATIC1111 with --api, or KoboldCpp with an image model) "
                                     "or fix images.base_url.", backend="images") from e

    async def _get_json(self, path: str) -> Any:
        """GET a JSON document; non-2xx -> 502 with the server's message."""
        resp = await self._request("GET", path, timeout=PROBE_TIMEOUT_S)
        self._check(resp, path)
        return resp.json()

    def _check(self, resp: httpx.Response, path: str) -> None:
        if resp.status_code < 400:
            return
        message = error_message(resp)
        if resp.status_code == 401:
            raise BackendBadResponse(f"The image server at {self.base_url} wants a login ({message}): set "
                                     "images.username and images.password to the user:password it was started "
                                     "with (--api-auth)", backend="images", status=401)
        if resp.status_code == 503:
            raise BackendUnavailable(f"The image server at {self.base_url} is busy: {message}", backend="images")
        raise BackendBadResponse(f"The image server failed on {path} (HTTP {resp.status_code}): {message}",
                                 backend="images", status=resp.status_code)

    async def _exists(self, path: str) -> bool:
        resp = await self._request("GET", path, timeout=PROBE_TIMEOUT_S)
        return resp.status_code < 400

    async def detect(self, *, refresh: bool = False) -> ServerInfo:
        """Probe sd-models (404: no --api), then tell KoboldCpp, Forge and SD.Next from A1111."""
        if self._info is not None and not refresh:
            return self._info
        resp = await self._request("GET", "/sdapi/v1/sd-models", timeout=PROBE_TIMEOUT_S)
        if resp.status_code == 404:
            raise BackendUnavailable(f"The image server at {self.base_url} has no A1111 API (/sdapi/v1/sd-models "
                                     "answered 404): start the webui with --api (KoboldCpp: load an image model "
                                     "with --sdmodel).", backend="images")
        self._check(resp, "/sdapi/v1/sd-models")
        models = [str(m.get("title") or m.get("model_name")) for m in resp.json() if isinstance(m, dict)]
        kind, version = await self._kind()
        if kind == "koboldcpp" and not models:
            raise BackendUnavailable(f"KoboldCpp at {self.base_url} has no image model loaded: start it with "
                                     "--sdmodel PATH.safetensors.", backend="images")
        self._info = ServerInfo(kind, await self._current_model(models), models, version)
        log.info("image server at %s: %s, model %s", self.base_url, kind, self._info.model)
        return self._info

    async def _kind(self) -> tuple[ImageBackendKind, str]:
        """The server kind (and KoboldCpp's version); SD.Next alone has /sdapi/v1/checkpoint, Forge sd-modules."""
        version = await self._request("GET", "/api/extra/version", timeout=PROBE_TIMEOUT_S)
        if version.status_code == 200:
            try:
                body = version.json()
                if "kobold" in str(body.get("result", "")).lower():
                    return "koboldcpp", str(body.get("version") or "")
            except (ValueError, AttributeError):
                pass
        if await self._exists("/sdapi/v1/checkpoint"):
            return "sdnext", ""
        if await self._exists("/sdapi/v1/sd-modules"):
            return "forge", ""
        return "a1111", ""

    async def _current_model(self, models: list[str]) -> str | None:
        try:
            options = await self._get_json("/sdapi/v1/options")
        except BackendBadResponse:
            options = {}
        current = options.get("sd_model_checkpoint") if isinstance(options, dict) else None
        return str(current) if current else (models[0] if models else None)

    async def _generate(self, path: str, payload: dict[str, Any]) -> Generated:
        resp = await self._request("POST", path, json_body=payload)
        self._check(resp, path)
        return await asyncio.to_thread(generated, resp, path)  # megabytes of JSON and base64: off the loop

    async def txt2img(self, payload: dict[str, Any]) -> Generated:
        """POST /sdapi/v1/txt2img."""
        return await self._generate("/sdapi/v1/txt2img", payload)

    async def img2img(self, payload: dict[str, Any]) -> Generated:
        """POST /sdapi/v1/img2img."""
        return await self._generate("/sdapi/v1/img2img", payload)

    async def samplers(self) -> list[str]:
        """GET /sdapi/v1/samplers as names."""
        items = await self._get_json("/sdapi/v1/samplers")
        return [str(s["name"]) for s in items if isinstance(s, dict) and s.get("name")]

    async def schedulers(self) -> list[str]:
        """GET /sdapi/v1/schedulers as labels; KoboldCpp 1.102's own names; [] where there are none."""
        info = await self.detect()
        if info.kind == "koboldcpp":
            return list(KOBOLD_SCHEDULERS) if _kobold_new(info) else []
        if info.kind == "sdnext":  # its /schedulers lists its samplers; it has no A1111 scheduler
            return []
        resp = await self._request("GET", "/sdapi/v1/schedulers", timeout=PROBE_TIMEOUT_S)
        if resp.status_code == 404:
            return []
        self._check(resp, "/sdapi/v1/schedulers")
        return [str(s.get("label") or s.get("name")) for s in resp.json() if isinstance(s, dict)]

    async def progress(self) -> Progress:
        """GET /sdapi/v1/progress; KoboldCpp has none (inactive)."""
        info = await self.detect()
        if info.kind == "koboldcpp":
            return Progress(False)
        body = await self._get_json("/sdapi/v1/progress?skip_current_image=true")
        state = body.get("state") or {}
        active = int(state.get("job_count") or 0) > 0
        return Progress(active, float(body.get("progress") or 0.0), body.get("eta_relative") if active else None,
                        state.get("sampling_step") if active else None,
                        state.get("sampling_steps") if active else None)

    async def interrupt(self) -> bool:
        """POST /sdapi/v1/interrupt; False on KoboldCpp, which cannot."""
        info = await self.detect()
        if info.kind == "koboldcpp":
            return False
        resp = await self._request("POST", "/sdapi/v1/interrupt", timeout=PROBE_TIMEOUT_S)
        self._check(resp, "/sdapi/v1/interrupt")
        return True


# KoboldCpp 1.102 lower-cases `scheduler` and hands it to its stable-diffusion.cpp; these are the schedule
# names stable-diffusion.cpp knows (an unknown one falls back to "default").
KOBOLD_SCHEDULERS = ("default", "discrete", "karras", "exponential", "ays", "gits")
KOBOLD_NEW = (1, 102)  # scheduler and mask read in 1.102's sd_generate; 1.76 reads neither
KOBOLD_MAX_STEPS = 80  # sd_generate: steps over the adapter's `add_sd_step_limit` (80) become 80
_AUTOMATIC = ("", "automatic", "default")


def _kobold_new(info: ServerInfo) -> bool:
    parts = [int(p) for p in info.version.split(".")[:2] if p.isdigit()]
    return tuple(parts) >= KOBOLD_NEW


def for_server(payload: dict[str, Any], info: ServerInfo) -> dict[str, Any]:
    """The payload as this server takes it, with the values it will really use (what gets stored)."""
    out = dict(payload)
    scheduler = str(out.get("scheduler") or "")
    if info.kind == "sdnext" or not scheduler:
        out.pop("scheduler", None)
    if info.kind != "koboldcpp":
        return out
    if not _kobold_new(info) and out.get("mask"):
        raise NotSupportedByBackend(
            f"KoboldCpp {info.version or '(unknown version)'} has no inpainting mask: it would repaint the whole "
            "picture. Inpainting works with KoboldCpp 1.102 or newer, AUTOMATIC1111, Forge or SD.Next.",
            backend="images")
    if not _kobold_new(info) or scheduler.lower() in _AUTOMATIC:
        out.pop("scheduler", None)
    else:
        out["scheduler"] = scheduler.lower()
    if isinstance(out.get("steps"), int):
        out["steps"] = min(max(1, out["steps"]), KOBOLD_MAX_STEPS)
    if isinstance(out.get("cfg_scale"), int | float):
        out["cfg_scale"] = min(max(1.0, float(out["cfg_scale"])), 25.0)
    if not _kobold_new(info):
        for side in ("width", "height"):
            if isinstance(out.get(side), int):
                out[side] = max(64, out[side] - out[side] % 64)
    return out

