"""Import 1,000 PNG cards and a 5,000-entry lorebook; print seconds and peak memory.

Cards are made from the Seraphina fixture (renamed, so none is a duplicate), the
lorebook is synthetic World Info JSON. Each import runs through the same path as
`neuralrp import` (parse, one transaction, mirror file written).
Run: .venv/bin/python bench/library_import.py [--cards 1000] [--entries 5000]
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

from neuralrp.chats.importer import import_paths
from neuralrp.db.connection import Database
from neuralrp.db.migrations import migrate
from neuralrp.library.cardfile import export_card_png, parse_card
from neuralrp.library.service import Library

FIXTURE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "cards" / "st_default_Seraphina.png"


def make_cards(folder: Path, count: int) -> None:
    """Write `count` distinct PNG cards."""
    base = parse_card(FIXTURE.read_bytes(), FIXTURE.name)
    card = base.to_card()
    for i in range(count):
        card["data"]["name"] = f"Seraphina {i}"
        card["data"]["tags"] = [f"tag{i % 17}", f"group{i % 5}"]
        (folder / f"card{i:04d}.png").write_bytes(export_card_png(card, base.avatar_png))


def make_world(path: Path, count: int) -> None:
    """Write a World Info file with `count` entries."""
    entries = {str(i): {"uid": i, "key": [f"place{i}", f"\"Landmark {i}\""], "keysecondary": [],
                        "comment": f"entry {i}", "content": f"Lore about place {i}. " * 8, "constant": False,
                        "selective": True, "order": 100, "position": 0, "disable": False}
               for i in range(count)}
    path.write_text(json.dumps({"entries": entries}), encoding="utf-8")


def peak_mb() -> float:
    """Peak resident memory of this process so far, MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--cards", type=int, default=1000)
    parser.add_argument("--entries", type=int, default=5000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "in").mkdir()
        make_cards(root / "in", args.cards)
        make_world(root / "world.json", args.entries)
        db = Database(root / "data" / "neuralrp.db")
        with db.session() as conn:
            migrate(conn)
        library = Library(db, root / "data")
        base_mb = peak_mb()
        t0 = time.perf_counter()
        results = import_paths(library, [root / "in"])
        cards_s = time.perf_counter() - t0
        assert all(r.status == "imported" for r in results), [r.line() for r in results if r.status != "imported"]
        t0 = time.perf_counter()
        (world,) = import_paths(library, [root / "world.json"])
        world_s = time.perf_counter() - t0
        assert world.status == "imported", world.line()
    print(f"{args.cards} PNG cards: {cards_s:.2f} s ({cards_s / args.cards * 1000:.1f} ms per card)")
    print(f"{args.entries}-entry lorebook: {world_s:.2f} s")
    print(f"peak RSS: {peak_mb():.0f} MiB (before imports: {base_mb:.0f} MiB)")


if __name__ == "__main__":
    main()
