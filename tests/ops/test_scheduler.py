"""Scheduler: next runs come from job_runs, so jobs missed while the app was down run on the next start."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

from neuralrp.app import create_app
from neuralrp.clock import iso, utcnow
from neuralrp.config import Settings
from neuralrp.db.connection import Database
from neuralrp.db.migrations import migrate
from neuralrp.ops.backup import list_backups
from neuralrp.ops.scheduler import Job, Scheduler, job_rows, make_jobs, run_due
from tests.waiting import wait_until

NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)


def _set_finished(db: Database, job: str, when: datetime) -> None:
    with db.session() as conn:
        conn.execute("INSERT INTO job_runs (job, last_finished_at, last_status) VALUES (?, ?, 'ok') "
                     "ON CONFLICT(job) DO UPDATE SET last_finished_at = excluded.last_finished_at", (job, iso(when)))


def test_first_start_seeds_then_runs_after_one_interval(db: Database) -> None:
    calls: list[datetime] = []
    jobs = [Job("demo", timedelta(hours=24), lambda now: calls.append(now) or "did it")]
    assert run_due(db, jobs, NOW) == []
    assert job_rows(db)["demo"]["last_status"] == "scheduled"
    assert run_due(db, jobs, NOW + timedelta(hours=23)) == []
    assert run_due(db, jobs, NOW + timedelta(hours=24)) == ["demo"]
    row = job_rows(db)["demo"]
    assert row["last_status"] == "ok" and row["last_detail"] == "did it"
    assert calls == [NOW + timedelta(hours=24)]


def test_failing_job_is_recorded_and_others_still_run(db: Database) -> None:
    def boom(now: datetime) -> str:
        raise RuntimeError("disk on fire")

    jobs = [Job("bad", timedelta(hours=1), boom), Job("good", timedelta(hours=1), lambda now: "fine")]
    for job in jobs:
        _set_finished(db, job.name, NOW - timedelta(days=2))
    assert run_due(db, jobs, NOW) == ["bad", "good"]
    rows = job_rows(db)
    assert rows["bad"]["last_status"] == "error" and "disk on fire" in rows["bad"]["last_detail"]
    assert rows["good"]["last_status"] == "ok"


def test_disabled_jobs_never_run(db: Database, make_settings: Any) -> None:
    settings = make_settings(backups={"enabled": False}, retention={"vacuum_every_days": 0})
    jobs = {j.name: j for j in make_jobs(db, settings)}
    assert jobs["backup"].interval is None and jobs["vacuum"].interval is None
    assert jobs["retention"].interval == timedelta(days=1)


def test_all_jobs_run_when_due(db: Database, settings: Settings) -> None:
    jobs = make_jobs(db, settings)
    for job in jobs:
        _set_finished(db, job.name, utcnow() - timedelta(days=30))
    assert sorted(run_due(db, jobs, utcnow())) == ["backup", "history", "retention", "vacuum"]
    assert all(r["last_status"] == "ok" for r in job_rows(db).values()), job_rows(db)
    assert len(list_backups(settings.data_dir / "backups")) == 1


async def test_scheduler_ticks_at_start_and_pauses(db: Database, settings: Settings) -> None:
    _set_finished(db, "history", utcnow() - timedelta(days=2))
    scheduler = Scheduler(db, make_jobs(db, settings), poll_s=3600)
    await scheduler.start()
    try:
        async with asyncio.timeout(30):
            await scheduler.wait_ticks(1)
        assert job_rows(db)["history"]["last_status"] == "ok"
        await scheduler.pause()
        assert not scheduler.running("main"), "a paused scheduler has no loop"
        await scheduler.resume()
        async with asyncio.timeout(30):
            await scheduler.wait_ticks(2)  # a resume ticks at once (jobs missed while paused run then)
    finally:
        await scheduler.close()
    assert not scheduler.running("main")


def test_backup_missed_while_down_runs_on_next_start(settings: Settings) -> None:
    db = Database(settings.db_path)
    with db.session() as conn:
        migrate(conn)
    _set_finished(db, "backup", utcnow() - timedelta(days=2))
    folder = settings.data_dir / "backups"
    with TestClient(create_app(settings)) as client:
        wait_until(lambda: job_rows(db)["backup"],
                   until=lambda row: row["last_started_at"] and row["last_status"] == "ok",
                   what="the missed backup to run")
        assert len(list_backups(folder)) == 1
        jobs = client.get("/api/system/status").json()["jobs"]
    assert jobs["backup"]["last_status"] == "ok"
    assert datetime.fromisoformat(jobs["backup"]["next_run_at"]) > utcnow() + timedelta(hours=23)
