"""The A1111 client: detection of A1111/Forge/SD.Next/KoboldCpp, answers and errors, against fakes."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest

from neuralrp.errors import BackendBadResponse, BackendUnavailable
from neuralrp.images.client import A1111Client, error_message, parse_info
from tests.fakes.a1111_png import make_png
from tests.fakes.fake_a1111 import FakeA1111

URL = "http://sd.test"


def client_for(fake: FakeA1111) -> A1111Client:
    return A1111Client(URL, timeout_s=30, transport=httpx.ASGITransport(app=fake.app))


def routes(answers: dict[str, Any]) -> httpx.MockTransport:
    """A server answering only the given GET paths (JSON), 404 elsewhere."""

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path in answers:
            return httpx.Response(200, json=answers[request.url.path])
        return httpx.Response(404, json={"detail": "Not Found"})

    return httpx.MockTransport(handle)


MODELS = [{"title": "m.safetensors [abc]", "model_name": "m"}]


async def test_detects_a1111_with_model_and_lists() -> None:
    client = client_for(FakeA1111())
    info = await client.detect()
    assert info.kind == "a1111" and info.model == "v1-5-pruned-emaonly.safetensors [6ce0161689]"
    assert info.models[1] == "anime/animagineXL_v31.safetensors"
    assert (await client.samplers())[:2] == ["DPM++ 2M", "DPM++ SDE"]
    assert "Karras" in await client.schedulers()
    progress = await client.progress()
    assert progress.active is False and progress.eta_s is None
    assert await client.interrupt() is True
    await client.aclose()


@pytest.mark.parametrize(("extra", "kind"), [
    ({"/sdapi/v1/sd-modules": []}, "forge"),
    ({"/sdapi/v1/checkpoint": {}}, "sdnext"),
    ({"/sdapi/v1/schedulers": []}, "a1111"),
])
async def test_detects_forge_and_sdnext_by_their_routes(extra: dict[str, Any], kind: str) -> None:
    transport = routes({"/sdapi/v1/sd-models": MODELS, "/sdapi/v1/options": {}, **extra})
    client = A1111Client(URL, transport=transport)
    info = await client.detect()
    assert info.kind == kind and info.model == "m.safetensors [abc]"
    await client.aclose()


async def test_koboldcpp_info_is_empty_and_it_has_no_progress() -> None:
    fake = FakeA1111("koboldcpp")
    client = client_for(fake)
    info = await client.detect()
    assert info.kind == "koboldcpp" and info.model == "sd15_dreamshaper"
    result = await client.txt2img({"prompt": "a cat", "width": 64, "height": 64})
    assert result.info == {} and result.image.startswith(b"\x89PNG")
    assert "karras" in await client.schedulers() and (await client.progress()).active is False
    assert await client.interrupt() is False
    assert fake.interrupts == 0 and not fake.requests_to("/sdapi/v1/progress")
    await client.aclose()


async def test_koboldcpp_without_an_image_model_is_unavailable() -> None:
    client = client_for(FakeA1111("koboldcpp", models=[]))
    with pytest.raises(BackendUnavailable, match="no image model loaded"):
        await client.detect()
    await client.aclose()


async def test_a1111_generation_parses_info_and_picks_the_first_real_image() -> None:
    client = client_for(FakeA1111())
    result = await client.txt2img({"prompt": "a cat", "seed": 5, "steps": 3, "width": 64, "height": 64})
    assert result.info["seed"] == 5 and result.info["prompt"] == "a cat"
    grid = base64.b64encode(make_png(8, 8, 1)).decode()
    real = base64.b64encode(make_png(16, 16, 2)).decode()
    transport = httpx.MockTransport(lambda r: httpx.Response(200, json={
        "images": [grid, real], "parameters": {}, "info": json.dumps({"index_of_first_image": 1})}))
    other = A1111Client(URL, transport=transport)
    assert (await other.txt2img({})).image == base64.b64decode(real)
    await client.aclose()
    await other.aclose()


async def test_errors_name_the_server_and_its_message() -> None:
    fake = FakeA1111()
    fake.fault("status", code=500, error="OutOfMemoryError", errors="CUDA out of memory")
    client = client_for(fake)
    with pytest.raises(BackendBadResponse, match="HTTP 500.*OutOfMemoryError: CUDA out of memory"):
        await client.txt2img({"prompt": "x"})
    with pytest.raises(BackendBadResponse, match="Init image not found"):
        await client.img2img({"prompt": "x"})
    await client.aclose()
    kobold = FakeA1111("koboldcpp")
    kobold.fault("status", code=503)
    busy = client_for(kobold)
    with pytest.raises(BackendUnavailable, match="busy: Server is busy"):
        await busy.txt2img({"prompt": "x"})
    await busy.aclose()


async def test_empty_image_and_noapi_and_unreachable() -> None:
    empty = A1111Client(URL, transport=httpx.MockTransport(
        lambda r: httpx.Response(200, json={"images": [""], "parameters": {}, "info": ""})))
    with pytest.raises(BackendBadResponse, match="without an image"):
        await empty.txt2img({"prompt": "x"})
    noapi = client_for(FakeA1111("noapi"))
    with pytest.raises(BackendUnavailable, match="start the webui with --api"):
        await noapi.detect()

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    down = A1111Client(URL, transport=httpx.MockTransport(refuse))
    with pytest.raises(BackendUnavailable, match=f"The image server at {URL} is not reachable"):
        await down.txt2img({"prompt": "x"})
    for c in (empty, noapi, down):
        await c.aclose()


def test_parse_info_and_error_message_shapes() -> None:
    assert parse_info("") == {} and parse_info(None) == {} and parse_info("{bad") == {}
    assert parse_info('{"seed": 3}') == {"seed": 3} and parse_info("[1]") == {}
    a1111 = httpx.Response(500, json={"error": "RuntimeError", "detail": "", "body": "", "errors": "boom"})
    assert error_message(a1111) == "RuntimeError: boom"
    kobold = httpx.Response(500, json={"detail": {"msg": "Error parsing input.", "type": "bad_input"}})
    assert error_message(kobold) == "Error parsing input."
    pydantic = httpx.Response(422, json={"detail": [{"loc": ["body", "steps"], "msg": "not an int"}]})
    assert error_message(pydantic) == "body.steps: not an int"
    assert error_message(httpx.Response(502, text="Bad gateway")) == "Bad gateway"
