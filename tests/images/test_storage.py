"""Image storage: PNG parameters chunk (tEXt / iTXt), unique file names, JPEG conversion, rows and deletes."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from neuralrp.errors import BackendBadResponse, NotFound
from neuralrp.images import storage
from neuralrp.images.storage import NewImage
from tests.fakes.a1111_png import make_png, parse_infotext, png_text


def new_image(png: bytes, **changes: Any) -> NewImage:
    base = dict(source="manual", png=png, request={"prompt": "a cat"}, prompt="a cat, 1girl",
                negative_prompt="lowres", seed=77, sampler="Euler a", scheduler="Karras", steps=12, cfg_scale=6.5,
                model="m1")
    return NewImage(**{**base, **changes})


def test_parameters_chunk_replaces_the_servers_and_parses_as_a1111_infotext(conn: Any, tmp_path: Path) -> None:
    folder = storage.images_dir(tmp_path / "store")
    png = make_png(64, 48, 3, parameters="server text")
    image_id = storage.insert_image(conn, folder, new_image(png))
    row = storage.get_row(conn, image_id)
    data = (folder / row["file_name"]).read_bytes()
    text = png_text(data)["parameters"]
    parsed = parse_infotext(text)
    assert parsed["Prompt"] == "a cat, 1girl" and parsed["Negative prompt"] == "lowres"
    assert (parsed["Steps"], parsed["Sampler"], parsed["Schedule type"], parsed["CFG scale"], parsed["Seed"]) == (
        12, "Euler a", "Karras", 6.5, 77)
    assert (parsed["Size-1"], parsed["Size-2"], parsed["Model"]) == (64, 48, "m1")
    assert (row["width"], row["height"], row["seed"], row["model"]) == (64, 48, 77, "m1")
    with Image.open(io.BytesIO(data)) as image:
        assert image.size == (64, 48)


def test_non_latin_prompt_goes_into_an_itxt_chunk(conn: Any, tmp_path: Path) -> None:
    folder = storage.images_dir(tmp_path / "store")
    image_id = storage.insert_image(conn, folder, new_image(make_png(8, 8, 1), prompt="桜の木, 1girl"))
    data = (folder / storage.get_row(conn, image_id)["file_name"]).read_bytes()
    assert b"iTXt" in data and png_text(data)["parameters"].startswith("桜の木, 1girl\n")


def test_jpeg_is_stored_as_png_and_garbage_is_refused(conn: Any, tmp_path: Path) -> None:
    folder = storage.images_dir(tmp_path / "store")
    out = io.BytesIO()
    Image.new("RGB", (20, 10), (1, 2, 3)).save(out, "JPEG")
    image_id = storage.insert_image(conn, folder, new_image(out.getvalue()))
    assert (folder / storage.get_row(conn, image_id)["file_name"]).read_bytes().startswith(b"\x89PNG")
    with pytest.raises(BackendBadResponse, match="not an image"):
        storage.insert_image(conn, folder, new_image(b"nope"))
    assert len(list(folder.iterdir())) == 1


def test_many_images_in_the_same_second_get_distinct_files(conn: Any, tmp_path: Path) -> None:
    folder = storage.images_dir(tmp_path / "store")
    png = make_png(8, 8, 1)
    ids = [storage.insert_image(conn, folder, new_image(png)) for _ in range(20)]
    names = {storage.get_row(conn, i)["file_name"] for i in ids}
    assert len(names) == 20 and len(list(folder.iterdir())) == 20
    with pytest.raises(FileExistsError):
        storage.write_new_file(folder, next(iter(names)).removesuffix(".png"), png)


def test_a_failed_row_insert_leaves_no_file(conn: Any, tmp_path: Path) -> None:
    folder = storage.images_dir(tmp_path / "store")
    with pytest.raises(Exception, match="FOREIGN KEY|CHECK"):
        storage.insert_image(conn, folder, new_image(make_png(8, 8, 1), source="bogus"))
    assert list(folder.iterdir()) == []


def test_public_form_and_delete(conn: Any, tmp_path: Path) -> None:
    folder = storage.images_dir(tmp_path / "store")
    image_id = storage.insert_image(conn, folder, new_image(make_png(8, 8, 1), meta={"preset": "p", "keywords": None}))
    out = storage.image_public(conn, image_id)
    assert out["url"] == f"/api/images/{image_id}/file" and out["preset"] == "p" and out["keywords"] is None
    assert out["request"] == {"prompt": "a cat"} and out["tags"] == [] and out["message_seq"] is None
    name = storage.get_row(conn, image_id)["file_name"]
    storage.delete_image(conn, folder, image_id)
    assert not (folder / name).exists()
    with pytest.raises(NotFound):
        storage.get_row(conn, image_id)
    assert storage.referenced_files({"init_images": ["file:a.png", "b64"], "mask": "file:m.png"}) == ["a.png",
                                                                                                      "m.png"]
