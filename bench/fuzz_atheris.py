"""Optional coverage-guided fuzzing of the card/world/chat parsers and the SSE reader with atheris.

    .venv/bin/pip install atheris
    .venv/bin/python bench/fuzz_atheris.py -max_total_time=60

Any exception other than InvalidInput is a finding. The test suite never depends on this script.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from neuralrp.errors import InvalidInput
    from neuralrp.library.cardfile import parse_card
    from neuralrp.library.chatfile import parse_chat
    from neuralrp.library.worldfile import parse_world_info
    from neuralrp.llm.sse import iter_events

NAMES = ("card.png", "card.json")


def one_input(data: bytes) -> None:
    """Feed one input to every parser; only InvalidInput may come out."""
    fdp = atheris.FuzzedDataProvider(data)
    choice = fdp.ConsumeIntInRange(0, 3)
    payload = fdp.ConsumeBytes(fdp.remaining_bytes())
    try:
        if choice < 2:
            parse_card(payload, NAMES[choice])
        elif choice == 2:
            parse_world_info(payload, "world.json")
        else:
            parse_chat(payload, "chat.jsonl")
    except InvalidInput:
        return
    list(iter_events(payload.decode("utf-8", "replace").splitlines()))


def main() -> None:
    """Run libFuzzer with the command-line arguments."""
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
