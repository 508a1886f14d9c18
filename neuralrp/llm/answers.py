"""Ask an LLM for a JSON object and read it out of the answer (one repair retry, then a clear 502)."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from typing import Any, TypeVar

from neuralrp.errors import BackendBadResponse
from neuralrp.llm.types import ChatMessage, LLMBackend, SamplingParams

log = logging.getLogger(__name__)
T = TypeVar("T")
_FENCE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)```", re.DOTALL)
REPAIR = (
    "Your answer could not be used: {problem}. Answer again with only the corrected JSON object, no prose and "
    "no code fences."
)


class AnswerError(ValueError):
    """The LLM's answer is not usable; str(e) says why."""


# --- reading answers ------------------------------------------------------------------------------


def _first_object(text: str) -> Any:
    """The first JSON object found anywhere in `text` (prose around it is ignored)."""
    decoder = json.JSONDecoder()
    for match in re.finditer(r"\{", text):
        try:
            value, _ = decoder.raw_decode(text, match.start())
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    raise AnswerError("it contains no JSON object")


def extract_json(text: str) -> dict[str, Any]:
    """The JSON object in an answer: bare, inside ``` fences, or surrounded by prose."""
    stripped = text.strip()
    if not stripped:
        raise AnswerError("it was empty")
    candidates = [m.group(1).strip() for m in _FENCE.finditer(stripped)] + [stripped]
    for candidate in candidates:
        try:
            value = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    for candidate in candidates:
        try:
            return _first_object(candidate)
        except AnswerError:
            continue
    raise AnswerError("it contains no complete JSON object")


def repair_messages(messages: list[ChatMessage], answer: str, problem: str) -> list[ChatMessage]:
    """The first request plus the unusable answer and a message asking to fix it."""
    return [*messages, ChatMessage("assistant", answer), ChatMessage("user", REPAIR.format(problem=problem))]


async def ask_json(backend: LLMBackend, messages: list[ChatMessage], params: SamplingParams,
                   check: Callable[[dict[str, Any]], T], what: str) -> T:
    """Ask, validate; once more with a repair message when unusable; then a 502 naming the problem."""
    answer = await backend.complete(messages, params)
    try:
        return check(extract_json(answer.text))
    except AnswerError as e:
        problem = str(e)
        log.info("%s: first answer unusable (%s); asking once more", what, problem)
    retry = await backend.complete(repair_messages(messages, answer.text, problem), params)
    try:
        return check(extract_json(retry.text))
    except AnswerError as e:
        raise BackendBadResponse(f"The LLM did not give a usable {what}, even after one retry: {e}. "
                                 "Nothing was changed; try again or use a stronger model.") from e
