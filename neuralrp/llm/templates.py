"""Instruct templates for text-completion mode (servers without a chat endpoint)."""

from __future__ import annotations

from dataclasses import dataclass

from neuralrp.llm.types import ChatMessage


@dataclass(frozen=True)
class Template:
    """How one model family wraps system, user and assistant turns."""

    name: str
    system: tuple[str, str]
    user: tuple[str, str]
    assistant: tuple[str, str]
    bos: str = ""
    stops: tuple[str, ...] = ()


TEMPLATES: dict[str, Template] = {
    "chatml": Template(
        "chatml",
        system=("<|im_start|>system\n", "<|im_end|>\n"),
        user=("<|im_start|>user\n", "<|im_end|>\n"),
        assistant=("<|im_start|>assistant\n", "<|im_end|>\n"),
        stops=("<|im_end|>", "<|im_start|>"),
    ),
    "llama3": Template(
        "llama3",
        system=("<|start_header_id|>system<|end_header_id|>\n\n", "<|eot_id|>"),
        user=("<|start_header_id|>user<|end_header_id|>\n\n", "<|eot_id|>"),
        assistant=("<|start_header_id|>assistant<|end_header_id|>\n\n", "<|eot_id|>"),
        bos="<|begin_of_text|>",
        stops=("<|eot_id|>", "<|start_header_id|>"),
    ),
    "mistral": Template(
        "mistral",
        system=("[INST] ", " [/INST]"),
        user=("[INST] ", " [/INST]"),
        assistant=("", "</s>"),
        bos="<s>",
        stops=("</s>", "[INST]"),
    ),
    "alpaca": Template(
        "alpaca",
        system=("", "\n\n"),
        user=("### Instruction:\n", "\n\n"),
        assistant=("### Response:\n", "\n\n"),
        stops=("### Instruction:", "### Response:"),
    ),
}


def render(messages: list[ChatMessage], template_name: str, *, continue_last: bool = False) -> str:
    """Render messages into one prompt that ends where the assistant should write."""
    template = TEMPLATES[template_name]
    parts = [template.bos]
    last = len(messages) - 1
    for i, msg in enumerate(messages):
        start, end = getattr(template, msg.role)
        open_end = continue_last and i == last and msg.role == "assistant"
        parts.append(start + msg.content + ("" if open_end else end))
    if not (continue_last and messages and messages[-1].role == "assistant"):
        parts.append(template.assistant[0])
    return "".join(parts)
