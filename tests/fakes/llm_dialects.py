"""What each fake flavour does with a request the way the real server does, read in the servers' own source.

`LLMDialects` is a mixin for `FakeLLM`. It records, per generation, the prompt text the real server would feed
its model (`fake.prompts`) and the sampler values it would use (`fake.samplers`), and reproduces:

* KoboldCpp 1.102 (koboldcpp.py `transform_genparams`): the chat route renders every message closed with the
  loaded adapter's tags and then opens a fresh assistant turn (`assistant_gen`), so a partial assistant message
  is never continued; /v1/completions replaces the instruct placeholders (`{{[SYSTEM]}}`, `{{[INPUT]}}`,
  `{{[OUTPUT]}}` and their `_END` forms, also in `stop`) with the adapter's tags. 1.76 has no placeholders.
  rep_pen / repetition_penalty / repeat_penalty: the largest one wins. Finish reason: `"length" if stopreason
  != 1`, so a stop string ends with "length"; /api/extra/perf `stop_reason` says 0 tokens, 1 EOS, 2 stop string.
* llama-cpp-python 0.3.36 (llama_cpp/server/types.py, llama_chat_format.py): only `repeat_penalty` (default 1.1);
  unknown fields such as `repetition_penalty`, `continue_final_message` are ignored; its chat route closes the
  last message and adds a fresh assistant turn; /v1/completions takes the prompt as it is.
* llama.cpp server (tools/server, oaicompat chat parsing): a trailing assistant message is a prefill, refused
  with 400 "Assistant response prefill is incompatible with enable_thinking." when the template thinks and
  `chat_template_kwargs.enable_thinking` is not false; a thinking template streams `reasoning_content` first.
* Ollama (server/routes.go): a model with the "thinking" capability thinks unless `think: false`; its thinking
  uses up `num_predict`. /v1/completions and /api/generate without `raw` wrap the prompt in the model's
  template as a user message (`raw: true` sends it as it is).
"""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse, Response

from .llm_tokens import message_text

# KoboldCpp's built-in fallback adapter (koboldcpp.py, used when no --chatcompletionsadapter is given).
KOBOLD_ADAPTER = {"system_start": "\n### Instruction:\n", "system_end": "", "user_start": "\n### Instruction:\n",
                  "user_end": "", "assistant_start": "\n### Response:\n", "assistant_end": ""}
# A ChatML-style template standing in for an Ollama model's own template.
OLLAMA_USER_TURN = "<|im_start|>user\n{prompt}<|im_end|>\n<|im_start|>assistant\n"
PREFILL_THINKING = "Assistant response prefill is incompatible with enable_thinking."
LLAMA_PYTHON_REPEAT_PENALTY = 1.1  # llama_cpp/server/types.py repeat_penalty_field default


def kobold_chat_prompt(messages: list[Any], adapter: dict[str, str] = KOBOLD_ADAPTER) -> str:
    """KoboldCpp's chat rendering: every message closed, then a fresh assistant turn."""
    out = ""
    for msg in messages:
        if not isinstance(msg, dict):
            continue
        role = {"system": "system", "user": "user", "assistant": "assistant"}.get(str(msg.get("role")), "user")
        out += adapter[f"{role}_start"] + message_text(msg.get("content")) + adapter[f"{role}_end"]
    return out + adapter["assistant_start"]


def kobold_fill(text: str, adapter: dict[str, str] = KOBOLD_ADAPTER) -> str:
    """KoboldCpp 1.102's placeholder replacement for a prompt that uses the `_END` forms."""
    for name, key in (("SYSTEM", "system"), ("INPUT", "user"), ("OUTPUT", "assistant")):
        text = text.replace("{{[" + name + "]}}", adapter[f"{key}_start"])
        text = text.replace("{{[" + name + "_END]}}", adapter[f"{key}_end"])
    return text


