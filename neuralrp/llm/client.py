"""One client for every OpenAI-compatible LLM server, with per-server quirks.

Detection order matters: TabbyAPI impersonates KoboldCpp's /api/extra/version and
KoboldCpp serves llama.cpp's /props, so the more specific probes run first.
Ollama in chat mode is driven through its native /api/chat (see neuralrp/llm/ollama.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import Any, Literal

import httpx

from neuralrp.config import LLMSettings
from neuralrp.errors import BackendBadResponse, BackendError, BackendUnavailable
from neuralrp.llm import ollama, templates, wire
from neuralrp.llm.sse import DONE, aiter_events
from neuralrp.llm.types import BackendInfo, BackendKind, ChatMessage, Completion, SamplingParams, StreamChunk

log = logging.getLogger(__name__)

Dialect = Literal["chat", "text", "ollama"]  # OpenAI chat SSE, OpenAI text SSE, Ollama native NDJSON


class OpenAICompatBackend:
    """LLMBackend over HTTP; `transport` is the test seam.

    `context_length` is the window to assume when the server reports none; `context_wish` is the window
    NeuralRP would like (context.max_tokens), which it asks Ollama to allocate.
    """

    def __init__(
        self,
        settings: LLMSettings,
        *,
        base_url: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        context_length: int | None = None,
        context_wish: int | None = None,
    ) -> None:
        url = wire.llm_root(base_url or settings.base_url)
        if not url:
            raise BackendUnavailable("No LLM server is configured: set llm.base_url or start with --model PATH.gguf")
        self.root = url
        self.settings = settings
        headers = {"Authorization": f"Bearer {settings.api_key}"} if settings.api_key else {}
        timeout = httpx.Timeout(settings.timeout_s, connect=settings.connect_timeout_s)
        self._http = httpx.AsyncClient(base_url=url, transport=transport, timeout=timeout, headers=headers,
                                       trust_env=False)
        self._info: BackendInfo | None = None
        self._context_fallback = context_length
        self._context_wish = context_wish or ollama.DEFAULT_CONTEXT

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._http.aclose()

    async def _get_json(self, path: str, body: Any = None) -> Any | None:
        """GET (POST when there is a body) a JSON document; None on 4xx/5xx, the text when not JSON."""
        try:
            resp = await (self._http.get(path) if body is None else self._http.post(path, json=body))
        except httpx.TransportError as e:
            raise wire.transport_error(e, self.root, self.settings.timeout_s) from e
        if resp.status_code >= 400:
            return None
        try:
            return resp.json()
        except ValueError:
            return resp.text

    async def _detect_kind(self) -> BackendKind:
        if self.settings.backend != "auto":
            return self.settings.backend
        model = await self._get_json("/v1/model")
        if isinstance(model, dict) and isinstance(model.get("parameters"), dict):
            return "tabbyapi"
        version = await self._get_json("/api/extra/version")
        if isinstance(version, dict) and version.get("result") == "KoboldCpp":
            return "koboldcpp"
        props = await self._get_json("/props")
        if isinstance(props, dict) and "default_generation_settings" in props:
            return "llamacpp"
        root = await self._get_json("/")
        if isinstance(root, str) and "Ollama is running" in root:
            return "ollama"
        return "openai"

    async def _model_name(self) -> str:
        if self.settings.model:
            return self.settings.model
        models = await self._get_json("/v1/models")
        data = models.get("data") if isinstance(models, dict) else None
        if isinstance(data, list) and data and isinstance(data[0], dict):
            return str(data[0].get("id", ""))
        return ""

    async def _context_length(self, kind: BackendKind, model: str) -> int | None:
        if kind == "koboldcpp":
            doc = await self._get_json("/api/extra/true_max_context_length")
            return _int(doc.get("value")) if isinstance(doc, dict) else None
        if kind == "tabbyapi":
            doc = await self._get_json("/v1/model")
            params = doc.get("parameters") if isinstance(doc, dict) else None
            return _int(params.get("max_seq_len")) if isinstance(params, dict) else None
        if kind == "llamacpp":
            doc = await self._get_json("/props")
            gen = doc.get("default_generation_settings") if isinstance(doc, dict) else None
            return _int(gen.get("n_ctx")) if isinstance(gen, dict) else None
        if kind == "ollama":
            return await self._ollama_context(model)
        return None

    async def _ollama_context(self, model: str) -> int:
        """The num_ctx sent with every native request (ollama.choose_context has the rule).

        Completion mode goes through /v1, which cannot set num_ctx: there the loaded window (or Ollama's
        default) is what the model gets.
        """
        loaded = ollama.loaded_context(await self._get_json(ollama.PS_PATH), model)
        if self.settings.api_mode == "completion":
            return loaded or ollama.DEFAULT_CONTEXT
        show = await self._get_json(ollama.SHOW_PATH, {"model": model})
        return ollama.choose_context(loaded=loaded, trained=ollama.trained_context(show),
                                     modelfile=ollama.modelfile_context(show), wish=self._context_wish)

    async def info(self, *, refresh: bool = False) -> BackendInfo:
        """Detect kind, model and context length once, then reuse (refresh=True asks again)."""
        if self._info is None or refresh:
            kind = await self._detect_kind()
            model = await self._model_name()
            ctx = await self._context_length(kind, model) or self._context_fallback
            self._info = BackendInfo(kind, model, ctx, can_tokenize=kind in ("koboldcpp", "tabbyapi", "llamacpp"))
            log.info("LLM backend at %s: %s, model %r, context %s", self.root, kind, model, ctx)
        return self._info

    def _request(self, messages: list[ChatMessage], params: SamplingParams, info: BackendInfo,
                 *, stream: bool, continue_last: bool) -> tuple[str, dict[str, Any], Dialect]:
        if self.settings.api_mode == "completion":
            prompt = templates.render(messages, self.settings.template, continue_last=continue_last)
            stops = templates.TEMPLATES[self.settings.template].stops
            body = wire.completion_payload(info.kind, info.model, prompt, params, stream=stream, stops=stops)
            return "/v1/completions", body, "text"
        if info.kind == "ollama":
            body = ollama.chat_payload(info.model, messages, params, num_ctx=info.context_length, stream=stream)
            return ollama.CHAT_PATH, body, "ollama"
        body = wire.chat_payload(info.kind, info.model, messages, params, stream=stream,
                                 continue_last=continue_last)
        return "/v1/chat/completions", body, "chat"

    async def stream(
        self, messages: list[ChatMessage], params: SamplingParams, *, continue_last: bool = False
    ) -> AsyncIterator[StreamChunk]:
        """Stream a reply; leaving the loop early closes the connection (aborting generation)."""
        info = await self.info()
        path, body, dialect = self._request(messages, params, info, stream=True, continue_last=continue_last)
        started = time.perf_counter()
        try:
            async with self._http.stream("POST", path, json=body) as resp:
                if resp.status_code >= 400:
                    raise wire.error_for_status(resp, await resp.aread())
                async for chunk in self._decode(resp, dialect):
                    yield chunk
        except httpx.TransportError as e:
            raise wire.transport_error(e, self.root, self.settings.timeout_s) from e
        finally:
            log.debug("stream from %s took %.3f s", self.root, time.perf_counter() - started)

    async def _decode(self, resp: httpx.Response, dialect: Dialect) -> AsyncIterator[StreamChunk]:
        if dialect == "ollama":
            async for chunk in ollama.decode_stream(resp.aiter_lines()):
                yield chunk
            return
        finished = False
        async for event in aiter_events(resp.aiter_lines()):
            if event.kind == "error":
                raise BackendBadResponse(f"The LLM server failed mid-reply: {event.payload[:300]}")
            if event.payload.strip() == DONE:
                return
            chunk = wire.decode_chunk(event.payload, chat=dialect == "chat")
            if chunk is None:
                continue
            finished = finished or chunk.finish_reason is not None
            yield chunk
        if not finished:
            raise BackendBadResponse("The LLM server's stream ended before the reply was finished")

    async def complete(self, messages: list[ChatMessage], params: SamplingParams) -> Completion:
        """A whole reply in one response."""
        info = await self.info()
        path, body, dialect = self._request(messages, params, info, stream=False, continue_last=False)
        try:
            resp = await self._http.post(path, json=body)
        except httpx.TransportError as e:
            raise wire.transport_error(e, self.root, self.settings.timeout_s) from e
        if resp.status_code >= 400:
            raise wire.error_for_status(resp, resp.content)
        return ollama.parse_completion(resp) if dialect == "ollama" else _parse_completion(resp, dialect == "chat")

    async def count_tokens(self, text: str) -> int | None:
        """Count with the server's tokenizer endpoint; None where it has none or it fails."""
        info = await self.info()
        route = {
            "koboldcpp": ("/api/extra/tokencount", {"prompt": text}, "value"),
            "tabbyapi": ("/v1/token/encode", {"text": text}, "length"),
            "llamacpp": ("/tokenize", {"content": text}, "tokens"),
        }.get(info.kind)
        if route is None:
            return None
        path, body, key = route
        try:
            resp = await self._http.post(path, json=body)
            value = resp.json().get(key) if resp.status_code < 400 else None
        except (httpx.TransportError, ValueError, AttributeError) as e:
            log.debug("token count failed at %s: %s", path, e)
            return None
        return len(value) if isinstance(value, list) else _int(value)

    async def abort(self) -> None:
        """KoboldCpp has an abort endpoint; elsewhere closing the stream is the abort."""
        if self._info is not None and self._info.kind == "koboldcpp":
            try:
                await self._http.post("/api/extra/abort", json={})
            except httpx.TransportError as e:
                log.warning("abort request failed: %s", e)


def _int(value: Any) -> int | None:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def _parse_completion(resp: httpx.Response, chat: bool) -> Completion:
    try:
        data = resp.json()
        choice = data["choices"][0]
        text = choice["message"]["content"] if chat else choice["text"]
    except (ValueError, KeyError, IndexError, TypeError) as e:
        raise BackendBadResponse(f"The LLM server's reply could not be read: {resp.text[:200]!r}") from e
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    return Completion(text=str(text or ""), finish_reason=choice.get("finish_reason"), usage=usage)


__all__ = ["OpenAICompatBackend", "BackendError"]
