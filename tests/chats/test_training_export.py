"""Training export: each format parses and has exactly the schema Unsloth expects (st-formats.md §5)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner

from neuralrp.chats import editing, service, store
from neuralrp.chats.training import TrainingOptions, chat_records, export_training
from neuralrp.cli import cli
from neuralrp.errors import InvalidInput
from neuralrp.library.characters import insert_character
from tests.chats.test_editing import CARD

SYSTEM_ROLES = {"system"}
USER_ROLES = {"user", "human", "input"}
ASSISTANT_ROLES = {"gpt", "assistant", "output"}


def lines(data: bytes) -> list[dict[str, Any]]:
    """Parse JSONL strictly: one JSON object per non-empty line."""
    text = data.decode("utf-8")
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def check_sharegpt_like(rows: list[dict[str, Any]], column: str) -> None:
    """Unsloth's standardize_data_formats: exactly two string keys, known role values."""
    for row in rows:
        assert list(row) == [column]
        for turn in row[column]:
            assert len(turn) == 2 and all(isinstance(v, str) for v in turn.values())
    sample = [t for row in rows[:10] for t in row[column]]
    keys = list(sample[0])
    role_key = min(keys, key=lambda k: len({t[k] for t in sample}))
    for row in rows:
        roles = [t[role_key] for t in row[column]]
        assert set(roles) <= SYSTEM_ROLES | USER_ROLES | ASSISTANT_ROLES
        assert "system" not in roles[1:]


@pytest.fixture
def chat(conn: Any) -> int:
    cid = insert_character(conn, {**CARD, "data": {**CARD["data"], "description": "{{char}} guards {{user}}."}})
    chat_id = service.create_chat(conn, character_ids=[cid], title="Woods", persona={"name": "Ari"})
    for text in ("Hello there.", "Where now?"):
        service.post_user_message(conn, chat_id, text)
        turn = store.get_chat(conn, chat_id).turn
        store.insert_message(conn, chat_id, role="assistant", content=f"Mira answers: {text}", turn=turn,
                             character_id=cid, speaker_name="Mira")
    gone = service.post_user_message(conn, chat_id, "DELETED LINE")
    editing.delete_message(conn, gone.id)
    return chat_id


def test_sharegpt_exact_keys_and_roles(conn: Any, chat: int) -> None:
    rows = lines(export_training(conn, [chat], "sharegpt"))
    check_sharegpt_like(rows, "conversations")
    convo = rows[0]["conversations"]
    assert [t["from"] for t in convo] == ["system", "gpt", "human", "gpt", "human", "gpt"]
    assert convo[0]["value"] == "Mira: Mira guards Ari."
    assert convo[2] == {"from": "human", "value": "Hello there."}
    assert "DELETED LINE" not in json.dumps(rows)


def test_chatml_messages_and_text(conn: Any, chat: int) -> None:
    rows = lines(export_training(conn, [chat], "chatml"))
    check_sharegpt_like(rows, "messages")
    assert [m["role"] for m in rows[0]["messages"]] == ["system", "assistant", "user", "assistant", "user",
                                                        "assistant"]
    assert set(rows[0]["messages"][0]) == {"role", "content"}
    text = chat_records(conn, chat, "chatml", TrainingOptions(chatml_text=True))[0]["text"]
    assert text.startswith("<|im_start|>system\nMira: Mira guards Ari.<|im_end|>\n<|im_start|>assistant\n")
    assert text.count("<|im_start|>") == text.count("<|im_end|>") == 6
    assert "<|im_start|>user\nWhere now?<|im_end|>\n<|im_start|>assistant\nMira answers: Where now?<|im_end|>\n" in text


def test_alpaca_rows(conn: Any, chat: int) -> None:
    rows = lines(export_training(conn, [chat], "alpaca"))
    assert len(rows) == 2
    for row in rows:
        assert list(row) == ["instruction", "input", "output"] and all(isinstance(v, str) for v in row.values())
    assert rows[1]["instruction"] == "Where now?" and rows[1]["output"] == "Mira answers: Where now?"
    assert rows[1]["input"].startswith("Mira: Mira guards Ari.")
    assert "Ari: Hello there." in rows[1]["input"] and "Mira: Mira answers: Hello there." in rows[1]["input"]
    no_history = chat_records(conn, chat, "alpaca", TrainingOptions(alpaca_history=0, include_characters=False))
    assert no_history[1]["input"] == ""


def test_group_chat_names_go_into_text_and_summaries_into_system(conn: Any, chat: int) -> None:
    store.insert_message(conn, chat, role="assistant", content="I agree.", turn=3, speaker_name="Bran")
    store.insert_message(conn, chat, role="assistant", content="Me too.", turn=3, speaker_name="Mira")
    conn.execute("INSERT INTO summaries (chat_id, first_message_id, last_message_id, start_turn, end_turn, text,"
                 " created_at, updated_at) VALUES (?, 1, 1, 0, 0, 'They met in the woods.', 'x', 'x')", (chat,))
    opts = TrainingOptions(include_summaries=True)
    convo = chat_records(conn, chat, "sharegpt", opts)[0]["conversations"]
    assert {t["from"] for t in convo} == {"system", "human", "gpt"}
    assert convo[-2] == {"from": "human", "value": "Ari: Where now?"}
    assert convo[-1] == {"from": "gpt", "value": "Mira: Mira answers: Where now?\n\nBran: I agree.\n\nMira: Me too."}
    assert convo[0]["value"].endswith("Story so far:\nThey met in the woods.")
    never = chat_records(conn, chat, "sharegpt", TrainingOptions(speaker_names="never"))[0]["conversations"]
    assert never[-1]["value"] == "Mira answers: Where now?\n\nI agree.\n\nMe too."


def test_many_chats_and_empty_ones(conn: Any, chat: int) -> None:
    empty = service.create_chat(conn, character_ids=[store.cast_members(conn, chat)[0].character_id])
    assert chat_records(conn, empty, "sharegpt") == [{"conversations": [
        {"from": "system", "value": "Mira: Mira guards User."}, {"from": "gpt", "value": "Hello, User."}]}]
    assert chat_records(conn, empty, "alpaca") == []
    assert len(lines(export_training(conn, [chat, empty], "chatml"))) == 2
    assert len(lines(export_training(conn, [], "sharegpt"))) == 2
    with pytest.raises(InvalidInput):
        export_training(conn, [chat], "csv")


def test_cli_export_training(conn: Any, chat: int, settings: Any, tmp_path: Any) -> None:
    out = tmp_path / "train.jsonl"
    env = {"NEURALRP_PATHS_DATA_DIR": str(settings.paths.data_dir)}
    result = CliRunner().invoke(cli, ["export", "training", "--format", "sharegpt", str(chat), "--out", str(out)],
                                env=env)
    assert result.exit_code == 0, result.output
    assert "1 examples" in result.output
    check_sharegpt_like(lines(out.read_bytes()), "conversations")
    missing = CliRunner().invoke(cli, ["export", "training", "999", "--out", str(out)], env=env)
    assert missing.exit_code != 0 and "chat 999 does not exist" in missing.output
