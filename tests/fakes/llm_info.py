"""The fake LLM's per-flavour route tables and info endpoints: model lists, health, props, token counting,
KoboldCpp abort and perf, TabbyAPI's service info, Ollama tags/ps/show (several models, with capabilities),
llama-cpp-python's /extras tokenizer, and the way KoboldCpp and Ollama answer unknown routes.

`LLMInfoEndpoints` is a mixin for `FakeLLM`, which supplies the state declared on it and `_ollama_chat`.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from .base import kobold_not_found, parse_json
from .llm_shapes import CREATED, NATIVE_CHAT_PATH, NATIVE_GENERATE_PATH, error_body
from .llm_stream import StreamState
from .llm_tokens import fake_token_ids, fake_tokens, message_text


class LLMInfoEndpoints:
    """Route tables and handlers of each flavour's info endpoints."""

    flavour: str
    model: str
    context_length: int
    api_key: str | None
    loaded: bool
    trained_context: int
    modelfile_num_ctx: int | None
    aborts: int
    version: str
    capabilities: list[str]
    others: list[dict[str, Any]]
    tags_capabilities: bool
    stop_reason: int
    _streams: set[StreamState]

    # ---- route tables

    def _koboldcpp_routes(self) -> list[tuple[str, str, Any]]:
        """KoboldCpp's info, token count and abort endpoints."""
        return [
            ("GET", "/api/extra/version", self._kcpp_version),
            ("GET", "/api/extra/true_max_context_length", self._ctx_value),
            ("GET", "/api/v1/config/max_context_length", self._ctx_value),
            ("POST", "/api/extra/tokencount", self._kcpp_tokencount),
            ("POST", "/api/extra/tokenize", self._kcpp_tokencount),
            ("POST", "/api/extra/abort", self._kcpp_abort),
            ("GET", "/api/v1/model", self._kcpp_model),
            ("GET", "/api/extra/perf", self._kcpp_perf),
        ]

    def _tabbyapi_routes(self) -> list[tuple[str, str, Any]]:
        """TabbyAPI's health, model card and token endpoints."""
        return [
            ("GET", "/health", self._tabby_health),
            ("GET", "/.well-known/serviceinfo", self._tabby_serviceinfo),
            ("GET", "/v1/model", self._tabby_model),
            ("GET", "/v1/model/list", self._models),
            ("POST", "/v1/token/encode", self._tabby_encode),
        ]

    def _ollama_routes(self) -> list[tuple[str, str, Any]]:
        """Ollama's root, version, tags, ps, show and native chat endpoints."""
        return [
            ("GET", "/", self._ollama_root),
            ("HEAD", "/", self._ollama_root),
            ("GET", "/api/version", self._ollama_version),
            ("GET", "/api/tags", self._ollama_tags),
            ("GET", "/api/ps", self._ollama_ps),
            ("POST", "/api/show", self._ollama_show),
            ("POST", NATIVE_CHAT_PATH, self._ollama_chat),
            ("POST", NATIVE_GENERATE_PATH, self._ollama_generate),
        ]

    def _llamacpp_routes(self) -> list[tuple[str, str, Any]]:
        """llama.cpp server's health, props and tokenize endpoints."""
        return [
            ("GET", "/health", self._llama_health),
            ("GET", "/props", self._llama_props),
            ("POST", "/tokenize", self._llama_tokenize),
        ]

    def _llamacpp_python_routes(self) -> list[tuple[str, str, Any]]:
        """llama-cpp-python's tokenizer extras (llama_cpp/server/app.py); it has no /props, /health or /tokenize."""
        return [
            ("POST", "/extras/tokenize", self._extras_tokenize),
            ("POST", "/extras/tokenize/count", self._extras_tokenize),
        ]

    def _openai_routes(self) -> list[tuple[str, str, Any]]:
        """Plain OpenAI has nothing beyond the common routes."""
        return []

    async def _not_found(self, request: Request, exc: Exception) -> Response:
        """Unknown routes the way KoboldCpp / Ollama answer them."""
        status = getattr(exc, "status_code", 500)
        if status not in (404, 405):
            return JSONResponse({"detail": getattr(exc, "detail", "")}, status_code=status)
        if self.flavour == "ollama":
            text = "404 page not found" if status == 404 else "405 method not allowed"
            return PlainTextResponse(text, status_code=status)
        return kobold_not_found(request.method)

    def _ollama_known(self, name: Any) -> bool:
        """Whether Ollama would find model `name` (a missing tag means `:latest`)."""
        if not isinstance(name, str) or not name:
            return False
        return _tagged(name) in {_tagged(str(m["name"])) for m in self._ollama_models()}

    def _ollama_models(self) -> list[dict[str, Any]]:
        """Every model this fake Ollama has, most recently modified first (server/model_list_cache.go)."""
        main = {"name": self.model, "capabilities": self.capabilities, "family": "llama",
                "modified_at": "2025-05-04T17:37:44.706015396-07:00"}
        return sorted([main, *self.others], key=lambda m: str(m.get("modified_at", "")), reverse=True)

    # ---- info endpoints

    async def _models(self, request: Request) -> dict[str, Any]:
        """GET /v1/models in this flavour's shape."""
        card: dict[str, Any] = {"id": self.model, "object": "model", "created": CREATED}
        if self.flavour == "koboldcpp":
            card.update(owned_by="koboldcpp", permission=[], root="koboldcpp")
        elif self.flavour == "tabbyapi":
            card = self._tabby_card()
        elif self.flavour == "ollama":
            return {"object": "list", "data": [{"id": m["name"], "object": "model", "created": CREATED,
                                                "owned_by": "library"} for m in self._ollama_models()]}
        elif self.flavour == "llamacpp_python":
            card.update(owned_by="me", permissions=[])  # llama_cpp/server/app.py get_models
        elif self.flavour == "llamacpp":
            card["owned_by"] = "llamacpp"
            card["meta"] = {"vocab_type": 2, "n_vocab": 128256, "n_ctx_train": max(self.context_length, 131072),
                            "n_embd": 4096, "n_params": 8030261312, "size": 4912898304}
        else:
            card["owned_by"] = "system"
        return {"object": "list", "data": [card]}

    async def _ctx_value(self, request: Request) -> dict[str, Any]:
        """KoboldCpp context length endpoints."""
        return {"value": self.context_length}

    async def _kcpp_version(self, request: Request) -> dict[str, Any]:
        """GET /api/extra/version."""
        return {"result": "KoboldCpp", "version": self.version, "protected": bool(self.api_key),
                "txt2img": False, "vision": False, "transcribe": False}

    async def _kcpp_perf(self, request: Request) -> dict[str, Any]:
        """GET /api/extra/perf: `stop_reason` of the last generation (expose.h: 0 tokens, 1 EOS, 2 stop string)."""
        return {"last_process": 0.1, "last_eval": 0.2, "last_token_count": 3, "last_seed": 1, "total_gens": 1,
                "stop_reason": self.stop_reason, "queue": 0, "idle": 0 if self._streams else 1, "uptime": 5.0}

    async def _kcpp_model(self, request: Request) -> dict[str, Any]:
        """GET /api/v1/model."""
        return {"result": self.model}

    async def _kcpp_tokencount(self, request: Request) -> Response:
        """POST /api/extra/tokencount: `{"value": n, "ids": [...]}` (BOS added when `special`)."""
        body = parse_json(await request.body())
        if not isinstance(body, dict) or not isinstance(body.get("prompt"), str):
            return JSONResponse({"value": -1}, status_code=400)
        ids = fake_token_ids(body["prompt"], bos=bool(body.get("special", True)))
        return JSONResponse({"value": len(ids), "ids": ids})

    async def _kcpp_abort(self, request: Request) -> dict[str, str]:
        """POST /api/extra/abort: stop every running generation."""
        self.aborts += 1
        running = bool(self._streams)
        for state in self._streams:
            state.aborted = True
        return {"success": "true" if running else "false", "done": "true"}

    def _tabby_card(self) -> dict[str, Any]:
        """TabbyAPI's ModelCard for the loaded model."""
        params = {"max_seq_len": self.context_length, "cache_size": self.context_length, "cache_mode": "FP16",
                  "rope_scale": 1.0, "rope_alpha": 1.0, "max_batch_size": 1, "chunk_size": 2048,
                  "prompt_template": "chatml", "prompt_template_content": "...", "use_vision": False,
                  "draft": None}
        return {"id": self.model, "object": "model", "created": CREATED, "owned_by": "tabbyAPI",
                "logging": None, "parameters": params}

    async def _tabby_health(self, request: Request) -> dict[str, Any]:
        """GET /health (TabbyAPI)."""
        return {"status": "healthy", "issues": []}

    async def _tabby_model(self, request: Request) -> Response:
        """GET /v1/model; 503 with no model loaded (common/model.py check_model_container)."""
        if not self.loaded:
            return JSONResponse(error_body("tabbyapi", 503), status_code=503)
        return JSONResponse(self._tabby_card())

    async def _tabby_serviceinfo(self, request: Request) -> dict[str, Any]:
        """GET /.well-known/serviceinfo (endpoints/core/router.py service_info; no API key needed)."""
        return {"version": 0.1, "software": {"name": "TabbyAPI", "repository": "https://github.com/theroyallab/tabbyAPI"},
                "api": {"openai": {"name": "OpenAI API", "relative_url": "/v1", "version": 1}}}

    async def _tabby_encode(self, request: Request) -> Response:
        """POST /v1/token/encode: text or chat messages (contents joined) to tokens."""
        body = parse_json(await request.body())
        text = body.get("text") if isinstance(body, dict) else None
        if isinstance(text, list):
            text = "\n".join(message_text(m.get("content")) for m in text if isinstance(m, dict))
        if not isinstance(text, str):
            return JSONResponse({"detail": "text is required"}, status_code=422)
        ids = fake_token_ids(text, bos=bool(body.get("add_bos_token", True)))
        return JSONResponse({"tokens": ids, "length": len(ids)})

    async def _ollama_root(self, request: Request) -> Response:
        """GET / (Ollama)."""
        return PlainTextResponse("Ollama is running")

    async def _ollama_version(self, request: Request) -> dict[str, Any]:
        """GET /api/version."""
        return {"version": "0.13.5"}

    def _ollama_entry(self, model: dict[str, Any] | None = None) -> dict[str, Any]:
        """The shared part of /api/tags and /api/ps model entries."""
        model = model or self._ollama_models_by_name()[_tagged(self.model)]
        family = str(model.get("family") or "llama")
        details = {"parent_model": "", "format": "gguf", "family": family, "families": [family],
                   "parameter_size": "3.2B", "quantization_level": "Q4_K_M"}
        return {"name": model["name"], "model": model["name"], "size": 2019393189,
                "digest": "a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72", "details": details}

    def _ollama_models_by_name(self) -> dict[str, dict[str, Any]]:
        return {_tagged(str(m["name"])): m for m in self._ollama_models()}

    async def _ollama_tags(self, request: Request) -> dict[str, Any]:
        """GET /api/tags, newest first; newer Ollama lists each model's capabilities here too."""
        entries = []
        for model in self._ollama_models():
            entry = {**self._ollama_entry(model), "modified_at": model.get("modified_at")}
            if self.tags_capabilities and model.get("capabilities") is not None:
                entry["capabilities"] = model["capabilities"]
            entries.append(entry)
        return {"models": entries}

    async def _ollama_ps(self, request: Request) -> dict[str, Any]:
        """GET /api/ps with the allocated `context_length` (no models while not `loaded`)."""
        if not self.loaded:
            return {"models": []}
        entry = {**self._ollama_entry(), "expires_at": "2025-01-01T12:05:00Z", "size_vram": 3400000000,
                 "context_length": self.context_length}
        return {"models": [entry]}

    async def _ollama_show(self, request: Request) -> Response:
        """POST /api/show: model details, the trained context length and the Modelfile parameters."""
        body = parse_json(await request.body())
        name = body.get("model") if isinstance(body, dict) else None
        if not self._ollama_known(name):
            return JSONResponse({"error": f"model '{name}' not found"}, status_code=404)
        model = self._ollama_models_by_name()[_tagged(str(name))]
        num_ctx = "" if self.modelfile_num_ctx is None else f"\nnum_ctx {self.modelfile_num_ctx}"
        return JSONResponse({
            "parameters": f'stop "<|eot_id|>"{num_ctx}',
            "template": "...",
            "details": self._ollama_entry(model)["details"],
            "model_info": {"general.architecture": "llama", "llama.context_length": self.trained_context,
                           "llama.embedding_length": 3072},
            **({} if model.get("capabilities") is None else {"capabilities": model["capabilities"]}),
        })

    async def _extras_tokenize(self, request: Request) -> Response:
        """POST /extras/tokenize (`{"tokens"}`) and /extras/tokenize/count (`{"count"}`), body `{"input"}`."""
        body = parse_json(await request.body())
        text = body.get("input") if isinstance(body, dict) else None
        if not isinstance(text, str):
            return JSONResponse({"detail": [{"loc": ["body", "input"], "msg": "Field required"}]}, status_code=422)
        ids = fake_token_ids(text)
        return JSONResponse({"count": len(ids)} if request.url.path.endswith("/count") else {"tokens": ids})

    async def _llama_health(self, request: Request) -> dict[str, Any]:
        """GET /health (llama.cpp)."""
        return {"status": "ok"}

    async def _llama_props(self, request: Request) -> dict[str, Any]:
        """GET /props with default_generation_settings.n_ctx."""
        params = {"n_predict": -1, "temperature": 0.8, "top_k": 40, "top_p": 0.95, "min_p": 0.05,
                  "repeat_penalty": 1.0, "repeat_last_n": 64, "stop": [], "max_tokens": -1, "n_keep": 0}
        settings = {"id": 0, "id_task": -1, "n_ctx": self.context_length, "speculative": False,
                    "is_processing": bool(self._streams), "params": params}
        slots = getattr(self, "slots", 1)
        return {"default_generation_settings": settings, "total_slots": slots, "model_path": self.model,
                "chat_template": "...", "modalities": {"vision": False}, "build_info": "b5000-fake0"}

    async def _llama_tokenize(self, request: Request) -> Response:
        """POST /tokenize: `{"tokens": [...]}`, or id/piece pairs with `with_pieces`."""
        body = parse_json(await request.body())
        content = body.get("content") if isinstance(body, dict) else None
        if not isinstance(content, str):
            return JSONResponse(error_body("llamacpp", 400, "content is required"), status_code=400)
        ids = fake_token_ids(content, bos=bool(body.get("add_special", False)))
        if body.get("with_pieces"):
            pieces = (["<s>"] if body.get("add_special") else []) + fake_tokens(content)
            return JSONResponse({"tokens": [{"id": i, "piece": p} for i, p in zip(ids, pieces, strict=True)]})
        return JSONResponse({"tokens": ids})


def _tagged(name: str) -> str:
    """A model name with its tag (Ollama reads a missing tag as `:latest`)."""
    return name if ":" in name else f"{name}:latest"
