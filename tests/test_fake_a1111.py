"""The fake A1111 (and its KoboldCpp and no-`--api` variants) follows shared/reference/api-contracts.md."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import time
from typing import Any

from PIL import Image

from tests.fake_helpers import client, post
from tests.fakes import FakeA1111, make_png, png_text
from tests.waiting import async_wait_until

# --------------------------------------------------------------------------- A1111


TXT2IMG = {"prompt": "a knight in a forest", "negative_prompt": "blurry", "seed": 1234, "sampler_name": "Euler a",
           "scheduler": "Automatic", "steps": 20, "cfg_scale": 7, "width": 64, "height": 48,
           "override_settings": {"CLIP_stop_at_last_layers": 2}, "unknown_key": 1}


def decode_png(b64: str) -> tuple[Image.Image, dict[str, str]]:
    """Open a base64 PNG; return the image and its text chunks."""
    data = base64.b64decode(b64)
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    return image, png_text(data)


async def test_a1111_txt2img_contract() -> None:
    fake = FakeA1111()
    response = await post(fake.app, "/sdapi/v1/txt2img", TXT2IMG)
    body = response.json()
    assert response.status_code == 200 and isinstance(body["info"], str)
    info = json.loads(body["info"])
    assert info["seed"] == 1234 and info["all_seeds"] == [1234] and info["sampler_name"] == "Euler a"
    assert info["clip_skip"] == 2 and info["index_of_first_image"] == 0
    params = body["parameters"]
    assert params["steps"] == 20 and params["sampler_index"] == "Euler" and params["cfg_scale"] == 7.0
    assert "unknown_key" not in params and params["denoising_strength"] == 0.75
    image, chunks = decode_png(body["images"][0])
    assert image.size == (64, 48)
    assert chunks["parameters"] == info["infotexts"][0]
    assert chunks["parameters"].startswith("a knight in a forest\nNegative prompt: blurry\nSteps: 20, Sampler: Euler a")
    assert "Clip skip: 2" in chunks["parameters"]
    assert fake.last_txt2img_request().json["prompt"] == "a knight in a forest"


async def test_a1111_defaults_and_sampler_quirks() -> None:
    fake = FakeA1111()
    plain = (await post(fake.app, "/sdapi/v1/txt2img", {"prompt": "x", "width": 32, "height": 32})).json()
    combo = (await post(fake.app, "/sdapi/v1/txt2img", {"prompt": "x", "sampler_name": "DPM++ 2M Karras",
                                                        "width": 32, "height": 32, "steps": "12"})).json()
    unknown = (await post(fake.app, "/sdapi/v1/txt2img", {"prompt": "x", "sampler_name": "Nope",
                                                          "width": 32, "height": 32})).json()
    assert plain["parameters"]["steps"] == 50 and json.loads(plain["info"])["sampler_name"] == "Euler"
    assert json.loads(plain["info"])["seed"] != -1
    assert combo["parameters"]["steps"] == 12
    assert "Sampler: DPM++ 2M, Schedule type: Automatic" in json.loads(combo["info"])["infotexts"][0]
    assert json.loads(unknown["info"])["sampler_name"] == "DPM++ 2M"


async def test_a1111_validation_error_is_pydantic_v1_shape() -> None:
    response = await post(FakeA1111().app, "/sdapi/v1/txt2img", {"steps": "many"})
    assert response.status_code == 422
    assert response.json() == {"detail": [{"loc": ["body", "steps"], "msg": "value is not a valid integer",
                                           "type": "type_error.integer"}]}


async def test_a1111_batch_with_grid() -> None:
    body = {"prompt": "x", "width": 16, "height": 16, "batch_size": 2, "seed": 7, "save_images": True}
    result = (await post(FakeA1111().app, "/sdapi/v1/txt2img", body)).json()
    info = json.loads(result["info"])
    assert len(result["images"]) == 3 and info["index_of_first_image"] == 1 and info["all_seeds"] == [7, 8]


async def test_img2img_without_init_images_is_404() -> None:
    response = await post(FakeA1111().app, "/sdapi/v1/img2img", {"prompt": "x"})
    assert response.status_code == 404
    assert response.json() == {"error": "HTTPException", "detail": "Init image not found", "body": "", "errors": ""}


async def test_img2img_inpaint_and_bad_image() -> None:
    fake = FakeA1111()
    init = base64.b64encode(make_png(8, 8, 1)).decode()
    body = {"init_images": [init], "mask": init, "prompt": "a red scarf", "denoising_strength": 0.6,
            "mask_blur": 4, "inpainting_fill": 1, "inpaint_full_res": True, "inpaint_full_res_padding": 32,
            "steps": 20, "width": 32, "height": 32}
    good = (await post(fake.app, "/sdapi/v1/img2img", body)).json()
    bad = await post(fake.app, "/sdapi/v1/img2img", {**body, "init_images": ["not an image"]})
    assert good["parameters"]["init_images"] is None and good["parameters"]["mask"] is None
    text = json.loads(good["info"])["infotexts"][0]
    assert "Denoising strength: 0.6, Mask blur: 4, Inpaint area: Only masked, Masked area padding: 32" in text
    assert bad.status_code == 500 and bad.json()["detail"] == "Invalid encoded image"
    assert fake.img2img_requests()[0].json["mask"] == init


async def test_a1111_options_models_and_png_info() -> None:
    fake = FakeA1111()
    async with client(fake.app) as c:
        models = (await c.get("/sdapi/v1/sd-models")).json()
        assert (await c.post("/sdapi/v1/options", json={"sd_model_checkpoint": "anime_animagineXL_v31"})).json() is None
        missing = await c.post("/sdapi/v1/options", json={"sd_model_checkpoint": "nope.safetensors"})
        options = (await c.get("/sdapi/v1/options")).json()
        schedulers = (await c.get("/sdapi/v1/schedulers")).json()
        samplers = (await c.get("/sdapi/v1/samplers")).json()
        png = base64.b64encode(make_png(8, 8, 1, "a cat\nSteps: 20, Sampler: Euler, Seed: 5, Size: 8x8")).decode()
        info = (await c.post("/sdapi/v1/png-info", json={"image": png})).json()
    assert models[0]["title"] == "v1-5-pruned-emaonly.safetensors [6ce0161689]"
    assert options["sd_model_checkpoint"] == "anime/animagineXL_v31.safetensors"
    assert missing.status_code == 500 and missing.json() == {
        "error": "RuntimeError", "detail": "", "body": "", "errors": "model 'nope.safetensors' not found"}
    assert schedulers[0]["name"] == "automatic" and samplers[0]["name"] == "DPM++ 2M"
    assert info["info"].startswith("a cat") and info["parameters"]["Steps"] == 20
    assert info["parameters"]["Prompt"] == "a cat" and info["parameters"]["Size-1"] == 8


async def test_a1111_progress_and_interrupt() -> None:
    fake = FakeA1111()
    fake.fault("slow", seconds=5.0)
    async with client(fake.app) as c:
        idle = (await c.get("/sdapi/v1/progress")).json()
        started = time.monotonic()
        task = asyncio.create_task(c.post("/sdapi/v1/txt2img", json={"prompt": "x", "width": 8, "height": 8}))
        await async_wait_until(lambda: fake.job, what="the txt2img job to start")

        async def progress() -> dict[str, Any]:
            return (await c.get("/sdapi/v1/progress")).json()  # type: ignore[no-any-return]

        running = await async_wait_until(progress, until=lambda body: body["progress"] > 0.01,
                                         what="the job to report some progress")
        assert (await c.post("/sdapi/v1/interrupt")).json() == {}
        result = await task
    assert idle["progress"] == 0 and idle["state"]["job_count"] == 0
    assert 0.01 <= running["progress"] < 0.99 and running["state"]["job_count"] == 1
    assert running["state"]["sampling_steps"] == 50 and running["eta_relative"] > 0
    assert result.status_code == 200 and len(result.json()["images"]) == 1
    assert time.monotonic() - started < 2 and fake.interrupts == 1


async def test_a1111_error_fault_body() -> None:
    fake = FakeA1111()
    fake.fault("status", code=500, error="OutOfMemoryError", errors="CUDA out of memory. Tried to allocate 2.00 GiB")
    response = await post(fake.app, "/sdapi/v1/txt2img", {"prompt": "x"})
    assert response.status_code == 500
    assert response.json() == {"error": "OutOfMemoryError", "detail": "", "body": "",
                               "errors": "CUDA out of memory. Tried to allocate 2.00 GiB"}


async def test_koboldcpp_image_variant() -> None:
    fake = FakeA1111("koboldcpp")
    fake.fault("status", code=503)
    async with client(fake.app) as c:
        busy = await c.post("/sdapi/v1/txt2img", json={"prompt": "x"})
        result = (await c.post("/sdapi/v1/txt2img", json={"prompt": "x", "batch_size": 3, "width": 64,
                                                          "height": 32})).json()
        img2img = await c.post("/sdapi/v1/img2img", json={"prompt": "x", "width": 16, "height": 16})
        missing = [(await c.request(m, f"/sdapi/v1/{p}")).status_code
                   for m, p in [("GET", "progress"), ("POST", "interrupt"), ("GET", "schedulers"), ("POST", "options")]]
        options = (await c.get("/sdapi/v1/options")).json()
    assert busy.status_code == 503 and busy.json()["detail"]["type"] == "service_unavailable"
    assert result["info"] == "" and result["parameters"] == {} and result["animated"] is False
    assert len(result["images"]) == 1 and decode_png(result["images"][0])[0].size == (64, 32)
    assert img2img.status_code == 200 and missing == [404, 404, 404, 404]
    assert options == {"samples_format": "png", "sd_model_checkpoint": "sd15_dreamshaper"}


async def test_noapi_variant_is_all_404() -> None:
    fake = FakeA1111("noapi")
    async with client(fake.app) as c:
        responses = [await c.get("/sdapi/v1/sd-models"), await c.post("/sdapi/v1/txt2img", json={})]
    assert all(r.status_code == 404 and r.json() == {"detail": "Not Found"} for r in responses)
    assert [r.path for r in fake.requests] == ["/sdapi/v1/sd-models", "/sdapi/v1/txt2img"]
