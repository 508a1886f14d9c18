"""The image service in the running app: progress and interrupt while a job runs, settings edits, status."""

from __future__ import annotations

import threading
from typing import Any

from tests.fakes.fake_a1111 import FakeA1111
from tests.images.helpers import SD_URL, image_client
from tests.waiting import wait_until


def test_progress_and_interrupt_while_generating(make_settings: Any) -> None:
    sd = FakeA1111()
    sd.fault("slow", seconds=30.0)  # long enough to be seen running on a busy machine; the interrupt ends it
    with image_client(make_settings(images={"base_url": SD_URL}), sd) as client:
        done: dict[str, Any] = {}
        worker = threading.Thread(target=lambda: done.update(
            resp=client.post("/api/images/generate", json={"prompt": "a cat", "steps": 30})))
        worker.start()
        seen = wait_until(lambda: client.get("/api/images/progress").json(), until=lambda body: body["active"],
                          what="the image job to show as active")
        assert seen["active"] is True and 0 < seen["progress"] < 1 and seen["steps"] == 30
        assert seen["eta_s"] is not None and seen["eta_s"] > 0
        assert client.post("/api/images/interrupt").json() == {"interrupted": True}
        worker.join(30)
        assert done["resp"].status_code == 201, done["resp"].text
        assert sd.interrupts == 1
        assert client.get("/api/images/progress").json()["active"] is False


def test_image_settings_edited_in_the_ui_apply_without_restart(make_settings: Any) -> None:
    sd = FakeA1111()
    with image_client(make_settings(), sd) as client:
        assert client.get("/api/images/status").json()["configured"] is False
        doc = client.put("/api/settings", json={"images": {"base_url": SD_URL, "steps": 9, "user_in_shot": True}})
        assert doc.status_code == 200, doc.text
        assert doc.json()["values"]["images"]["steps"] == 9
        status = client.get("/api/images/status").json()
        assert status["reachable"] is True and status["backend"] == "a1111"
        assert client.get("/api/images/options").json()["defaults"]["steps"] == 9
        assert client.post("/api/images/generate", json={"prompt": "a cat"}).status_code == 201
        assert sd.last_txt2img_request().json["steps"] == 9
        bad = client.put("/api/settings", json={"images": {"vram_gb": 10}})
        assert bad.status_code == 422 and "images.vram_gb" in bad.json()["detail"]


def test_options_lists_everything_the_panel_needs(make_settings: Any) -> None:
    with image_client(make_settings(images={"base_url": SD_URL}), FakeA1111()) as client:
        options = client.get("/api/images/options").json()
    assert options["model"] == "v1-5-pruned-emaonly.safetensors [6ce0161689]" and len(options["models"]) == 2
    assert "Euler a" in options["samplers"] and "Karras" in options["schedulers"]
    assert options["size_presets"] == [{"label": "Square", "width": 512, "height": 512},
                                       {"label": "Portrait", "width": 512, "height": 768},
                                       {"label": "Landscape", "width": 768, "height": 512}]
    assert options["defaults"] == {"steps": 20, "cfg_scale": 7.0, "sampler_name": "Euler a",
                                   "scheduler": "Automatic", "width": 512, "height": 512,
                                   "negative_prompt": "low quality, worst quality, bad anatomy, bad hands, text, "
                                                      "watermark"}


def test_system_status_reports_the_image_backend(make_settings: Any) -> None:
    with image_client(make_settings(images={"base_url": SD_URL}), FakeA1111()) as client:
        images = client.get("/api/system/status").json()["backends"]["images"]
    assert images["configured"] is True and images["reachable"] is True and images["url"] == SD_URL


def test_image_settings_from_the_environment() -> None:
    import pytest

    from neuralrp.config import load_settings
    from neuralrp.errors import ConfigError

    env = {"NEURALRP_IMAGES_VRAM_GB": "12", "NEURALRP_IMAGES_USER_GENDER": "male",
           "NEURALRP_IMAGES_SIZE_PRESETS": '[{"label": "Tall", "width": 512, "height": 1024}]'}
    images = load_settings(environ=env).images
    assert images.vram_gb == 12 and images.user_gender == "male" and images.size_presets[0].height == 1024
    with pytest.raises(ConfigError, match="'images.vram_gb': .*must be 8, 12 or 16"):
        load_settings(environ={"NEURALRP_IMAGES_VRAM_GB": "10"})
