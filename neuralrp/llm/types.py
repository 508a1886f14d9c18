"""Plain data passed between the chat loop and LLM backends."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol

Role = Literal["system", "user", "assistant"]
Lane = Literal["reply", "background"]  # a user-facing reply, or a background job (capsule, summary, ...)
BackendKind = Literal["openai", "koboldcpp", "tabbyapi", "ollama", "llamacpp", "llamacpp_python"]


@dataclass(frozen=True)
class ChatMessage:
    """One message of a prompt in chat form."""

    role: Role
    content: str

    def as_dict(self) -> dict[str, str]:
        """OpenAI wire form."""
        return {"role": self.role, "content": self.content}


@dataclass(frozen=True)
class SamplingParams:
    """Sampler settings for one generation."""

    temperature: float = 0.8
    top_p: float = 0.95
    top_k: int = 40
    min_p: float = 0.05
    repetition_penalty: float = 1.08
    max_tokens: int = 350
    stop: tuple[str, ...] = ()
    lane: Lane = "reply"  # background jobs keep off the reply's KV cache where the server allows (dialects.py)

    def as_dict(self) -> dict[str, Any]:
        """Plain data (stop as a list)."""
        data = asdict(self)
        data["stop"] = list(self.stop)
        return data


@dataclass(frozen=True)
class StreamChunk:
    """A piece of streamed text; finish_reason is set on the last one.

    `thinking` is reasoning a thinking model wrote before its reply: kept apart, never part of the reply.
    """

    text: str
    finish_reason: str | None = None
    thinking: str = ""


@dataclass(frozen=True)
class Completion:
    """A whole non-streamed reply."""

    text: str
    finish_reason: str | None
    usage: dict[str, int] = field(default_factory=dict)
    thinking: str = ""


@dataclass(frozen=True)
class BackendInfo:
    """What detection learned about the server."""

    kind: BackendKind
    model: str
    context_length: int | None
    can_tokenize: bool
    version: str = ""
    slots: int | None = None  # the server's parallel slots where it says (llama.cpp /props total_slots)


class LLMBackend(Protocol):
    """What the chat loop needs from an LLM server."""

    async def info(self, *, refresh: bool = False) -> BackendInfo:
        """Detect the server kind, model and context length (cached unless refresh)."""
        ...

    def stream(
        self, messages: list[ChatMessage], params: SamplingParams, *, continue_last: bool = False
    ) -> AsyncGenerator[StreamChunk, None]:
        """Stream a reply; closing the iterator aborts generation."""
        ...

    async def complete(self, messages: list[ChatMessage], params: SamplingParams) -> Completion:
        """A whole reply, not streamed."""
        ...

    async def count_tokens(self, text: str) -> int | None:
        """Tokens by the server's own tokenizer, or None when it has none."""
        ...

    async def abort(self) -> None:
        """Ask the server to stop generating (where it has such an endpoint)."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...
