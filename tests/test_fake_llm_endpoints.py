"""The fake LLM's Ollama native /api/chat and per-flavour info endpoints follow shared/reference/api-contracts.md."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.fake_helpers import CHAT, HELLO, client, post
from tests.fakes import NATIVE_CHAT_PATH, FakeLLM, count_tokens

# --------------------------------------------------------------------------- Ollama native /api/chat


def native_body(**extra: Any) -> dict[str, Any]:
    """An Ollama native chat body (no `stream` key: the native default is to stream)."""
    return {"model": "llama3.2", "messages": HELLO, **extra}


def ndjson_lines(raw: bytes) -> list[dict[str, Any]]:
    """Every NDJSON line of a body, decoded."""
    return [json.loads(line) for line in raw.decode().splitlines() if line.strip()]


async def test_native_chat_streams_ndjson_by_default() -> None:
    fake = FakeLLM("ollama", loaded=False)
    fake.enqueue("Well met!")
    response = await post(fake.app, NATIVE_CHAT_PATH, native_body(options={"num_ctx": 16384}))
    assert response.status_code == 200 and response.headers["content-type"] == "application/x-ndjson"
    lines = ndjson_lines(response.content)
    assert [line["message"]["content"] for line in lines] == ["Well", " met", "!", ""]
    assert [line["done"] for line in lines] == [False, False, False, True]
    last = lines[-1]
    assert last["done_reason"] == "stop" and last["eval_count"] == 3
    assert last["prompt_eval_count"] == sum(count_tokens(m["content"]) for m in HELLO)
    assert fake.last_native_chat_request().json["options"] == {"num_ctx": 16384}
    async with client(fake.app) as c:
        ps = (await c.get("/api/ps")).json()
    assert ps["models"][0]["context_length"] == 16384  # the request loaded the model with its num_ctx


async def test_native_chat_non_stream_and_options() -> None:
    fake = FakeLLM("ollama")
    fake.enqueue("One two three four. Stop here")
    body = native_body(stream=False, options={"num_predict": 3, "stop": ["Stop"]})
    response = await post(fake.app, NATIVE_CHAT_PATH, body)
    data = response.json()
    assert data["message"] == {"role": "assistant", "content": "One two three"}
    assert data["done"] is True and data["done_reason"] == "length" and data["eval_count"] == 3


async def test_native_chat_errors_are_native() -> None:
    fake = FakeLLM("ollama")
    response = await post(fake.app, NATIVE_CHAT_PATH, native_body(model="nope"))
    assert response.status_code == 404
    assert response.json() == {"error": 'model "nope" not found, try pulling it first'}
    assert (await post(fake.app, NATIVE_CHAT_PATH, {"messages": HELLO})).json() == {"error": "model is required"}
    fake.fault("status", code=500, message="llama runner process has terminated")
    response = await post(fake.app, NATIVE_CHAT_PATH, native_body())
    assert response.status_code == 500 and response.json() == {"error": "llama runner process has terminated"}


@pytest.mark.parametrize(
    ("fault", "params", "check"),
    [
        ("error_event", {"after": 2, "message": "boom"}, lambda lines: lines[-1] == '{"error": "boom"}'),
        ("cut", {"after": 2}, lambda lines: len(lines) == 2 and '"done": true' not in lines[-1]),
        ("malformed", {"after": 1}, lambda lines: lines[1] == "{not json" and '"done": true' in lines[-1]),
    ],
)
async def test_native_stream_faults(fault: str, params: dict[str, Any], check: Any) -> None:
    fake = FakeLLM("ollama")
    fake.enqueue("one two three four")
    fake.fault(fault, **params)
    response = await post(fake.app, NATIVE_CHAT_PATH, native_body())
    assert check(response.text.splitlines())


# --------------------------------------------------------------------------- info endpoints


INFO_CASES: list[tuple[str, str, str, Any, Any]] = [
    ("koboldcpp", "GET", "/api/extra/version", None, lambda b: b["result"] == "KoboldCpp"),
    ("koboldcpp", "GET", "/api/extra/true_max_context_length", None, lambda b: b == {"value": 4096}),
    ("koboldcpp", "POST", "/api/extra/tokencount", {"prompt": "Hello there, traveller.", "special": True},
     lambda b: b["value"] == 6 and len(b["ids"]) == 6 and b["ids"][0] == 1),
    ("koboldcpp", "POST", "/api/extra/abort", {"genkey": "KCPP1"}, lambda b: b["done"] == "true"),
    ("koboldcpp", "GET", "/api/v1/model", None, lambda b: b["result"].startswith("koboldcpp/")),
    ("koboldcpp", "GET", "/v1/models", None, lambda b: b["data"][0]["owned_by"] == "koboldcpp"),
    ("tabbyapi", "GET", "/health", None, lambda b: b == {"status": "healthy", "issues": []}),
    ("tabbyapi", "GET", "/v1/model", None, lambda b: b["parameters"]["max_seq_len"] == 4096),
    ("tabbyapi", "POST", "/v1/token/encode", {"text": "Hello there, traveller.", "add_bos_token": True},
     lambda b: b["length"] == 6 and len(b["tokens"]) == 6),
    ("tabbyapi", "POST", "/v1/token/encode", {"text": HELLO, "add_bos_token": False}, lambda b: b["length"] == 10),
    ("tabbyapi", "GET", "/v1/models", None, lambda b: b["data"][0]["owned_by"] == "tabbyAPI"),
    ("ollama", "GET", "/", None, "Ollama is running"),
    ("ollama", "GET", "/api/version", None, lambda b: "version" in b),
    ("ollama", "GET", "/api/tags", None, lambda b: b["models"][0]["name"] == "llama3.2:latest"),
    ("ollama", "GET", "/api/ps", None, lambda b: b["models"][0]["context_length"] == 4096),
    ("ollama", "POST", "/api/show", {"model": "llama3.2"},
     lambda b: b["model_info"]["llama.context_length"] == 131072 and "num_ctx" not in b["parameters"]),
    ("ollama", "GET", "/v1/models", None, lambda b: b["data"][0]["owned_by"] == "library"),
    ("llamacpp", "GET", "/health", None, lambda b: b == {"status": "ok"}),
    ("llamacpp", "GET", "/props", None, lambda b: b["default_generation_settings"]["n_ctx"] == 4096),
    ("llamacpp", "POST", "/tokenize", {"content": "Hello there, traveller."}, lambda b: len(b["tokens"]) == 5),
    ("llamacpp", "GET", "/v1/models", None, lambda b: b["data"][0]["meta"]["n_ctx_train"] >= 4096),
    ("openai", "GET", "/v1/models", None, lambda b: b["object"] == "list"),
    # llama-cpp-python 0.3.36 (llama_cpp/server/app.py)
    ("llamacpp_python", "GET", "/v1/models", None,
     lambda b: b["data"][0]["owned_by"] == "me" and b["data"][0]["permissions"] == []),
    ("llamacpp_python", "GET", "/openapi.json", None, lambda b: "llama.cpp Python API" in b["info"]["title"]),
    ("llamacpp_python", "POST", "/extras/tokenize/count", {"input": "Hello there, traveller."},
     lambda b: b == {"count": 5}),
    ("llamacpp_python", "POST", "/extras/tokenize", {"input": "Hello there"}, lambda b: len(b["tokens"]) == 2),
    ("tabbyapi", "GET", "/.well-known/serviceinfo", None, lambda b: b["software"]["name"] == "TabbyAPI"),
    ("koboldcpp", "GET", "/api/extra/perf", None, lambda b: b["stop_reason"] == -1 and b["idle"] == 1),
]


@pytest.mark.parametrize(("flavour", "method", "path", "body", "check"), INFO_CASES)
async def test_info_endpoints(flavour: str, method: str, path: str, body: Any, check: Any) -> None:
    fake = FakeLLM(flavour, context_length=4096)
    async with client(fake.app) as c:
        response = await c.request(method, path, json=body)
    assert response.status_code == 200, response.text
    assert response.text == check if isinstance(check, str) else check(response.json())
    assert fake.last_request().path == path


@pytest.mark.parametrize(
    ("flavour", "path", "status", "text"),
    [("openai", "/props", 404, '{"detail":"Not Found"}'), ("openai", "/health", 404, '{"detail":"Not Found"}'),
     ("koboldcpp", "/nope", 404, "Error: KoboldCpp HTTP Server is running"), ("ollama", "/nope", 404, "404 page")],
)
async def test_missing_endpoints(flavour: str, path: str, status: int, text: str) -> None:
    async with client(FakeLLM(flavour).app) as c:
        response = await c.get(path)
    assert response.status_code == status and response.text.startswith(text)


async def test_ollama_show_unknown_model() -> None:
    response = await post(FakeLLM("ollama").app, "/api/show", {"model": "nope"})
    assert response.status_code == 404 and "error" in response.json()


async def test_dialect_behaviours_of_the_real_servers() -> None:
    tabby = FakeLLM("tabbyapi", api_key="k", loaded=False)
    async with client(tabby.app) as c:
        assert (await c.get("/.well-known/serviceinfo")).status_code == 200  # no key needed there
        assert (await c.get("/v1/model")).status_code == 401
        assert (await c.get("/v1/model", headers={"x-api-key": "k"})).status_code == 503  # no model loaded
    python = FakeLLM("llamacpp_python")
    await post(python.app, CHAT, {"messages": HELLO, "repetition_penalty": 1.3})
    assert python.samplers[-1] == {"repeat_penalty": 1.1}  # an unknown field: its default applies
    assert python.prompts[-1].endswith("<|im_start|>assistant\n")
    kobold = FakeLLM("koboldcpp")
    kobold.enqueue("Good words. STOP more")
    response = await post(kobold.app, CHAT, {"messages": HELLO, "stop": ["STOP"], "max_tokens": 50})
    assert response.json()["choices"][0]["finish_reason"] == "length" and kobold.stop_reason == 2
    ollama = FakeLLM("ollama", thinking="hmm, let me think", model="qwen3")
    thought = (await post(ollama.app, NATIVE_CHAT_PATH, {"model": "qwen3", "messages": HELLO, "stream": False,
                                                         "options": {"num_predict": 3}})).json()
    assert thought["message"]["content"] == "" and thought["done_reason"] == "length"  # thinking ate the budget
    plain = (await post(ollama.app, NATIVE_CHAT_PATH, {"model": "qwen3", "messages": HELLO, "stream": False,
                                                       "think": False, "options": {"num_predict": 3}})).json()
    assert plain["message"]["content"] and "thinking" not in plain["message"]

