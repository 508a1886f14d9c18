"""Image servers as they really take requests (issue 16): SD.Next detection, KoboldCpp 1.102 and 1.76
parameters, KoboldCpp's empty-image failure, and A1111's --api-auth login.

The fakes reproduce the real servers (tests/fakes/fake_a1111.py names the source of each behaviour).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from neuralrp.config import masked_dump
from neuralrp.errors import BackendBadResponse, NotSupportedByBackend
from neuralrp.images.client import A1111Client, for_server
from tests.fakes.fake_a1111 import FakeA1111
from tests.images.helpers import SD_URL, image_client

URL = "http://sd.test"
PAYLOAD = {"prompt": "a cat", "steps": 120, "cfg_scale": 30.0, "width": 500, "height": 700,
           "sampler_name": "Euler a", "scheduler": "Karras", "seed": 7}


def client_for(fake: FakeA1111, auth: tuple[str, str] | None = None) -> A1111Client:
    return A1111Client(URL, timeout_s=30, transport=httpx.ASGITransport(app=fake.app), auth=auth)


async def test_sdnext_is_detected_though_it_has_a_schedulers_route() -> None:
    fake = FakeA1111("sdnext")
    client = client_for(fake)
    info = await client.detect()
    assert info.kind == "sdnext"
    assert await client.schedulers() == []  # its /schedulers are its samplers, not schedulers
    assert "scheduler" not in for_server(PAYLOAD, info)
    await client.aclose()


async def test_forge_is_detected_by_its_module_list() -> None:
    client = client_for(FakeA1111("forge"))
    info = await client.detect()
    assert info.kind == "forge" and "Karras" in await client.schedulers()
    assert for_server(PAYLOAD, info)["scheduler"] == "Karras"
    await client.aclose()


async def test_koboldcpp_102_gets_its_scheduler_and_the_steps_it_really_runs() -> None:
    fake = FakeA1111("koboldcpp")
    client = client_for(fake)
    info = await client.detect()
    assert (info.kind, info.version) == ("koboldcpp", "1.102")
    sent = for_server(PAYLOAD, info)
    assert (sent["scheduler"], sent["steps"], sent["cfg_scale"]) == ("karras", 80, 25.0)
    await client.txt2img(sent)
    seen = fake.kobold_seen
    assert (seen["scheduler"], seen["steps"], seen["cfg_scale"]) == ("karras", sent["steps"], sent["cfg_scale"])
    assert "scheduler" not in for_server({**PAYLOAD, "scheduler": "Automatic"}, info)
    await client.aclose()


async def test_koboldcpp_176_has_no_scheduler_and_no_mask() -> None:
    fake = FakeA1111("koboldcpp", kobold_version="1.76")
    client = client_for(fake)
    info = await client.detect()
    sent = for_server(PAYLOAD, info)
    assert "scheduler" not in sent and (sent["width"], sent["height"], sent["steps"]) == (448, 640, 80)
    await client.txt2img(sent)
    assert (fake.kobold_seen["width"], fake.kobold_seen["height"]) == (448, 640)
    with pytest.raises(NotSupportedByBackend, match="KoboldCpp 1.76 has no inpainting mask"):
        for_server({**PAYLOAD, "init_images": ["x"], "mask": "y"}, info)
    await client.aclose()


async def test_koboldcpp_failure_is_an_empty_image_with_200() -> None:
    fake = FakeA1111("koboldcpp")
    fake.fault("kobold_fail")
    client = client_for(fake)
    with pytest.raises(BackendBadResponse, match="without an image"):
        await client.txt2img({"prompt": "a cat", "width": 64, "height": 64})
    await client.aclose()


async def test_a1111_api_auth_login() -> None:
    fake = FakeA1111(api_auth="ari:s3cret")
    anonymous = client_for(fake)
    with pytest.raises(BackendBadResponse, match="wants a login.*images.username and images.password"):
        await anonymous.detect()
    logged_in = client_for(fake, auth=("ari", "s3cret"))
    assert (await logged_in.detect()).kind == "a1111"
    assert (await logged_in.txt2img({"prompt": "a cat", "width": 64, "height": 64})).image.startswith(b"\x89PNG")
    assert fake.last_txt2img_request().headers["authorization"].startswith("Basic ")
    for client in (anonymous, logged_in):
        await client.aclose()


def test_the_app_logs_in_and_stores_what_koboldcpp_really_ran(make_settings: Any) -> None:
    sd = FakeA1111(api_auth="ari:s3cret")
    settings = make_settings(images={"base_url": SD_URL, "username": "ari", "password": "s3cret"})
    with image_client(settings, sd) as client:
        assert client.get("/api/images/status").json()["reachable"] is True
    assert masked_dump(settings)["images"]["password"] == "***"  # a secret, like llm.api_key
    with image_client(make_settings(images={"base_url": SD_URL}), sd) as client:  # set on the Settings page
        assert "wants a login" in client.get("/api/images/status").json()["detail"]
        put = client.put("/api/settings", json={"images": {"username": "ari", "password": "s3cret"}})
        assert put.status_code == 200 and put.json()["values"]["images"]["password"] == "***"
        assert client.get("/api/images/status").json()["reachable"] is True
    kobold = FakeA1111("koboldcpp")
    with image_client(make_settings(images={"base_url": SD_URL}), kobold) as client:
        resp = client.post("/api/images/generate", json={"prompt": "a cat", "steps": 120, "width": 64,
                                                         "height": 64})
        assert resp.status_code == 201, resp.text
    assert resp.json()["steps"] == 80 == kobold.last_txt2img_request().json["steps"]
