"""The request each server kind gets for a reply: route, body, and how Continue and thinking work there.

Continue (the last message is the assistant's partial reply; the model writes on in that same message):
- TabbyAPI and vLLM-style servers: `continue_final_message: true, add_generation_prompt: false` on chat.
- llama.cpp server: a trailing assistant message is a prefill (tools/server utils, oaicompat chat parsing);
  it is refused for thinking templates ("Assistant response prefill is incompatible with enable_thinking"),
  so Continue also sends `chat_template_kwargs.enable_thinking: false`.
- Ollama: /api/chat with the partial reply last (its templates prefill it) and `think: false`.
- KoboldCpp 1.102: its chat adapter closes every message and opens a new assistant turn (koboldcpp.py
  `transform_genparams`), so Continue goes to /v1/completions with KoboldCpp's instruct placeholders
  (`{{[INPUT]}}`, `{{[OUTPUT]}}`, ...), which it replaces with the loaded model's tags; the prompt ends inside
  the reply. KoboldCpp 1.76 has no placeholders: Continue is refused with a sentence saying so.
- llama-cpp-python: no way over its chat route; on the built-in server (NeuralRP knows the GGUF) Continue
  goes to /v1/completions with a prompt rendered like its chat route renders (neuralrp/llm/gguf.py).
  A llama-cpp-python server elsewhere: refused, unless llm.api_mode is completion.
- Completion mode (llm.api_mode: completion): NeuralRP renders the prompt with llm.template everywhere, so
  Continue works on every server (Ollama through /api/generate with `raw: true`).

KV cache (a background job must not evict the reply's cached prompt prefix), as each server's API allows:
- llama.cpp server: every request says `cache_prompt: true` (its default, sent so a changed default cannot
  turn reuse off). With 2 or more slots (/props `total_slots`), background jobs (`SamplingParams.lane`) go to
  the last slot with `id_slot`, and replies to slot 0 while NeuralRP runs one reply at a time
  (llm.parallel_slots 1); with more, the server picks the slot whose cached prompt matches best. `id_slot` is
  never sent for a slot the server lacks (an unknown id is refused, or the task waits for it forever). On one
  slot, newer llama.cpp keeps earlier prompts in its host-memory prompt cache (`--cache-ram`, on by default).
- llama-cpp-python (the built-in server): no slots; NeuralRP starts it with its RAM prompt cache, which keeps
  several prompt states and reloads the one sharing the longest prefix (neuralrp/llm/local_server.py).
- KoboldCpp: its generate API has no slot or cache field (koboldcpp.py genparams); one KV context.
- Ollama: builds the server request itself (`cache_prompt: true`) and lets the server pick the slot
  (OLLAMA_NUM_PARALLEL of them) by prompt match; every request keeps the same `num_ctx`, since another value
  reloads the model.
On the servers without slots, background jobs are kept rare instead (neuralrp/turns/capsule_writer.py).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

from neuralrp.errors import NotSupportedByBackend
from neuralrp.llm import gguf, ollama, templates, wire
from neuralrp.llm.detect import version_at_least
from neuralrp.llm.types import BackendInfo, ChatMessage, Lane, SamplingParams

StreamFormat = Literal["chat", "text", "ollama"]  # OpenAI chat SSE, OpenAI text SSE, Ollama NDJSON
CHAT_PATH = "/v1/chat/completions"
COMPLETIONS_PATH = "/v1/completions"
KOBOLD_PLACEHOLDERS_SINCE = (1, 102)  # read in 1.102's koboldcpp.py; 1.76 has none
_KOBOLD_TAGS = {"system": ("{{[SYSTEM]}}", "{{[SYSTEM_END]}}"), "user": ("{{[INPUT]}}", "{{[INPUT_END]}}"),
                "assistant": ("{{[OUTPUT]}}", "{{[OUTPUT_END]}}")}
# Servers whose chat templates take `chat_template_kwargs` (TabbyAPI: alias of `template_vars`).
_TEMPLATE_KWARGS = ("llamacpp", "tabbyapi")
REPLY_SLOT = 0
STOP_LIMITS = {"openai": 4}  # most stop strings a server kind takes (the others: no limit)


@dataclass(frozen=True)
class Request:
    """One generation request: where it goes, what it says, and how its answer streams."""

    path: str
    body: dict[str, Any]
    stream_format: StreamFormat


@dataclass(frozen=True)
class Context:
    """What the request depends on besides the messages: the settings and what detection learnt."""

    info: BackendInfo
    api_mode: str = "chat"
    template: str = "chatml"
    thinking: bool = False
    local_format: gguf.ChatFormat | None = None  # the built-in server's chat format, when it is ours
    parallel_slots: int = 1  # llm.parallel_slots: replies NeuralRP may run at once


def build(ctx: Context, messages: list[ChatMessage], params: SamplingParams, *, stream: bool,
          continue_last: bool) -> Request:
    """The request for a reply or a background job (continue_last: write on in the last, assistant, message)."""
    request = _build(ctx, messages, capped_stops(ctx, params), stream=stream, continue_last=continue_last)
    request.body.update(cache_fields(ctx, params.lane))
    return request


def capped_stops(ctx: Context, params: SamplingParams) -> SamplingParams:
    """Stop strings as many as the server takes: the OpenAI API refuses more than 4 (`openai` may be it), so there
    the first 4 go (the configured ones, then the user's name, then the cast's; NeuralRP also cuts a reply at the
    others itself, neuralrp/turns/hygiene.py). llama.cpp, KoboldCpp, TabbyAPI, Ollama and llama-cpp-python take
    any number, in chat and text-completion mode alike."""
    limit = STOP_LIMITS.get(ctx.info.kind)
    if limit is None or len(params.stop) <= limit:
        return params
    return replace(params, stop=params.stop[:limit])


def cache_fields(ctx: Context, lane: Lane) -> dict[str, Any]:
    """The fields that keep a reply's and a background job's KV caches apart (see the module docstring)."""
    if ctx.info.kind != "llamacpp":
        return {}
    fields: dict[str, Any] = {"cache_prompt": True}
    slots = ctx.info.slots or 1
    if slots >= 2 and lane == "background":
        fields["id_slot"] = slots - 1
    elif slots >= 2 and ctx.parallel_slots == 1:
        fields["id_slot"] = REPLY_SLOT
    return fields


def _build(ctx: Context, messages: list[ChatMessage], params: SamplingParams, *, stream: bool,
           continue_last: bool) -> Request:
    continue_last = continue_last and bool(messages) and messages[-1].role == "assistant"
    if ctx.api_mode == "completion":
        return _completion_mode(ctx, messages, params, stream=stream, continue_last=continue_last)
    kind = ctx.info.kind
    if kind == "ollama":
        body = ollama.chat_payload(ctx.info.model, messages, params, num_ctx=ctx.info.context_length,
                                   stream=stream, think=ctx.thinking and not continue_last)
        return Request(ollama.CHAT_PATH, body, "ollama")
    if continue_last and kind == "koboldcpp":
        return _kobold_continue(ctx, messages, params, stream=stream)
    if continue_last and kind == "llamacpp_python":
        return _llama_python_continue(ctx, messages, params, stream=stream)
    body = wire.chat_payload(kind, ctx.info.model, messages, params, stream=stream, continue_last=continue_last)
    if kind in _TEMPLATE_KWARGS and (not ctx.thinking or (continue_last and kind == "llamacpp")):
        body["chat_template_kwargs"] = {"enable_thinking": False}
    return Request(CHAT_PATH, body, "chat")


def _completion_mode(ctx: Context, messages: list[ChatMessage], params: SamplingParams, *, stream: bool,
                     continue_last: bool) -> Request:
    prompt = templates.render(messages, ctx.template, continue_last=continue_last)
    stops = templates.TEMPLATES[ctx.template].stops
    if ctx.info.kind == "ollama":
        body = ollama.generate_payload(ctx.info.model, prompt, params, num_ctx=ctx.info.context_length,
                                       stream=stream, stops=stops, think=ctx.thinking and not continue_last)
        return Request(ollama.GENERATE_PATH, body, "ollama")
    body = wire.completion_payload(ctx.info.kind, ctx.info.model, prompt, params, stream=stream, stops=stops)
    return Request(COMPLETIONS_PATH, body, "text")


def kobold_prompt(messages: list[ChatMessage]) -> str:
    """The chat in KoboldCpp's instruct placeholders, open at the end of the last (assistant) message."""
    parts = []
    for i, msg in enumerate(messages):
        start, end = _KOBOLD_TAGS[msg.role]
        parts.append(start + msg.content + ("" if i == len(messages) - 1 else end))
    return "".join(parts)


