"""Only the store modules write SQL: one module per table group, nothing else calls execute with SQL.

Routes, services and orchestrators (turns/, ops/, cardgen/, images/service.py, chats/service.py ...) call the
store functions of the table group they need; a new query goes into that group's store.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "neuralrp"
EXECUTE = frozenset({"execute", "executemany", "executescript"})

# The only modules that may pass SQL to execute/executemany/executescript, one per table group.
STORES = {
    "chats/store.py",  # chats, chat_cast, chat_worlds, messages, message_swipes
    "chats/copies.py",  # the rows of a chat copied into a fork (chats, chat_cast, chat_worlds, messages, swipes)
    "chats/worldlinks.py",  # chat_worlds and the worlds a chat uses through its cast's cards and the settings
    "chats/search.py",  # messages_fts, messages_words (the full-text indexes over messages)
    "chats/summaries.py",  # summaries
    "library/characters.py",  # characters
    "library/worlds.py",  # worlds, world_entries
    "library/personas.py",  # personas
    "library/tags.py",  # tags, character_tags (the tag index)
    "images/storage.py",  # images, image_tags
    "retrieval/vectors.py",  # embeddings, vec_384, vec_768 (and the world-entry reads retrieval needs)
    "db/history.py",  # change_history
    "db/appstate.py",  # settings, job_runs
    "db/maintenance.py",  # the whole file: PRAGMAs, sqlite_master, data_versions, VACUUM, row counts
    "db/migrations.py",  # _migrations and the migration scripts
    "db/connection.py",  # connection pragmas and BEGIN/COMMIT/ROLLBACK
    "db/rows.py",  # generic row copy the stores use for forks
}


def sql_calls(source: str) -> list[int]:
    """Line numbers of execute/executemany/executescript calls given an argument (SQL text or a variable)."""
    calls = []
    for node in ast.walk(ast.parse(source)):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in EXECUTE
                and node.args):
            calls.append(node.lineno)
    return calls


def test_the_scanner_finds_sql_in_every_form() -> None:
    source = '''
def f(conn, table, sql):
    conn.execute("SELECT 1")
    conn.executemany(f"UPDATE {table} SET a = ?", [(1,)])
    conn.executescript("BEGIN;" + sql)
    cursor = conn.execute(sql, (1,))
    conn.commit()
'''
    assert sql_calls(source) == [3, 4, 5, 6]


def test_every_listed_store_exists() -> None:
    missing = sorted(name for name in STORES if not (PACKAGE / name).is_file())
    assert not missing, f"listed as stores but missing: {missing}"


def test_only_store_modules_write_sql() -> None:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        name = path.relative_to(PACKAGE).as_posix()
        if name in STORES:
            continue
        found += [f"neuralrp/{name}:{line}" for line in sql_calls(path.read_text(encoding="utf-8"))]
    assert not found, ("SQL outside the store modules (move it into the store of its table group): "
                       + ", ".join(found))
