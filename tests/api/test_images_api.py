"""Images through the API: snapshot, manual generation, inpaint, recreate, gallery, errors; fakes in-process."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest

from neuralrp.images.scene import INSTRUCTIONS
from tests.fakes import FakeLLM
from tests.fakes.a1111_png import png_text
from tests.fakes.fake_a1111 import FakeA1111
from tests.images.helpers import (
    ALICE_TAGS,
    KEYWORDS,
    LLM_URL,
    SD_URL,
    add_character,
    image_client,
    keywords_json,
    mask_data_url,
    png_size,
    two_character_chat,
)

QUALITY = "masterpiece, best quality, high quality"
NEGATIVE = "low quality, worst quality, bad anatomy, bad hands, text, watermark"
SNAPSHOT_PROMPT = (f"{QUALITY}, 1girl, 1boy, {ALICE_TAGS}, black hair, glasses, scar, pouring tea, tea party, "
                   "gentle smile, silk kimono, moonlit greenhouse")


@pytest.fixture
def img_settings(make_settings: Any) -> Any:
    return make_settings(images={"base_url": SD_URL}, llm={"base_url": LLM_URL})


def _snapshot_requests(fake: FakeLLM) -> list[Any]:
    return [r for r in fake.chat_requests() if r.json["messages"][0]["content"] == INSTRUCTIONS]


def _row(client: Any, image_id: int) -> dict[str, Any]:
    with client.app.state.services.db.session() as conn:
        return dict(conn.execute("SELECT * FROM images WHERE id = ?", (image_id,)).fetchone())


def _image_path(client: Any, image_id: int) -> Any:
    return client.app.state.services.settings.data_dir / "images" / _row(client, image_id)["file_name"]


# --- snapshot -------------------------------------------------------------------------------------


def test_snapshot_sends_both_characters_tags_and_keywords_and_stores_everything(img_settings: Any) -> None:
    sd, llm = FakeA1111(), FakeLLM("llamacpp")
    llm.enqueue(keywords_json())
    with image_client(img_settings, sd, llm) as client:
        chat = two_character_chat(client)
        before = client.get(f"/api/chats/{chat['id']}/messages").json()["messages"]
        resp = client.post(f"/api/chats/{chat['id']}/snapshot", json={})
        assert resp.status_code == 201, resp.text
        image = resp.json()
        sent = sd.last_txt2img_request().json
        assert sent == {
            "prompt": SNAPSHOT_PROMPT, "negative_prompt": NEGATIVE, "seed": image["seed"], "sampler_name": "Euler a",
            "scheduler": "Automatic", "steps": 20, "cfg_scale": 7.0, "width": 512, "height": 512, "batch_size": 1,
            "n_iter": 1, "send_images": True, "save_images": False}
        assert isinstance(image["seed"], int) and image["seed"] >= 0
        # the LLM read the recent chat and was asked for JSON keywords only
        asked = _snapshot_requests(llm)[0].json["messages"][1]["content"]
        assert "Bob: *Bob pours tea into three cups.* Careful, it is hot." in asked
        # stored: ImageOut, DB row, file, PNG parameters chunk
        assert image["source"] == "snapshot" and image["chat_id"] == chat["id"]
        assert image["message_id"] == before[-1]["id"] and image["message_seq"] == before[-1]["seq"]
        assert image["keywords"] == KEYWORDS and image["preset"] is None and image["request"] == sent
        assert image["prompt"] == SNAPSHOT_PROMPT and image["model"] == "v1-5-pruned-emaonly"
        row = _row(client, image["id"])
        assert json.loads(row["request_json"]) == sent and row["seed"] == image["seed"]
        assert row["file_name"].startswith("snapshot-") and row["file_name"].endswith(".png")
        path = _image_path(client, image["id"])
        stored = path.read_bytes()
        params = png_text(stored)["parameters"]
        assert params.startswith(SNAPSHOT_PROMPT + "\nNegative prompt: " + NEGATIVE + "\n")
        assert f"Seed: {image['seed']}" in params and "Sampler: Euler a" in params and "Size: 512x512" in params
        assert client.get(f"/api/images/{image['id']}/file").content == stored
        # the snapshot wrote nothing into the chat
        after = client.get(f"/api/chats/{chat['id']}/messages").json()["messages"]
        assert after == before
        # recreate sends exactly the same payload and keeps the chat link
        again = client.post(f"/api/images/{image['id']}/recreate")
        assert again.status_code == 201, again.text
        assert sd.txt2img_requests()[-1].json == sent and len(sd.txt2img_requests()) == 2
        copy = again.json()
        assert copy["source"] == "recreate" and copy["message_id"] == image["message_id"]
        assert copy["keywords"] == KEYWORDS and copy["id"] != image["id"]
        assert _row(client, copy["id"])["file_name"] != row["file_name"]


def test_snapshot_does_not_leak_into_the_next_reply_prompt(img_settings: Any) -> None:
    sd, llm = FakeA1111(), FakeLLM("llamacpp")
    llm.enqueue(keywords_json(), "Bob sets the teapot down.")
    with image_client(img_settings, sd, llm) as client:
        chat = two_character_chat(client)
        assert client.post(f"/api/chats/{chat['id']}/snapshot", json={}).status_code == 201
        resp = client.post(f"/api/chats/{chat['id']}/messages", json={"content": "Thanks, Bob.", "stream": False})
        assert resp.status_code == 201, resp.text
    replies = [r for r in llm.chat_requests() if r.json["messages"][0]["content"] != INSTRUCTIONS]
    prompt_text = json.dumps(replies[0].json["messages"])
    assert "Thanks, Bob." in prompt_text
    for leaked in [*KEYWORDS.values(), QUALITY, "1girl", "blonde hair", "Negative prompt", "snapshot"]:
        assert leaked not in prompt_text


def test_snapshot_focus_mode_pictures_the_focus_character_and_user_in_shot(make_settings: Any) -> None:
    settings = make_settings(images={"base_url": SD_URL, "user_in_shot": True, "user_gender": "male",
                                     "user_tags": "red scarf, brown hair"}, llm={"base_url": LLM_URL})
    sd, llm = FakeA1111(), FakeLLM("llamacpp")
    llm.enqueue(keywords_json())
    with image_client(settings, sd, llm) as client:
        chat = two_character_chat(client, mode="focus")
        resp = client.post(f"/api/chats/{chat['id']}/snapshot", json={"width": 512, "height": 768})
        assert resp.status_code == 201, resp.text
    sent = sd.last_txt2img_request().json
    assert sent["prompt"] == (f"{QUALITY}, 1girl, 1boy, {ALICE_TAGS}, red scarf, brown hair, pouring tea, tea party, "
                              "gentle smile, silk kimono, moonlit greenhouse")
    assert "glasses" not in sent["prompt"] and (sent["width"], sent["height"]) == (512, 768)


def test_snapshot_character_ids_choose_who_is_pictured(img_settings: Any) -> None:
    sd, llm = FakeA1111(), FakeLLM("llamacpp")
    llm.enqueue(keywords_json(), keywords_json())
    with image_client(img_settings, sd, llm) as client:
        chat = two_character_chat(client)
        resp = client.post(f"/api/chats/{chat['id']}/snapshot", json={"character_ids": [chat["bob"]]})
        assert resp.status_code == 201, resp.text
        assert sd.last_txt2img_request().json["prompt"].startswith(f"{QUALITY}, 1boy, solo, black hair, glasses")
        other = add_character(client, "Stranger", "female", "red hair")
        bad = client.post(f"/api/chats/{chat['id']}/snapshot", json={"character_ids": [other]})
        assert bad.status_code == 422 and f"character {other} is not in chat" in bad.json()["detail"]
        missing = client.post("/api/chats/999/snapshot", json={})
        assert missing.status_code == 404
        no_body = client.post(f"/api/chats/{chat['id']}/snapshot")
        assert no_body.status_code == 201, no_body.text
        assert no_body.json()["keywords"] == KEYWORDS


def test_bad_llm_json_twice_uses_the_rule_fallback(img_settings: Any) -> None:
    sd, llm = FakeA1111(), FakeLLM("llamacpp")
    llm.enqueue("I think they are in a garden.", "{not json")
    with image_client(img_settings, sd, llm) as client:
        chat = two_character_chat(client)
        resp = client.post(f"/api/chats/{chat['id']}/snapshot", json={})
        assert resp.status_code == 201, resp.text
        image = resp.json()
        meta = json.loads(_row(client, image["id"])["info_json"])
    asks = _snapshot_requests(llm)
    assert len(asks) == 2
    assert asks[1].json["messages"][-1]["content"].startswith("Your answer could not be used: it contains no")
    assert image["keywords"] == {"location": "greenhouse", "action": "pouring", "activity": "drinking",
                                 "dress": "", "expression": "laughing"}
    assert meta["keywords_source"] == "rules"
    assert sd.last_txt2img_request().json["prompt"].endswith("pouring, drinking, laughing, greenhouse")


def test_snapshot_without_an_llm_still_works_from_rules(make_settings: Any) -> None:
    sd = FakeA1111()
    with image_client(make_settings(images={"base_url": SD_URL}), sd) as client:
        chat = two_character_chat(client)
        resp = client.post(f"/api/chats/{chat['id']}/snapshot", json={})
    assert resp.status_code == 201, resp.text
    assert resp.json()["keywords"]["location"] == "greenhouse"


# --- presets --------------------------------------------------------------------------------------


def test_presets_apply_above_large_context_and_not_when_off(make_settings: Any) -> None:
    on = make_settings(images={"base_url": SD_URL, "large_context_tokens": 10, "vram_gb": 8},
                       llm={"base_url": LLM_URL})
    sd, llm = FakeA1111(), FakeLLM("llamacpp")
    llm.enqueue(keywords_json())
    with image_client(on, sd, llm) as client:
        chat = two_character_chat(client)
        snap = client.post(f"/api/chats/{chat['id']}/snapshot", json={"width": 512, "height": 768}).json()
        sent = sd.last_txt2img_request().json
        assert (sent["steps"], sent["width"], sent["height"]) == (15, 256, 448)
        assert snap["preset"] == "large-context-8gb" and snap["steps"] == 15
        manual = client.post("/api/images/generate", json={"prompt": "a cat", "chat_id": chat["id"]}).json()
        assert manual["preset"] == "large-context-8gb"
        assert (sd.last_txt2img_request().json["steps"], sd.last_txt2img_request().json["width"]) == (15, 384)
        skipped = client.post("/api/images/generate", json={"prompt": "a cat", "chat_id": chat["id"],
                                                            "skip_preset": True}).json()
        assert skipped["preset"] is None and sd.last_txt2img_request().json["steps"] == 20
        no_chat = client.post("/api/images/generate", json={"prompt": "a cat"}).json()
        assert no_chat["preset"] is None
    off = make_settings(images={"base_url": SD_URL, "large_context_tokens": 10, "presets_enabled": False},
                        llm={"base_url": LLM_URL})
    sd2 = FakeA1111()
    with image_client(off, sd2) as client:
        chat_id = client.get("/api/chats").json()[0]["id"]
        image = client.post("/api/images/generate", json={"prompt": "a cat", "chat_id": chat_id}).json()
    assert image["preset"] is None
    sent = sd2.last_txt2img_request().json
    assert (sent["steps"], sent["width"], sent["height"]) == (20, 512, 512)


# --- manual generation ----------------------------------------------------------------------------


def test_generate_substitutes_names_and_remembers_the_prompt(img_settings: Any) -> None:
    sd = FakeA1111()
    with image_client(img_settings, sd) as client:
        chat = two_character_chat(client)
        assert client.get("/api/images/manual-prompt").json() == {
            "prompt": "", "negative_prompt": NEGATIVE, "width": 512, "height": 512}
        body = {"prompt": "[alice] and [BOB] at the beach", "negative_prompt": "blurry", "width": 768,
                "height": 512, "steps": 28, "cfg_scale": 5.5, "sampler_name": "DPM++ 2M", "scheduler": "Karras",
                "seed": 42, "chat_id": chat["id"]}
        resp = client.post("/api/images/generate", json=body)
        assert resp.status_code == 201, resp.text
        assert sd.last_txt2img_request().json == {
            "prompt": f"{ALICE_TAGS} and black hair, glasses, 1boy, scar at the beach", "negative_prompt": "blurry",
            "seed": 42, "sampler_name": "DPM++ 2M", "scheduler": "Karras", "steps": 28, "cfg_scale": 5.5,
            "width": 768, "height": 512, "batch_size": 1, "n_iter": 1, "send_images": True, "save_images": False}
        image = resp.json()
        assert image["source"] == "manual" and image["seed"] == 42 and image["message_id"] is None
        assert (image["width"], image["height"]) == (768, 512) and image["chat_id"] == chat["id"]
        assert client.get("/api/images/manual-prompt").json() == {
            "prompt": "[alice] and [BOB] at the beach", "negative_prompt": "blurry", "width": 768, "height": 512}
        unknown = client.post("/api/images/generate", json={"prompt": "[Zed] waving", "chat_id": chat["id"]})
        assert unknown.status_code == 400 and "[Zed]" in unknown.json()["detail"]
        # library characters are found without a chat too
        lib = client.post("/api/images/generate", json={"prompt": "portrait of [Alice]"})
        assert lib.status_code == 201 and sd.last_txt2img_request().json["prompt"] == f"portrait of {ALICE_TAGS}"
        empty = client.post("/api/images/generate", json={"prompt": "  "})
        assert empty.status_code == 422 and "prompt" in empty.json()["detail"]
        bad = client.post("/api/images/generate", json={"prompt": "x", "steps": 0})
        assert bad.status_code == 422 and bad.json()["errors"][0]["loc"] == ["body", "steps"]
    assert len(sd.txt2img_requests()) == 2


def test_inpaint_sends_the_mask_init_image_and_parameters(img_settings: Any) -> None:
    sd = FakeA1111()
    with image_client(img_settings, sd) as client:
        source = client.post("/api/images/generate", json={"prompt": "a red door", "seed": 7}).json()
        original = _image_path(client, source["id"]).read_bytes()
        mask = mask_data_url(source["width"], source["height"])
        resp = client.post(f"/api/images/{source['id']}/inpaint", json={
            "mask": mask, "prompt": "a blue door", "denoising_strength": 0.6, "mask_blur": 8, "seed": 9,
            "inpaint_full_res": True})
        assert resp.status_code == 201, resp.text
        sent = sd.last_img2img_request().json
        assert base64.b64decode(sent["init_images"][0]) == original
        assert sent["mask"] == mask.partition(",")[2]
        assert {k: sent[k] for k in ("prompt", "negative_prompt", "denoising_strength", "mask_blur",
                                     "inpainting_fill", "inpaint_full_res", "inpaint_full_res_padding",
                                     "inpainting_mask_invert", "seed", "steps", "cfg_scale", "sampler_name",
                                     "width", "height")} == {
            "prompt": "a blue door", "negative_prompt": NEGATIVE, "denoising_strength": 0.6, "mask_blur": 8,
            "inpainting_fill": 1, "inpaint_full_res": True, "inpaint_full_res_padding": 32,
            "inpainting_mask_invert": 0, "seed": 9, "steps": 20, "cfg_scale": 7.0, "sampler_name": "Euler a",
            "width": 512, "height": 512}
        image = resp.json()
        assert image["source"] == "inpaint" and image["prompt"] == "a blue door"
        assert image["request"]["init_images"] == ["file:" + _row(client, source["id"])["file_name"]]
        mask_name = image["request"]["mask"].removeprefix("file:")
        folder = client.app.state.services.settings.data_dir / "images"
        assert (folder / mask_name).is_file()
        # recreate of an inpaint sends the same img2img payload again
        again = client.post(f"/api/images/{image['id']}/recreate")
        assert again.status_code == 201, again.text
        assert sd.img2img_requests()[-1].json == sent
        # wrong mask size -> 422 naming both sizes, nothing sent
        wrong = client.post(f"/api/images/{source['id']}/inpaint", json={"mask": mask_data_url(64, 64)})
        assert wrong.status_code == 422 and "64x64" in wrong.json()["detail"]
        junk = client.post(f"/api/images/{source['id']}/inpaint", json={"mask": "data:image/png;base64,abc"})
        assert junk.status_code == 422 and "mask" in junk.json()["detail"]
        assert len(sd.img2img_requests()) == 2
        # deleting both images that use the mask removes the mask file too
        assert client.delete(f"/api/images/{again.json()['id']}").status_code == 200
        assert (folder / mask_name).is_file()
        assert client.delete(f"/api/images/{image['id']}").status_code == 200
        assert not (folder / mask_name).exists()


# --- gallery --------------------------------------------------------------------------------------


def test_favorites_tags_paging_and_delete(img_settings: Any) -> None:
    sd = FakeA1111()
    with image_client(img_settings, sd) as client:
        ids = [client.post("/api/images/generate", json={"prompt": f"picture {i}"}).json()["id"] for i in range(5)]
        tags = ["Forest", " night  sky", "forest"]
        fav = client.patch(f"/api/images/{ids[1]}", json={"favorite": True, "tags": tags})
        assert fav.status_code == 200 and fav.json()["favorite"] is True
        assert fav.json()["tags"] == ["Forest", "night sky"]
        client.patch(f"/api/images/{ids[3]}", json={"tags": ["forest"]})
        page1 = client.get("/api/images", params={"limit": 2}).json()
        assert [i["id"] for i in page1["images"]] == [ids[4], ids[3]] and page1["next_before_id"] == ids[3]
        page2 = client.get("/api/images", params={"limit": 2, "before_id": page1["next_before_id"]}).json()
        assert [i["id"] for i in page2["images"]] == [ids[2], ids[1]]
        page3 = client.get("/api/images", params={"limit": 2, "before_id": page2["next_before_id"]}).json()
        assert [i["id"] for i in page3["images"]] == [ids[0]] and page3["next_before_id"] is None
        assert [i["id"] for i in client.get("/api/images", params={"favorite": "true"}).json()["images"]] == [ids[1]]
        assert [i["id"] for i in client.get("/api/images", params={"tag": "FOREST"}).json()["images"]] == [ids[3],
                                                                                                           ids[1]]
        assert client.get("/api/images/tags").json() == [{"name": "Forest", "count": 2},
                                                         {"name": "night sky", "count": 1}]
        path = _image_path(client, ids[1])
        assert path.is_file()
        assert client.delete(f"/api/images/{ids[1]}").json() == {"deleted": True}
        assert not path.exists()
        assert client.get(f"/api/images/{ids[1]}").status_code == 404
        assert client.get(f"/api/images/{ids[1]}/file").status_code == 404
        assert client.get("/api/images/tags").json() == [{"name": "Forest", "count": 1}]
        bad = client.patch(f"/api/images/{ids[0]}", json={"tags": "forest"})
        assert bad.status_code == 422
        assert client.get("/api/images", params={"limit": 0}).status_code == 422
    names = {p.name for p in (img_settings.data_dir / "images").iterdir()}
    assert len(names) == 4 and all(n.startswith("manual-") for n in names)


# --- other servers and errors ---------------------------------------------------------------------


def test_koboldcpp_variant_without_info_progress_or_schedulers(img_settings: Any) -> None:
    sd, llm = FakeA1111("koboldcpp"), FakeLLM("koboldcpp")
    llm.enqueue(keywords_json())
    with image_client(img_settings, sd, llm) as client:
        status = client.get("/api/images/status").json()
        assert status["backend"] == "koboldcpp" and status["reachable"] and status["model"] == "sd15_dreamshaper"
        options = client.get("/api/images/options").json()
        assert "karras" in options["schedulers"] and "Euler a" in options["samplers"]  # KoboldCpp 1.102
        assert options["defaults"]["scheduler"] is None
        chat = two_character_chat(client)
        resp = client.post(f"/api/chats/{chat['id']}/snapshot", json={})
        assert resp.status_code == 201, resp.text
        image = resp.json()
        sent = sd.last_txt2img_request().json
        assert "scheduler" not in sent and sent["prompt"] == SNAPSHOT_PROMPT
        assert image["seed"] == sent["seed"] and image["model"] == "sd15_dreamshaper"
        assert png_text(_image_path(client, image["id"]).read_bytes())["parameters"].startswith(SNAPSHOT_PROMPT)
        assert client.get("/api/images/progress").json() == {"active": False, "progress": 0.0, "eta_s": None,
                                                             "step": None, "steps": None}
        assert client.post("/api/images/interrupt").json() == {"interrupted": False}
        inpaint = client.post(f"/api/images/{image['id']}/inpaint",
                              json={"mask": mask_data_url(*png_size(_image_path(client, image["id"]).read_bytes()))})
        assert inpaint.status_code == 201, inpaint.text
        assert "mask" in sd.last_img2img_request().json


def test_noapi_and_unreachable_servers_give_clear_503(img_settings: Any, make_settings: Any) -> None:
    with image_client(img_settings, FakeA1111("noapi")) as client:
        status = client.get("/api/images/status").json()
        assert status["configured"] and not status["reachable"] and "--api" in status["detail"]
        resp = client.post("/api/images/generate", json={"prompt": "a cat"})
        assert resp.status_code == 503 and "--api" in resp.json()["detail"]
        assert client.get("/api/images/options").status_code == 503

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with image_client(img_settings, sd_transport=httpx.MockTransport(refuse)) as client:
        resp = client.post("/api/images/generate", json={"prompt": "a cat"})
        assert resp.status_code == 503
        assert resp.json()["detail"].startswith(f"The image server at {SD_URL} is not reachable")
        assert client.get("/api/images/status").json()["reachable"] is False
        assert client.get("/api/images/progress").json()["active"] is False
    with image_client(make_settings()) as client:
        status = client.get("/api/images/status").json()
        assert status["configured"] is False and "images.base_url" in status["how_to_enable"]
        for call in (client.get("/api/images/options"), client.post("/api/images/generate", json={"prompt": "x"})):
            assert call.status_code == 503 and "images.base_url" in call.json()["detail"]
        assert client.post("/api/images/interrupt").json() == {"interrupted": False}
    assert not any((img_settings.data_dir / "images").iterdir())


def test_out_of_memory_is_a_502_with_the_servers_message(img_settings: Any) -> None:
    sd = FakeA1111()
    sd.fault("status", code=500, error="OutOfMemoryError", errors="CUDA out of memory. Tried to allocate 2.00 GiB")
    with image_client(img_settings, sd) as client:
        resp = client.post("/api/images/generate", json={"prompt": "a cat"})
        assert resp.status_code == 502
        assert resp.json()["error"] == "BackendBadResponse"
        assert "OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB" in resp.json()["detail"]
        assert client.get("/api/images").json()["images"] == []
        assert client.post("/api/images/generate", json={"prompt": "a cat"}).status_code == 201
