"""Reachability probes shared by the status API and `neuralrp doctor`."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

import httpx

log = logging.getLogger(__name__)


@dataclass
class Probe:
    """What one backend check found."""

    name: str
    configured: bool
    reachable: bool | None
    url: str | None
    detail: str
    hint: str = ""

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form."""
        return asdict(self)


async def probe_http(
    name: str,
    base_url: str | None,
    path: str,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    timeout_s: float = 3.0,
    not_configured_hint: str = "",
) -> Probe:
    """GET base_url+path and report whether the server answered sensibly."""
    if not base_url:
        return Probe(name, False, None, None, "not configured", not_configured_hint)
    url = base_url.rstrip("/") + path
    try:
        async with httpx.AsyncClient(transport=transport, timeout=timeout_s, trust_env=False) as client:
            resp = await client.get(url)
    except httpx.TimeoutException:
        return Probe(name, True, False, base_url, f"no answer from {url} within {timeout_s:g} s",
                     "is the server still loading a model? check its console")
    except httpx.HTTPError as e:
        return Probe(name, True, False, base_url, f"cannot connect to {url} ({type(e).__name__})",
                     f"start the {name} server or fix {name}.base_url")
    if resp.status_code >= 400:
        return Probe(name, True, False, base_url, f"{url} answered HTTP {resp.status_code}",
                     _status_hint(name, resp.status_code))
    return Probe(name, True, True, base_url, f"{url} answered HTTP {resp.status_code}")


def _status_hint(name: str, status: int) -> str:
    if status in (401, 403):
        return f"the server wants a key: set {name}.api_key" if name == "llm" else "check the server's auth"
    if status == 404 and name == "images":
        return "start AUTOMATIC1111 with --api (or use Forge / SD.Next / KoboldCpp with an image model)"
    return "check the server's console for errors"
