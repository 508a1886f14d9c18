"""Masks and pictures are sized from their headers before anything is decoded, and decoding is bounded."""

from __future__ import annotations

import base64
import io
import struct
import threading
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from neuralrp.errors import BackendBadResponse
from neuralrp.images import b64, storage
from neuralrp.images.service import MAX_DECODES
from tests.fakes.fake_a1111 import FakeA1111
from tests.images.helpers import SD_URL, image_client, mask_data_url

GATE_TIMEOUT_S = 20.0
LIMIT = "the limit of 8192x8192 pixels (67 megapixels)"


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def header_only_png(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height but whose pixel data is junk: decoding it can only fail."""
    ihdr = _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
    return b"\x89PNG\r\n\x1a\n" + ihdr + _chunk(b"IDAT", b"not zlib data") + _chunk(b"IEND", b"")


def data_url(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode()


@pytest.fixture
def sd() -> FakeA1111:
    return FakeA1111()


@pytest.fixture
def client(make_settings: Any, sd: FakeA1111) -> Iterator[TestClient]:
    with image_client(make_settings(images={"base_url": SD_URL}), sd) as test_client:
        yield test_client


@pytest.fixture
def picture(client: TestClient) -> dict[str, Any]:
    made = client.post("/api/images/generate", json={"prompt": "a red door", "seed": 7})
    assert made.status_code == 201, made.text
    return dict(made.json())


def _mask_files(client: TestClient) -> list[str]:
    folder = client.app.state.services.settings.data_dir / "images"  # type: ignore[attr-defined]
    return sorted(p.name for p in folder.glob("mask-*"))


def test_a_mask_over_the_pixel_limit_is_refused_from_its_header(client: TestClient, sd: FakeA1111,
                                                                picture: dict[str, Any]) -> None:
    """The junk pixel data would fail to decode with another sentence: the 413 proves nothing was decoded."""
    resp = client.post(f"/api/images/{picture['id']}/inpaint", json={"mask": data_url(header_only_png(20000, 20000))})
    assert resp.status_code == 413, resp.text
    assert resp.json() == {"error": "PayloadTooLarge",
                           "detail": f"'mask' is refused: it is 20000x20000 pixels, over {LIMIT}"}
    wrong = client.post(f"/api/images/{picture['id']}/inpaint", json={"mask": data_url(header_only_png(600, 600))})
    assert wrong.status_code == 422, wrong.text
    assert wrong.json()["detail"] == ("'mask' is 600x600 but the image is 512x512; draw the mask at the "
                                      "image's size")
    assert sd.img2img_requests() == []
    assert _mask_files(client) == []


def test_a_mask_of_the_right_size_with_broken_pixels_is_refused(client: TestClient, sd: FakeA1111,
                                                                picture: dict[str, Any]) -> None:
    resp = client.post(f"/api/images/{picture['id']}/inpaint", json={"mask": data_url(header_only_png(512, 512))})
    assert resp.status_code == 422, resp.text
    assert resp.json()["detail"] == "'mask' is not a base64 PNG image"
    out = io.BytesIO()
    Image.new("L", (512, 512), 255).save(out, "GIF")
    gif = client.post(f"/api/images/{picture['id']}/inpaint", json={"mask": data_url(out.getvalue())})
    assert gif.status_code == 422, gif.text
    assert gif.json()["detail"] == "'mask' is a GIF image; send a PNG (or JPEG/WebP) data URL"
    assert sd.img2img_requests() == [] and _mask_files(client) == []


def test_mask_decoding_is_bounded(client: TestClient, monkeypatch: pytest.MonkeyPatch,
                                  picture: dict[str, Any]) -> None:
    """Four inpaintings at once: only MAX_DECODES decode at a time, the others wait their turn."""
    inside: list[int] = []
    lock = threading.Lock()
    full, over, release = threading.Event(), threading.Event(), threading.Event()
    real = storage.to_png

    def held(data: bytes) -> tuple[bytes, int, int]:
        with lock:
            inside.append(1)
            count = len(inside)
        if count > MAX_DECODES:
            over.set()
        elif count == MAX_DECODES:
            full.set()
        release.wait(GATE_TIMEOUT_S)
        with lock:
            inside.pop()
        return real(data)

    monkeypatch.setattr(storage, "to_png", held)
    mask = mask_data_url(picture["width"], picture["height"])
    with ThreadPoolExecutor(4) as pool:
        sent = [pool.submit(client.post, f"/api/images/{picture['id']}/inpaint", json={"mask": mask})
                for _ in range(4)]
        assert full.wait(GATE_TIMEOUT_S), "the first decodes never started"
        assert not over.wait(0.5), f"more than {MAX_DECODES} masks were decoded at once"
        release.set()
        assert [f.result(GATE_TIMEOUT_S).status_code for f in sent] == [201] * 4
    assert not over.is_set()


def test_a_server_picture_over_the_limit_is_a_502_naming_it() -> None:
    with pytest.raises(BackendBadResponse) as caught:
        storage.as_png(header_only_png(9000, 9000))
    assert caught.value.message == ("The image server sent a picture NeuralRP does not decode: it is 9000x9000 "
                                    f"pixels, over {LIMIT}.")
    assert storage.image_size(header_only_png(9000, 9000)) == ("PNG", 9000, 9000)


@pytest.mark.parametrize("size", [0, 1, 2, 3, 4, b64.DATA_STEP - 1, b64.DATA_STEP, b64.DATA_STEP + 1,
                                  3 * b64.DATA_STEP + 5])
def test_stepwise_base64_matches_the_standard_library(size: int) -> None:
    data = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
    text = b64.encode(data)
    assert text == base64.b64encode(data).decode()
    assert b64.decode(text) == data


@pytest.mark.parametrize("text", ["abc", "ab=c", "a b c d", "éééé", "AAAA" * 300_000 + "A=AA"])
def test_stepwise_base64_refuses_what_is_not_base64(text: str) -> None:
    with pytest.raises(ValueError):
        b64.decode(text)
