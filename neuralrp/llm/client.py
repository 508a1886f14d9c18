"""One client for every OpenAI-compatible LLM server, with per-server quirks.

Detection (neuralrp/llm/detect.py) learns the server kind, model and context window; a detection that met a
401/403/503 answer is used but not kept, so the next request asks again. The request for each kind, with its
Continue mechanism and thinking switch, comes from neuralrp/llm/dialects.py; Ollama is driven through its native
API (neuralrp/llm/ollama.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import httpx

from neuralrp.backends import guarded
from neuralrp.config import LLMSettings
from neuralrp.errors import BackendBadResponse, BackendError, BackendUnavailable, StreamCutShort
from neuralrp.llm import detect, dialects, gguf, ollama, wire
from neuralrp.llm.sse import DONE, aiter_events
from neuralrp.llm.types import BackendInfo, BackendKind, ChatMessage, Completion, SamplingParams, StreamChunk

log = logging.getLogger(__name__)

_TOKEN_ROUTES: dict[str, tuple[str, str, str]] = {  # kind -> (path, text field, answer field)
    "koboldcpp": ("/api/extra/tokencount", "prompt", "value"),
    "tabbyapi": ("/v1/token/encode", "text", "length"),
    "llamacpp": ("/tokenize", "content", "tokens"),
    "llamacpp_python": ("/extras/tokenize/count", "input", "count"),  # llama_cpp/server/app.py
}
# Answers that say "ask again later" (TabbyAPI: 401 without its key, 503 with no model loaded; llama.cpp: 503
# while loading); a detection that met one is not kept. Other errors (404 for routes a server lacks) are answers.
_NOT_YET = (401, 403, 503)
# KoboldCpp's /api/extra/perf `stop_reason` (expose.h): 0 out of tokens, 1 EOS, 2 a stop string.
_KOBOLD_STOPPED = (1, 2)


class OpenAICompatBackend:
    """LLMBackend over HTTP; `transport` is the test seam.

    `context_length` is the window to assume when the server reports none; `context_wish` is the window
    NeuralRP would like (context.max_tokens), which it asks Ollama to allocate. `local_model` is the GGUF of
    the built-in llama-cpp-python server (it lets Continue work there); `kind` skips detection.
    """

    def __init__(
        self,
        settings: LLMSettings,
        *,
        base_url: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        context_length: int | None = None,
        context_wish: int | None = None,
        local_model: gguf.LocalModel | None = None,
        kind: BackendKind | None = None,
    ) -> None:
        url = wire.llm_root(base_url or settings.base_url)
        if not url:
            raise BackendUnavailable("No LLM server is configured: set llm.base_url or start with --model PATH.gguf")
        self.root = url
        self.settings = settings
        headers = {"Authorization": f"Bearer {settings.api_key}"} if settings.api_key else {}
        timeout = httpx.Timeout(settings.timeout_s, connect=settings.connect_timeout_s)
        self._http = httpx.AsyncClient(base_url=url, transport=guarded(transport), timeout=timeout, headers=headers,
                                       trust_env=False)
        self._info: BackendInfo | None = None
        self._context_fallback = context_length
        self._context_wish = context_wish or ollama.DEFAULT_CONTEXT
        self._local_model = local_model
        self._local_format: gguf.ChatFormat | None = None
        self._kind = kind if kind is not None else (None if settings.backend == "auto" else settings.backend)
        self._unsure = False  # a probe of the detection running now met 401/403/503

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._http.aclose()

    async def _get_json(self, path: str, body: Any = None) -> Any | None:
        """GET (POST when there is a body) a JSON document; None on 4xx/5xx, the text when not JSON."""
        try:
            resp = await (self._http.get(path) if body is None else self._http.post(path, json=body))
        except httpx.HTTPError as e:
            raise wire.transport_error(e, self.root, self.settings.timeout_s) from e
        if resp.status_code in _NOT_YET:
            self._unsure = True  # no key yet, or no model loaded yet: not an answer to keep
        if resp.status_code >= 400:
            return None
        try:
            return resp.json()
        except ValueError:
            return resp.text

    async def info(self, *, refresh: bool = False) -> BackendInfo:
        """Detect kind, model and context length once, then reuse (refresh=True asks again).

        A detection that met an authorization error or a 503 (no model loaded yet) is returned but not kept.
        """
        if self._info is not None and not refresh:
            return self._info
        self._unsure = False
        kind, version = (self._kind, "") if self._kind is not None else await detect.detect_kind(self._get_json)
        model = self.settings.model or await detect.model_name(kind, self._get_json)
        ctx = await detect.context_length(kind, model, self._get_json, wish=self._context_wish)
        info = BackendInfo(kind, model, ctx or self._context_fallback, can_tokenize=kind in _TOKEN_ROUTES,
                           version=version, slots=await detect.slot_count(kind, self._get_json))
        if self._unsure:
            log.warning("LLM backend at %s: %s, model %r, context %s so far; the server refused some questions "
                        "(no API key or no model loaded yet?), so NeuralRP asks again next time",
                        self.root, kind, model, info.context_length)
            self._info = None
        else:
            log.info("LLM backend at %s: %s %s, model %r, context %s", self.root, kind, version, model,
                     info.context_length)
            self._info = info
        return info

    async def _request(self, messages: list[ChatMessage], params: SamplingParams, *, stream: bool,
                       continue_last: bool) -> tuple[BackendInfo, dialects.Request]:
        info = await self.info()
        local = None
        if continue_last and info.kind == "llamacpp_python" and self._local_model is not None:
            if self._local_format is None:  # reading the GGUF header and importing llama_cpp: off the loop
                self._local_format = await asyncio.to_thread(gguf.chat_format, self._local_model)
            local = self._local_format
        ctx = dialects.Context(info, api_mode=self.settings.api_mode, template=self.settings.template,
                               thinking=self.settings.thinking, local_format=local,
                               parallel_slots=self.settings.parallel_slots)
        if continue_last and local is not None:  # renders with llama-cpp-python's formatter: off the loop too
            return info, await asyncio.to_thread(dialects.build, ctx, messages, params, stream=stream,
                                                 continue_last=True)
        return info, dialects.build(ctx, messages, params, stream=stream, continue_last=continue_last)

    async def stream(
        self, messages: list[ChatMessage], params: SamplingParams, *, continue_last: bool = False
    ) -> AsyncGenerator[StreamChunk, None]:
        """Stream a reply; leaving the loop early closes the connection (aborting generation)."""
        info, request = await self._request(messages, params, stream=True, continue_last=continue_last)
        started = time.perf_counter()
        try:
            async with self._http.stream("POST", request.path, json=request.body) as resp:
                if resp.status_code >= 400:
                    raise wire.error_for_status(resp, await resp.aread())
                async for chunk in self._decode(resp, request.stream_format):
                    if chunk.finish_reason == "length":
                        chunk = StreamChunk(chunk.text, await self._finish_reason(info.kind, "length"),
                                            chunk.thinking)
                    yield chunk
        except httpx.HTTPError as e:  # the connection broke, timed out or sent undecodable bytes
            raise wire.transport_error(e, self.root, self.settings.timeout_s) from e
        finally:
            log.debug("stream from %s took %.3f s", self.root, time.perf_counter() - started)

    async def _decode(self, resp: httpx.Response, stream_format: dialects.StreamFormat) -> AsyncIterator[StreamChunk]:
        if stream_format == "ollama":
            async for chunk in ollama.decode_stream(resp.aiter_lines()):
                yield chunk
            return
        finished = False
        async for event in aiter_events(resp.aiter_lines()):
            if event.kind == "error":  # llama.cpp before its errors became `data: {"error": ...}`
                raise BackendBadResponse(f"The LLM server failed mid-reply: {event.payload[:300]}")
            if event.payload.strip() == DONE:  # a server that was interrupted sends [DONE] with no finish reason
                break
            decoded = wire.decode_chunk(event.payload, chat=stream_format == "chat")
            if decoded is None:
                continue
            finished = finished or decoded.finish_reason is not None
            yield decoded
        if not finished:
            raise StreamCutShort()

    async def _finish_reason(self, kind: BackendKind, reported: str) -> str:
        """The true finish reason: KoboldCpp says "length" for every ending but EOS, stop strings included
        (koboldcpp.py 1.76 and 1.102: `"length" if stopreason != 1`); its /api/extra/perf tells them apart."""
        if kind != "koboldcpp":
            return reported
        perf = await self._get_json("/api/extra/perf")
        reason = perf.get("stop_reason") if isinstance(perf, dict) else None
        return "stop" if reason in _KOBOLD_STOPPED else reported

    async def complete(self, messages: list[ChatMessage], params: SamplingParams) -> Completion:
        """A whole reply in one response."""
        info, request = await self._request(messages, params, stream=False, continue_last=False)
        try:
            resp = await self._http.post(request.path, json=request.body)
        except httpx.HTTPError as e:
            raise wire.transport_error(e, self.root, self.settings.timeout_s) from e
        if resp.status_code >= 400:
            raise wire.error_for_status(resp, resp.content)
        if request.stream_format == "ollama":
            return ollama.parse_completion(resp)
        result = _parse_completion(resp, request.stream_format == "chat")
        if result.finish_reason == "length":
            result = Completion(result.text, await self._finish_reason(info.kind, "length"), result.usage,
                                result.thinking)
        return result

    async def count_tokens(self, text: str) -> int | None:
        """Count with the server's tokenizer endpoint; None where it has none or it fails."""
        info = await self.info()
        route = _TOKEN_ROUTES.get(info.kind)
        if route is None:
            return None
        path, field, key = route
        try:
            resp = await self._http.post(path, json={field: text})
            value = resp.json().get(key) if resp.status_code < 400 else None
        except (httpx.HTTPError, ValueError, AttributeError) as e:
            log.debug("token count failed at %s: %s", path, e)
            return None
        return len(value) if isinstance(value, list) else detect.positive(value)

    async def abort(self) -> None:
        """KoboldCpp has an abort endpoint; elsewhere closing the stream is the abort."""
        if self._info is not None and self._info.kind == "koboldcpp":
            try:
                await self._http.post("/api/extra/abort", json={})
            except httpx.HTTPError as e:
                log.warning("abort request failed: %s", e)


def _parse_completion(resp: httpx.Response, chat: bool) -> Completion:
    try:
        data = resp.json()
        choice = data["choices"][0]
        message = choice["message"] if chat else choice
        text = message["content"] if chat else choice["text"]
        thinking = wire.reasoning(message, "choices[0].message") if chat else ""
    except (ValueError, KeyError, IndexError, TypeError, BackendBadResponse) as e:
        raise BackendBadResponse(f"The LLM server's reply could not be read: {resp.text[:200]!r}") from e
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    return Completion(text=str(text or ""), finish_reason=choice.get("finish_reason"), usage=usage,
                      thinking=thinking)


__all__ = ["OpenAICompatBackend", "BackendError"]
