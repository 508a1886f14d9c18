"""The system status report: health, backends, database and disk."""

from __future__ import annotations

import asyncio
import platform
import shutil
from typing import Any

import httpx

from neuralrp import __version__
from neuralrp.backends import Probe, probe_http
from neuralrp.config import Settings
from neuralrp.db.connection import Database, driver, vec_version
from neuralrp.db.migrations import schema_version
from neuralrp.llm.wire import llm_root
from neuralrp.ops.backup import list_backups
from neuralrp.ops.scheduler import backups_dir, job_rows, make_jobs, next_due

COUNTED_TABLES = ("characters", "worlds", "world_entries", "chats", "messages", "summaries", "images")


async def probe_backends(
    settings: Settings,
    *,
    llm_transport: httpx.AsyncBaseTransport | None = None,
    image_transport: httpx.AsyncBaseTransport | None = None,
    llm_url: str | None = None,
) -> dict[str, Probe]:
    """Check the LLM and image servers concurrently (llm_url: a built-in server's address)."""
    llm, images = await asyncio.gather(
        probe_http("llm", llm_root(llm_url or settings.llm.base_url), "/v1/models", transport=llm_transport,
                   not_configured_hint="set llm.base_url (e.g. http://127.0.0.1:5001 for KoboldCpp) "
                   "or start with --model PATH.gguf"),
        probe_http("images", settings.images.base_url, "/sdapi/v1/sd-models", transport=image_transport,
                   not_configured_hint="optional: set images.base_url to an AUTOMATIC1111 started with --api"),
    )
    return {"llm": llm, "images": images}


def database_report(db: Database) -> dict[str, Any]:
    """Schema version, sizes, versions and row counts of the DB."""
    with db.session() as conn:
        counts = {t: conn.execute(f"SELECT count(*) AS n FROM {t}").fetchone()["n"] for t in COUNTED_TABLES}
        report = {
            "path": str(db.path),
            "schema_version": schema_version(conn),
            "sqlite_version": driver().sqlite_version,
            "vec_version": vec_version(conn),
            "counts": counts,
        }
    sizes = db.size_bytes()
    report.update(size_bytes=sizes["db"], wal_bytes=sizes["wal"])
    return report


def disk_report(settings: Settings) -> dict[str, int | str]:
    """Free and total bytes on the data dir's disk."""
    usage = shutil.disk_usage(settings.data_dir)
    return {"path": str(settings.data_dir), "free_bytes": usage.free, "total_bytes": usage.total}


def jobs_report(db: Database, settings: Settings) -> dict[str, dict[str, Any]]:
    """Per maintenance job: whether it is on, its last run (from job_runs) and its next run."""
    rows = job_rows(db)
    out: dict[str, dict[str, Any]] = {}
    for job in make_jobs(db, settings):
        row = rows.get(job.name)
        due = next_due(job, row)
        out[job.name] = {
            "enabled": job.interval is not None,
            "last_finished_at": row["last_finished_at"] if row else None,
            "last_status": row["last_status"] if row else None,
            "last_detail": row["last_detail"] if row else None,
            "next_run_at": due.isoformat(timespec="seconds") if due else None,
        }
    return out


def backups_report(settings: Settings, jobs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Backup folder, count, total size, the newest backup and when the next one is due."""
    folder = backups_dir(settings)
    found = list_backups(folder)
    return {
        "enabled": settings.backups.enabled,
        "dir": str(folder),
        "count": len(found),
        "total_bytes": sum(b.size_bytes for b in found),
        "last": found[0].as_dict() if found else None,
        "next": jobs["backup"]["next_run_at"],
    }


def _maintenance(db: Database, settings: Settings) -> tuple[dict[str, Any], dict[str, Any]]:
    jobs = jobs_report(db, settings)
    return backups_report(settings, jobs), jobs


async def system_status(db: Database, settings: Settings, probes: dict[str, Probe],
                        built_in: dict[str, Any] | None = None) -> dict[str, Any]:
    """The full status document served at /api/system/status."""
    database = await asyncio.to_thread(database_report, db)
    backups, jobs = await asyncio.to_thread(_maintenance, db, settings)
    reachable_llm = probes["llm"].reachable
    backends: dict[str, Any] = {name: p.as_dict() for name, p in probes.items()}
    backends["llm"]["built_in"] = built_in or {"built_in": False}
    return {
        "health": "ok" if reachable_llm else "degraded",
        "version": __version__,
        "schema_version": database["schema_version"],
        "python": platform.python_version(),
        "database": database,
        "disk": disk_report(settings),
        "backends": backends,
        "backups": backups,
        "jobs": jobs,
    }
