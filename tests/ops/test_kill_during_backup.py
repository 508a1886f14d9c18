"""kill -9 `neuralrp serve` in the middle of a backup: the DB stays sound and no committed message is lost."""

from __future__ import annotations

import os
import signal
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest

from neuralrp.clock import iso, utcnow
from neuralrp.db.connection import Database, connect
from neuralrp.db.migrations import migrate
from neuralrp.llm.local_server import free_port
from neuralrp.ops.backup import SLOW_ENV, TMP_PREFIX, list_backups
from tests.fakes.live import serve_process
from tests.ops.helpers import seed
from tests.waiting import wait_until


def _serve(data_dir: Path, port: int, page_delay: float) -> subprocess.Popen[bytes]:
    return serve_process(data_dir, port, {SLOW_ENV: str(page_delay)})


@pytest.mark.slow
def test_kill_9_during_backup(tmp_path: Path) -> None:
    data = tmp_path / "data"
    db = Database(data / "neuralrp.db")
    with db.session() as conn:
        migrate(conn)
        seed(conn, chats=20, messages=20)
        conn.execute("INSERT INTO job_runs (job, last_finished_at, last_status) VALUES ('backup', ?, 'ok')",
                     (iso(utcnow() - timedelta(days=2)),))
    folder = data / "backups"
    port = free_port()
    proc = _serve(data, port, page_delay=0.05)
    try:
        wait_until(lambda: [p.name for p in folder.glob("*") if p.name.startswith(TMP_PREFIX)],
                   what="the backup to start writing its temporary file")
        writer = connect(db.path)
        committed = seed(writer, chats=2, messages=3, title="during backup")
        writer.close()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert list_backups(folder) == []  # the killed backup never appeared as a finished one
    proc = _serve(data, port, page_delay=0)
    try:
        wait_until(lambda: list_backups(folder), until=lambda found: len(found) == 1,
                   what="the missed backup to run again on restart")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
    conn = connect(db.path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()["integrity_check"] == "ok"
        kept = conn.execute(f"SELECT count(*) AS n FROM messages WHERE chat_id IN ({','.join('?' * 2)})",
                            committed).fetchone()["n"]
        assert conn.execute("SELECT count(*) AS n FROM messages").fetchone()["n"] == 20 * 20 + 2 * 3
    finally:
        conn.close()
    assert kept == 6
    assert not [p for p in folder.iterdir() if p.name.startswith(TMP_PREFIX)]
