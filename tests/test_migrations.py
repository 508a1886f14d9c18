"""Migrations: a blank DB gets the exact schema; a failed step leaves nothing behind."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from neuralrp.cli import cli
from neuralrp.db.connection import connect, driver
from neuralrp.db.migrations import Migration, applied, bundled_migrations, migrate, pending, schema_version
from neuralrp.errors import MigrationError

EXPECTED_COLUMNS: dict[str, list[str]] = {
    "_migrations": ["number", "name", "applied_at"],
    "characters": [
        "id", "uid", "name", "card_json", "spec", "scope_chat_id", "gender", "visual_tags", "talkativeness",
        "avatar_path", "source_file", "source_mtime", "capsule", "capsule_hash", "created_at", "updated_at",
    ],
    "worlds": [
        "id", "uid", "name", "description", "extra_json", "character_id", "source_file", "source_mtime",
        "created_at", "updated_at",
    ],
    "world_entries": [
        "id", "world_id", "uid", "keys_json", "secondary_keys_json", "comment", "content", "constant",
        "selective", "selective_logic", "disabled", "order_value", "position", "probability",
        "use_probability", "is_canon_law", "extra_json", "content_hash", "created_at", "updated_at",
    ],
    "chats": [
        "id", "uid", "title", "mode", "focus_character_id", "persona_json", "settings_json", "turn",
        "next_seq", "autosave", "forked_from_chat_id", "forked_from_message_id", "created_at", "updated_at",
        "last_activity_at", "deleted_at",
    ],
    "chat_cast": [
        "id", "chat_id", "character_id", "is_active", "position", "first_turn", "last_present_turn",
        "last_full_card_turn", "joined_at", "reset_turn", "left_turn",
    ],
    "messages": [
        "id", "chat_id", "seq", "turn", "role", "character_id", "speaker_name", "content", "status",
        "swipe_index", "archived", "archived_reason", "summary_id", "token_count", "token_counter",
        "extra_json", "created_at", "updated_at", "search_indexed",
    ],
    "message_swipes": ["id", "message_id", "idx", "content", "status", "created_at"],
    "summaries": [
        "id", "chat_id", "first_message_id", "last_message_id", "start_turn", "end_turn", "level", "text",
        "archived", "parent_id", "edited", "created_at", "updated_at", "origin",
    ],
    "images": [
        "id", "uid", "chat_id", "message_id", "file_name", "source", "prompt", "negative_prompt", "seed",
        "sampler", "scheduler", "steps", "cfg_scale", "width", "height", "model", "request_json",
        "info_json", "favorite", "created_at",
    ],
    "tags": ["id", "name"],
    "character_tags": ["character_id", "tag_id"],
    "character_worlds": ["character_id", "world_id", "linked_at"],
    "personas": ["id", "name", "description", "avatar_path", "is_default", "created_at", "updated_at"],
    "world_tags": ["world_id", "tag_id"],
    "image_tags": ["image_id", "tag_id"],
    "change_history": [
        "id", "entity_type", "entity_id", "operation", "old_json", "new_json", "note", "created_at",
    ],
    "settings": ["key", "value_json", "updated_at"],
    "job_runs": ["job", "last_started_at", "last_finished_at", "last_status", "last_detail"],
    "chat_worlds": ["chat_id", "world_id"],
    "embeddings": ["id", "owner_type", "owner_id", "model", "dim", "content_hash", "created_at"],
    "messages_fts": ["content", "speaker_name"],
    "messages_words": ["content", "speaker_name"],
}
EXPECTED_TRIGGERS = {"messages_fts_insert", "messages_fts_delete", "messages_fts_update",
                     "messages_words_insert", "messages_words_delete", "messages_words_update"}
VEC_TABLES = {"vec_384": 384, "vec_768": 768}


def tables(conn: Any) -> set[str]:
    rows = conn.execute("SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'")
    return {r["name"] for r in rows}


def columns(conn: Any, table: str) -> list[str]:
    return [r["name"] for r in conn.execute(f"PRAGMA table_info({table})")]


def test_blank_db_gets_the_whole_schema(tmp_path: Path) -> None:
    conn = connect(tmp_path / "blank.db")
    names = migrate(conn)
    assert names == [m.name for m in bundled_migrations()]
    assert schema_version(conn) == len(names)
    assert tables(conn) >= set(EXPECTED_COLUMNS)
    for table, cols in EXPECTED_COLUMNS.items():
        assert columns(conn, table) == cols, table
    for table, dim in VEC_TABLES.items():
        sql = conn.execute("SELECT sql FROM sqlite_master WHERE name = ?", (table,)).fetchone()["sql"]
        assert f"float[{dim}]" in sql and "vec0" in sql
    triggers = {r["name"] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
    assert triggers >= EXPECTED_TRIGGERS
    fts = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'messages_fts'").fetchone()["sql"]
    assert "fts5" in fts and "trigram" in fts and "content = 'messages'" in fts
    assert conn.execute("PRAGMA journal_mode").fetchone()["journal_mode"] == "wal"
    assert conn.execute("PRAGMA foreign_keys").fetchone()["foreign_keys"] == 1
    assert conn.execute("PRAGMA integrity_check").fetchone()["integrity_check"] == "ok"


def test_migrate_is_idempotent_and_recorded(tmp_path: Path) -> None:
    conn = connect(tmp_path / "db.db")
    first = migrate(conn)
    assert migrate(conn) == []
    assert sorted(applied(conn).values()) == sorted(first)
    assert pending(conn) == []


def test_foreign_keys_cascade(tmp_path: Path) -> None:
    conn = connect(tmp_path / "db.db")
    migrate(conn)
    now = "2026-01-01T00:00:00.000+00:00"
    conn.execute("INSERT INTO chats (uid, created_at, updated_at, last_activity_at) VALUES ('c1', ?, ?, ?)",
                 (now, now, now))
    chat_id = conn.execute("SELECT id FROM chats").fetchone()["id"]
    conn.execute("INSERT INTO messages (chat_id, seq, turn, role, content, created_at, updated_at) "
                 "VALUES (?, 1, 1, 'user', 'hi', ?, ?)", (chat_id, now, now))
    with pytest.raises(driver().IntegrityError):
        conn.execute("INSERT INTO messages (chat_id, seq, turn, role, content, created_at, updated_at) "
                     "VALUES (999, 1, 1, 'user', 'x', ?, ?)", (now, now))
    with pytest.raises(driver().IntegrityError):
        conn.execute("INSERT INTO messages (chat_id, seq, turn, role, content, created_at, updated_at) "
                     "VALUES (?, 2, -1, 'user', 'negative turn', ?, ?)", (chat_id, now, now))


def test_fts_backfills_and_follows_messages(tmp_path: Path) -> None:
    conn = connect(tmp_path / "db.db")
    before = [m for m in bundled_migrations() if m.number < 3]
    migrate(conn, before)
    now = "2026-01-01T00:00:00.000+00:00"
    conn.execute("INSERT INTO chats (uid, created_at, updated_at, last_activity_at) VALUES ('c1', ?, ?, ?)",
                 (now, now, now))
    conn.execute("INSERT INTO messages (chat_id, seq, turn, role, content, created_at, updated_at) "
                 "VALUES (1, 1, 1, 'user', 'an old lantern', ?, ?)", (now, now))
    migrate(conn)

    def hits(term: str) -> int:
        sql = "SELECT count(*) AS n FROM messages_fts WHERE messages_fts MATCH ?"
        return int(conn.execute(sql, (f'"{term}"',)).fetchone()["n"])

    assert hits("lantern") == 1
    conn.execute("UPDATE messages SET content = 'a new candle' WHERE id = 1")
    assert (hits("lantern"), hits("candle")) == (0, 1)
    conn.execute("UPDATE messages SET archived = 1 WHERE id = 1")
    assert hits("candle") == 1
    conn.execute("DELETE FROM chats")
    assert hits("candle") == 0
    assert conn.execute("INSERT INTO messages_fts (messages_fts) VALUES ('integrity-check')").rowcount != 0


def test_failed_migration_leaves_nothing_behind(tmp_path: Path) -> None:
    conn = connect(tmp_path / "db.db")
    good = Migration(1, "0001_good", "CREATE TABLE a (x INTEGER);")
    bad = Migration(2, "0002_bad", "CREATE TABLE b (y INTEGER);\nINSERT INTO a VALUES (1);\nSELEC oops;")
    with pytest.raises(MigrationError, match="0002_bad failed and was rolled back"):
        migrate(conn, [good, bad])
    assert "a" in tables(conn)
    assert "b" not in tables(conn)
    assert conn.execute("SELECT count(*) AS n FROM a").fetchone()["n"] == 0
    assert applied(conn) == {1: "0001_good"}
    assert not conn.in_transaction
    fixed = Migration(2, "0002_bad", "CREATE TABLE b (y INTEGER);")
    assert migrate(conn, [good, fixed]) == ["0002_bad"]
    assert "b" in tables(conn)


def test_newer_database_is_refused(tmp_path: Path) -> None:
    conn = connect(tmp_path / "db.db")
    migrate(conn)
    conn.execute("INSERT INTO _migrations VALUES (999, '0999_future', '2030-01-01')")
    with pytest.raises(MigrationError, match="newer than this NeuralRP knows"):
        migrate(conn)


def test_bundled_migrations_are_numbered_without_gaps() -> None:
    numbers = [m.number for m in bundled_migrations()]
    assert numbers == list(range(1, len(numbers) + 1))


def test_cli_migrate_and_list(tmp_path: Path) -> None:
    runner = CliRunner()
    env = {"NEURALRP_PATHS_DATA_DIR": str(tmp_path / "d")}
    listed = runner.invoke(cli, ["migrate", "--list"], env=env)
    assert listed.exit_code == 0, listed.output
    assert "pending  0001_initial" in listed.output
    done = runner.invoke(cli, ["migrate"], env=env)
    assert done.exit_code == 0, done.output
    names = [m.name for m in bundled_migrations()]
    assert names[:5] == ["0001_initial", "0002_context_engine", "0003_chat_craft", "0004_word_search",
                         "0005_data_versions"]
    assert f"applied {len(names)} migration(s): {', '.join(names)}" in done.output
    again = runner.invoke(cli, ["migrate", "--list"], env=env)
    assert "applied  0001_initial" in again.output
    assert runner.invoke(cli, ["migrate"], env=env).output.strip() == "schema is up to date"