def kobold_stop(stop: Any, adapter: dict[str, str] = KOBOLD_ADAPTER) -> list[str]:
    """Stop strings with KoboldCpp 1.102's placeholders replaced (stripped tags; empty ones dropped)."""
    stops = [stop] if isinstance(stop, str) else [s for s in stop if isinstance(s, str)] if isinstance(
        stop, list) else []
    names = {"{{[INPUT]}}": "user_start", "{{[OUTPUT]}}": "assistant_start", "{{[INPUT_END]}}": "user_end",
             "{{[OUTPUT_END]}}": "assistant_end"}
    return [s for s in (adapter[names[s]].strip() if s in names else s for s in stops) if s]


def llama_python_chat_prompt(messages: list[Any]) -> str:
    """A ChatML rendering standing in for llama-cpp-python's chat formatter: all closed, fresh assistant turn."""
    out = ""
    for msg in messages:
        if isinstance(msg, dict):
            out += f"<|im_start|>{msg.get('role')}\n{message_text(msg.get('content'))}<|im_end|>\n"
    return out + "<|im_start|>assistant\n"


class LLMDialects:
    """Per-flavour request handling of `FakeLLM` (see the module docstring)."""

    flavour: str
    version: str
    thinking: str
    prompts: list[str]
    samplers: list[dict[str, Any]]

    def _prefill_refused(self, body: dict[str, Any]) -> Response | None:
        """llama.cpp's 400 for an assistant prefill on a thinking template."""
        messages = body.get("messages")
        if self.flavour != "llamacpp" or not self.thinking or not isinstance(messages, list) or not messages:
            return None
        last = messages[-1]
        if not isinstance(last, dict) or last.get("role") != "assistant" or not self._thinks(body):
            return None
        error = {"code": 400, "message": PREFILL_THINKING, "type": "invalid_request_error"}
        return JSONResponse({"error": error}, status_code=400)

    def _thinks(self, body: dict[str, Any]) -> bool:
        """Whether this request makes a thinking model think."""
        if not self.thinking:
            return False
        if self.flavour == "ollama":
            return body.get("think") is not False
        kwargs = body.get("chat_template_kwargs")
        return not (isinstance(kwargs, dict) and kwargs.get("enable_thinking") is False)

    def _note_request(self, body: dict[str, Any], kind: str) -> dict[str, Any]:
        """Record the prompt and samplers the real server would use; return the body with stops it applies."""
        self.prompts.append(self._server_prompt(body, kind))
        self.samplers.append(self._server_samplers(body))
        if self.flavour == "koboldcpp" and kind == "text" and self._kobold_placeholders():
            return {**body, "stop": kobold_stop(body.get("stop", []))}
        return body

    def _kobold_placeholders(self) -> bool:
        return tuple(int(p) for p in self.version.split(".")[:2]) >= (1, 102)

    def _server_prompt(self, body: dict[str, Any], kind: str) -> str:
        messages = body.get("messages") if isinstance(body.get("messages"), list) else []
        prompt = str(body.get("prompt") or "")
        if self.flavour == "koboldcpp":
            if kind == "chat":
                return kobold_chat_prompt(messages)
            return kobold_fill(prompt) if self._kobold_placeholders() else prompt
        if self.flavour == "llamacpp_python":
            return llama_python_chat_prompt(messages) if kind == "chat" else prompt
        if self.flavour == "ollama" and kind in ("text", "generate") and not body.get("raw"):
            return OLLAMA_USER_TURN.format(prompt=prompt)
        if kind == "chat":
            return "\n".join(message_text(m.get("content")) for m in messages if isinstance(m, dict))
        return prompt

    def _server_samplers(self, body: dict[str, Any]) -> dict[str, Any]:
        if self.flavour == "llamacpp_python":
            return {"repeat_penalty": body.get("repeat_penalty", LLAMA_PYTHON_REPEAT_PENALTY)}
        if self.flavour == "koboldcpp":
            values = [body.get(k, 1.0) for k in ("rep_pen", "repetition_penalty", "repeat_penalty")]
            return {"rep_pen": max(float(v) for v in values if isinstance(v, int | float))}
        options = body.get("options") if isinstance(body.get("options"), dict) else body
        return {k: options[k] for k in ("repeat_penalty", "repetition_penalty") if k in options}
