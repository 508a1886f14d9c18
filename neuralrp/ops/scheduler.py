"""Background jobs (backup, retention, VACUUM, history) on a worker, with schedules that survive restarts.

Each job's next run is its last finish recorded in ``job_runs`` plus its interval, never process uptime:
a job that fell due while NeuralRP was down runs on the first tick after start (seconds). A job never seen
before gets a row "now", so its first run is one interval after the first start. The Scheduler is a
Worker: a restore pauses it (waiting for a running job to finish) and resumes it afterwards.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from neuralrp.chats.editing import prune_history
from neuralrp.clock import iso, utcnow
from neuralrp.config import Settings
from neuralrp.db import appstate
from neuralrp.db.connection import Database, driver
from neuralrp.errors import NeuralRPError
from neuralrp.ops.backup import MAINTENANCE_LOCK, clean_temp_files, create_backup, prune_backups
from neuralrp.ops.retention import prune, vacuum
from neuralrp.workers import Worker, in_thread

log = logging.getLogger(__name__)

JobFunc = Callable[[datetime], str]


@dataclass(frozen=True)
class Job:
    """A named job, its interval (None: off) and the function that runs it."""

    name: str
    interval: timedelta | None
    run: JobFunc


def backups_dir(settings: Settings) -> Path:
    """Where backups live."""
    return settings.data_dir / "backups"


def make_jobs(db: Database, settings: Settings) -> list[Job]:
    """The four maintenance jobs for these settings."""
    folder = backups_dir(settings)

    def backup(now: datetime) -> str:
        info = create_backup(db, folder, now=now)
        pruned = prune_backups(folder, retention_days=settings.backups.retention_days,
                               keep_at_least=settings.backups.keep_at_least, now=now)
        return f"{info.name} ({info.size_bytes} bytes); pruned {len(pruned)}"

    def retention(now: datetime) -> str:
        with db.session() as conn:
            return prune(conn, settings.retention, now).line()

    def vacuum_job(now: datetime) -> str:
        with db.session() as conn:
            pages = vacuum(conn)
        return f"pages {pages['pages_before']} -> {pages['pages_after']}"

    def history(now: datetime) -> str:
        with db.session() as conn:
            return f"removed {prune_history(conn, settings.chats.history_days)} history row(s)"

    every = settings.retention.vacuum_every_days
    return [
        Job("backup", timedelta(hours=settings.backups.every_hours) if settings.backups.enabled else None, backup),
        Job("retention", timedelta(days=1), retention),
        Job("vacuum", timedelta(days=every) if every else None, vacuum_job),
        Job("history", timedelta(days=1), history),
    ]


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def job_rows(db: Database) -> dict[str, dict[str, Any]]:
    """The job_runs table keyed by job name."""
    with db.session() as conn:
        return appstate.job_runs(conn)


def next_due(job: Job, row: dict[str, Any] | None) -> datetime | None:
    """When the job should run next, from its recorded last finish (None: off or never scheduled)."""
    if job.interval is None or row is None:
        return None
    last = _parse(row["last_finished_at"]) or _parse(row["last_started_at"])
    return last + job.interval if last else None


def _record(db: Database, job: str, **fields: str) -> None:
    with db.session() as conn:
        appstate.record_job(conn, job, **fields)


def run_job(db: Database, job: Job, now: datetime) -> bool:
    """Run one job now, logging and recording start and finish; True when it succeeded."""
    log.info("job %s: started", job.name)
    _record(db, job.name, last_started_at=iso(now), last_status="running")
    try:
        with MAINTENANCE_LOCK:  # never during a restore, backup or VACUUM
            detail = job.run(now)
    except Exception as e:  # a failed job is recorded and retried next interval; the scheduler keeps going
        log.exception("job %s: failed", job.name)
        _record(db, job.name, last_finished_at=iso(utcnow()), last_status="error", last_detail=str(e)[:500])
        return False
    _record(db, job.name, last_finished_at=iso(utcnow()), last_status="ok", last_detail=detail)
    log.info("job %s: finished: %s", job.name, detail)
    return True


def run_due(db: Database, jobs: list[Job], now: datetime) -> list[str]:
    """Run every job whose next run is at or before now; seed rows for jobs never seen. Returns names run."""
    rows = job_rows(db)
    ran = []
    for job in jobs:
        if job.interval is None:
            continue
        if job.name not in rows:
            _record(db, job.name, last_finished_at=iso(now), last_status="scheduled", last_detail="first start")
            continue
        due = next_due(job, rows[job.name])
        if due is not None and due <= now:
            run_job(db, job, now)
            ran.append(job.name)
    return ran


class Scheduler(Worker):
    """Ticks every poll_s seconds (first tick at start) and runs the jobs that are due, each in a thread."""

    def __init__(self, db: Database, jobs: list[Job], *, poll_s: float = 60.0,
                 clock: Callable[[], datetime] = utcnow) -> None:
        super().__init__("scheduler")
        self.db = db
        self.jobs = jobs
        self.poll_s = poll_s
        self._clock = clock
        self.ticks = 0
        self._ticked = asyncio.Condition()

    async def start(self) -> None:
        """Remove temp files a killed backup left, then tick now and every poll_s seconds."""
        await in_thread(clean_temp_files, backups_dir_of(self.db))
        await super().start()
        log.info("scheduler started: %s", ", ".join(j.name for j in self.jobs if j.interval))

    async def run(self) -> None:
        """The ticking loop (a pause cancels it between ticks or waits for the running job)."""
        while True:
            try:
                await in_thread(self.tick)
            except (NeuralRPError, driver().Error) as e:  # the next tick tries again
                log.warning("scheduler: reading job_runs failed: %s", e)
            async with self._ticked:
                self.ticks += 1
                self._ticked.notify_all()
            await asyncio.sleep(self.poll_s)

    def tick(self) -> list[str]:
        """Run whatever is due now."""
        return run_due(self.db, self.jobs, self._clock())

    async def wait_ticks(self, count: int) -> None:
        """Return once `count` ticks have finished since the scheduler was built."""
        async with self._ticked:
            await self._ticked.wait_for(lambda: self.ticks >= count)


def backups_dir_of(db: Database) -> Path:
    """The backups folder beside a DB file."""
    return db.path.parent / "backups"


def make_scheduler(db: Database, settings: Settings, *, poll_s: float = 60.0) -> Scheduler:
    """The app's scheduler with the four maintenance jobs."""
    return Scheduler(db, make_jobs(db, settings), poll_s=poll_s)
