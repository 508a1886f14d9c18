"""Import a 10,000-message SillyTavern chat through the same path as `neuralrp import`; print the seconds.

The chat is synthetic but shaped like a current SillyTavern file: a header with chat_metadata, ISO send_dates,
swipes with swipe_info on every fifth reply, `extra` with reasoning and token counts, a few hidden messages.
The timed part is `import_bytes` (parse, one transaction, the chat's history record). Search indexing and token
counting run afterwards in the background; their time is printed on its own line, not counted as the import.
Run: .venv/bin/python bench/chat_import.py [--messages 10000]
The last line is `chat_import messages=N seconds=S`.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from neuralrp.db.connection import Database
from neuralrp.db.migrations import migrate
from neuralrp.library.service import Library

WORDS = ("sword river lantern storm castle whisper amber falcon winter harbour ember oath raven silver "
         "forest candle thunder mirror shadow garden bridge tower secret letter").split()


def _text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words)) + "."


def _stamp(index: int) -> str:
    return f"2025-03-{1 + index // 4000:02d}T{(index // 170) % 24:02d}:{(index // 3) % 60:02d}:{index % 60:02d}.000Z"


def _reply(rng: random.Random, index: int) -> dict[str, Any]:
    text = _text(rng, 70)
    line: dict[str, Any] = {"name": "Seraphina", "is_user": False, "is_system": False, "send_date": _stamp(index),
                            "mes": text, "extra": {"api": "openai", "model": "bench-model", "token_count": 96,
                                                   "reasoning": _text(rng, 12), "reasoning_duration": 812}}
    if index % 10 == 1:
        swipes = [text, _text(rng, 70), _text(rng, 70)]
        line.update(swipes=swipes, swipe_id=0, swipe_info=[
            {"send_date": _stamp(index), "gen_started": _stamp(index), "gen_finished": _stamp(index),
             "extra": {"api": "openai", "model": "bench-model"}} for _ in swipes])
    return line


def make_chat(messages: int) -> bytes:
    """A SillyTavern .jsonl chat with `messages` message lines."""
    rng = random.Random(7)
    lines = [json.dumps({"chat_metadata": {"integrity": "5d0f0c3e-bench", "note_prompt": "", "variables": {}},
                         "user_name": "unused", "character_name": "unused"})]
    for index in range(messages):
        if index % 2 == 0:
            line = {"name": "User", "is_user": True, "is_system": index % 500 == 0, "send_date": _stamp(index),
                    "mes": _text(rng, 30), "extra": {}, "force_avatar": "User Avatars/user.png"}
        else:
            line = _reply(rng, index)
        lines.append(json.dumps(line, ensure_ascii=False))
    return "\n".join(lines).encode("utf-8")


def _importer() -> Callable[[Library, bytes, str], Any]:
    """`import_bytes` wherever this checkout keeps it (it moved from library/ to chats/)."""
    try:
        from neuralrp.chats.importer import import_bytes
    except ImportError:
        from neuralrp.library.importer import import_bytes  # type: ignore[no-redef,import-not-found]
    return import_bytes


def _background(library: Library) -> float | None:
    """Run the deferred search indexing and token counting to the end; seconds, None if this checkout has none."""
    try:
        from neuralrp.chats.backfill import run_pending
    except ImportError:
        return None
    start = time.perf_counter()
    with library.db.session() as conn:
        run_pending(conn)
    return time.perf_counter() - start


def main() -> None:
    """Build the chat, import it once into a fresh data dir, print the figures."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=10_000)
    args = parser.parse_args()
    data = make_chat(args.messages)
    import_bytes = _importer()
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(Path(tmp) / "data" / "neuralrp.db")
        with db.session() as conn:
            migrate(conn)
        library = Library(db, Path(tmp) / "data")
        start = time.perf_counter()
        result = import_bytes(library, data, "Seraphina - 2025-03-01@10h00m00s.jsonl")
        seconds = time.perf_counter() - start
        assert result.status == "imported", result.line()
        background = _background(library)
        getattr(db, "close_connections", lambda: None)()
    print(f"file: {len(data) / 1024 / 1024:.1f} MiB; {result.detail}")
    if background is not None:
        print(f"background search indexing and token counting afterwards: {background:.2f} s")
    print(f"chat_import messages={args.messages} seconds={seconds:.3f}")


if __name__ == "__main__":
    main()