def _kobold_continue(ctx: Context, messages: list[ChatMessage], params: SamplingParams, *,
                     stream: bool) -> Request:
    version = ctx.info.version
    if not version_at_least(version, KOBOLD_PLACEHOLDERS_SINCE):
        raise NotSupportedByBackend(
            f"Continue is not supported by this server: KoboldCpp {version or '(unknown version)'} always starts "
            "a new reply over its chat API, and NeuralRP continues replies on KoboldCpp 1.102 or newer (through "
            "its instruct placeholders). Update KoboldCpp, or set llm.api_mode to completion with your model's "
            "template.")
    # The placeholder stops become the model's own user/assistant tags (koboldcpp.py transform_genparams).
    stops = ("{{[INPUT]}}", "{{[OUTPUT]}}")
    body = wire.completion_payload("koboldcpp", ctx.info.model, kobold_prompt(messages), params, stream=stream,
                                   stops=stops)
    return Request(COMPLETIONS_PATH, body, "text")


def _llama_python_continue(ctx: Context, messages: list[ChatMessage], params: SamplingParams, *,
                           stream: bool) -> Request:
    if ctx.local_format is None:
        raise NotSupportedByBackend(
            "Continue is not supported by this server: llama-cpp-python always starts a new reply over its chat "
            "API. NeuralRP can continue on its built-in model, or set llm.api_mode to completion with your "
            "model's template.")
    rendered = gguf.continuation_prompt(ctx.local_format, messages)
    body = wire.completion_payload("llamacpp_python", ctx.info.model, rendered.prompt, params, stream=stream,
                                   stops=rendered.stop)
    return Request(COMPLETIONS_PATH, body, "text")
