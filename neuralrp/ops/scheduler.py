"""Background jobs (backup, retention, VACUUM, history) on APScheduler 3, with schedules that survive restarts.

Each job's next run is its last finish recorded in ``job_runs`` plus its interval, never process uptime:
a job that fell due while NeuralRP was down runs on the first tick after start (seconds). A job never seen
before gets a row "now", so its first run is one interval after the first start.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler

from neuralrp.chats.editing import prune_history
from neuralrp.clock import iso, utcnow
from neuralrp.config import Settings
from neuralrp.db.connection import Database
from neuralrp.ops.backup import MAINTENANCE_LOCK, clean_temp_files, create_backup, prune_backups
from neuralrp.ops.retention import prune, vacuum

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
        return {r["job"]: r for r in conn.execute("SELECT * FROM job_runs")}


def next_due(job: Job, row: dict[str, Any] | None) -> datetime | None:
    """When the job should run next, from its recorded last finish (None: off or never scheduled)."""
    if job.interval is None or row is None:
        return None
    last = _parse(row["last_finished_at"]) or _parse(row["last_started_at"])
    return last + job.interval if last else None


def _record(db: Database, job: str, **fields: str) -> None:
    cols = ", ".join(fields)
    marks = ", ".join("?" for _ in fields)
    updates = ", ".join(f"{c} = excluded.{c}" for c in fields)
    with db.session() as conn:
        conn.execute(f"INSERT INTO job_runs (job, {cols}) VALUES (?, {marks}) "
                     f"ON CONFLICT(job) DO UPDATE SET {updates}", (job, *fields.values()))


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


class Scheduler:
    """Ticks every poll_s seconds (first tick at start) and runs the jobs that are due."""

    def __init__(self, db: Database, jobs: list[Job], *, poll_s: float = 60.0,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.jobs = jobs
        self.poll_s = poll_s
        self._clock = clock
        self._scheduler = BackgroundScheduler(timezone="UTC")

    def start(self) -> None:
        """Start ticking in a background thread."""
        clean_temp_files(backups_dir_of(self.db))
        self._scheduler.add_job(self.tick, "interval", seconds=self.poll_s, id="maintenance-tick",
                                next_run_time=self._clock(), max_instances=1, coalesce=True)
        self._scheduler.start()
        log.info("scheduler started: %s", ", ".join(j.name for j in self.jobs if j.interval))

    def tick(self) -> list[str]:
        """Run whatever is due now."""
        return run_due(self.db, self.jobs, self._clock())

    def stop(self) -> None:
        """Stop ticking and wait for a running job to finish."""
        if self._scheduler.running:
            self._scheduler.shutdown(wait=True)


def backups_dir_of(db: Database) -> Path:
    """The backups folder beside a DB file."""
    return db.path.parent / "backups"


def make_scheduler(db: Database, settings: Settings, *, poll_s: float = 60.0) -> Scheduler:
    """The app's scheduler with the four maintenance jobs."""
    return Scheduler(db, make_jobs(db, settings), poll_s=poll_s)
