"""CJK lore with the Chinese fixture card's book: substring keys, exact quoted keys, multilingual semantics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from neuralrp.db.connection import Database
from neuralrp.db.migrations import migrate
from neuralrp.library.service import Library
from neuralrp.retrieval.embedder import E5_DIM, E5_ID, MINILM_ID, E5Embedder, LazyEmbedder
from neuralrp.retrieval.index import reindex_all
from neuralrp.retrieval.keys import parse_key
from neuralrp.retrieval.lore import load_entries, lore_for_turn, select_lore
from tests.conftest import FIXTURES


@pytest.fixture
def book(tmp_path: Path) -> tuple[Database, int]:
    """The 27-entry book of lide_ai_v3_zh.json, imported with its card."""
    db = Database(tmp_path / "neuralrp.db")
    with db.session() as conn:
        migrate(conn)
    library = Library(db, tmp_path)
    result = library.import_card((FIXTURES / "cards" / "lide_ai_v3_zh.json").read_bytes(), "lide_ai_v3_zh.json")
    assert result.status == "imported", result.detail
    with db.session() as conn:
        world_id = int(conn.execute("SELECT id FROM worlds WHERE character_id IS NOT NULL").fetchone()["id"])
    return db, world_id


def picked(hits: list[Any]) -> dict[str, str]:
    return {h.entry.keys[0]: h.reason for h in hits if h.entry.keys}


def test_unquoted_cjk_keys_match_inside_running_text(book: tuple[Database, int]) -> None:
    db, world = book
    with db.session() as conn:
        entries = load_entries(conn, [world])
    hits = picked(select_lore(entries, "我们明天一早就去玄天宗拜师，然后绕道合欢宗的山谷。", turn=1))
    assert hits == {"玄天宗": "keyword", "合欢宗": "keyword"}
    assert "皇城" not in picked(select_lore(entries, "城外的小路上没有人。", turn=1))


def test_quoted_and_non_latin_keys() -> None:
    assert parse_key('"天命之书"').matches("你听说过天命之书吗")  # no word boundaries in Chinese
    assert not parse_key('"天命之书"').matches("天命之")
    assert parse_key("дракон").matches("Два дракона летят")  # an inflected Cyrillic form: substring, as ST
    assert not parse_key('"дракон"').matches("Два дракона летят")  # quoted: the exact word only
    assert parse_key("검은 항구").matches("검은 항구에서 배를 기다렸다")
    assert not parse_key("dragon").matches("a dragonfly")


def test_a_chinese_paraphrase_finds_its_entry_with_the_multilingual_model(book: tuple[Database, int]) -> None:
    db, world = book
    embedder = LazyEmbedder(E5Embedder, model_id=E5_ID, dim=E5_DIM)
    assert embedder.wait(60), embedder.error
    reindex_all(db, embedder)
    text = "我们终于到了大陆中央平原上那座世俗权力的中心，皇宫庄严，街上的平民生活区烟火气很重。"
    paraphrase = "那座在大陆中央平原、交通四通八达的世俗权力中心，到处是官兵。"
    with db.session() as conn:
        assert picked(lore_for_turn(conn, embedder, [world], text, turn=1, model="e5"))["皇城"] == "keyword"
        hits = lore_for_turn(conn, embedder, [world], paraphrase, turn=2, model="e5")
        plain = lore_for_turn(conn, embedder, [world], "她笑着给我倒了一杯茶。", turn=3, model="e5")
    assert picked(hits).get("皇城") == "semantic", picked(hits)
    assert len([h for h in hits if h.reason == "semantic"]) <= 3  # not the whole book
    assert not [h for h in plain if h.reason == "semantic"]  # ordinary chatter selects nothing by meaning
    assert MINILM_ID != embedder.model_id
