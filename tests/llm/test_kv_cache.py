"""Background jobs keep off the reply's KV cache (issue 17), as each server's real API allows."""

from __future__ import annotations

import argparse
import struct
from pathlib import Path
from typing import Any

import httpx
import pytest

from neuralrp.config import load_settings
from neuralrp.llm import gguf
from neuralrp.llm.runtime import _local_server
from neuralrp.llm.scheduler import LLMScheduler
from neuralrp.llm.types import ChatMessage, SamplingParams
from tests.fakes import FakeLLM
from tests.llm.test_dialects import backend_for

MESSAGES = [ChatMessage("system", "You summarise."), ChatMessage("user", "A long scene.")]


async def answer(fake: FakeLLM, **settings: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The bodies of one reply and one background job (through the scheduler, as capsules and summaries go)."""
    backend = backend_for(fake, **settings)
    try:
        [chunk async for chunk in backend.stream(MESSAGES, SamplingParams(max_tokens=8))]
        reply = fake.requests_to("/v1/chat/completions", "POST")[-1].json
        job = LLMScheduler().background(backend, "summary", "Scene summary")
        assert job is not None
        await job.complete(MESSAGES, SamplingParams(max_tokens=8))
        background = fake.requests_to("/v1/chat/completions", "POST")[-1].json
    finally:
        await backend.aclose()
    return reply, background


async def test_llama_cpp_with_slots_puts_background_jobs_in_the_last_slot() -> None:
    reply, job = await answer(FakeLLM("llamacpp", slots=3))
    assert (reply["id_slot"], job["id_slot"]) == (0, 2)
    assert reply["cache_prompt"] is True and job["cache_prompt"] is True


async def test_llama_cpp_with_parallel_replies_lets_the_server_pick_the_reply_slot() -> None:
    reply, job = await answer(FakeLLM("llamacpp", slots=3), parallel_slots=2)
    assert "id_slot" not in reply and job["id_slot"] == 2


async def test_one_slot_llama_cpp_gets_no_slot_it_lacks() -> None:
    fake = FakeLLM("llamacpp", slots=1)
    reply, job = await answer(fake)
    assert "id_slot" not in reply and "id_slot" not in job, "an unknown id_slot is refused (or waits forever)"
    assert reply["cache_prompt"] is True


async def test_the_fake_refuses_a_slot_the_server_lacks() -> None:
    fake = FakeLLM("llamacpp", slots=1)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=fake.app), base_url="http://llm.test") as http:
        resp = await http.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}],
                                                             "id_slot": 1})
    assert resp.status_code == 400 and "Invalid slot ID" in resp.text


@pytest.mark.parametrize("flavour", ["llamacpp_python", "koboldcpp", "tabbyapi", "openai"])
async def test_servers_without_slot_fields_get_none(flavour: str) -> None:
    reply, job = await answer(FakeLLM(flavour))
    for body in (reply, job):
        assert "id_slot" not in body and "cache_prompt" not in body


async def test_ollama_background_jobs_keep_the_window_so_the_model_is_not_reloaded() -> None:
    fake = FakeLLM("ollama")
    backend = backend_for(fake)
    try:
        [chunk async for chunk in backend.stream(MESSAGES, SamplingParams(max_tokens=8))]
        job = LLMScheduler().background(backend, "summary", "Scene summary")
        assert job is not None
        await job.complete(MESSAGES, SamplingParams(max_tokens=8))
    finally:
        await backend.aclose()
    reply_ctx, job_ctx = (r.json["options"]["num_ctx"] for r in fake.native_chat_requests()[-2:])
    assert reply_ctx == job_ctx


def gguf_file(tmp_path: Path, layers: int = 30, kv_heads: int = 3) -> Path:
    """A GGUF header (no tensors) describing a SmolLM2-135M-shaped llama: 9 heads of 64 over 576, 3 KV heads."""
    def text(value: str) -> bytes:
        raw = value.encode()
        return struct.pack("<Q", len(raw)) + raw

    def number(key: str, value: int) -> bytes:
        return text(key) + struct.pack("<II", 4, value)

    kvs = [text("general.architecture") + struct.pack("<I", 8) + text("llama"), number("llama.block_count", layers),
           number("llama.embedding_length", 576), number("llama.attention.head_count", 9),
           number("llama.attention.head_count_kv", kv_heads)]
    path = tmp_path / "tiny.gguf"
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, len(kvs)) + b"".join(kvs))
    return path


def cache_flags(tmp_path: Path, **local: Any) -> dict[str, str]:
    settings = load_settings(overrides={"paths": {"data_dir": str(tmp_path)},
                                        "local": {"model_path": str(gguf_file(tmp_path)), **local}}, environ={})
    server, demo = _local_server(settings)
    assert not demo
    argv = server.build_command(8123)
    return dict(zip(argv[3::2], argv[4::2], strict=True))


def test_the_prompt_cache_is_sized_for_four_full_contexts_of_the_model(tmp_path: Path) -> None:
    per_token = 30 * 3 * (64 + 64) * 2  # layers x KV heads x (key + value dims) x 2 bytes (f16)
    assert gguf.kv_bytes_per_token(gguf_file(tmp_path)) == per_token
    flags = cache_flags(tmp_path, n_ctx=4096)
    assert int(flags["--cache_size"]) == (4 * 4096 * per_token // 2**20 + 1) * 2**20  # 361 MiB
    assert int(cache_flags(tmp_path, n_ctx=65536)["--cache_size"]) == gguf.PROMPT_CACHE_MAX_MB * 2**20
    assert "--cache" not in cache_flags(tmp_path, prompt_cache_mb=0)


def test_built_in_server_runs_with_a_ram_prompt_cache(tmp_path: Path) -> None:
    flags = cache_flags(tmp_path, prompt_cache_mb=64)
    assert (flags["--cache"], flags["--cache_type"], flags["--cache_size"]) == ("True", "ram", str(64 * 2**20))
    server_settings = pytest.importorskip("llama_cpp.server.settings")
    cli = pytest.importorskip("llama_cpp.server.cli")
    parser = argparse.ArgumentParser()  # the way llama_cpp/server/__main__.py reads its command line
    cli.add_args_from_model(parser, server_settings.Settings)
    argv = [arg for pair in flags.items() for arg in pair]
    parsed = cli.parse_model_from_args(server_settings.ModelSettings, parser.parse_args(argv))
    assert parsed.cache is True and parsed.cache_type == "ram" and parsed.cache_size == 64 * 2**20
