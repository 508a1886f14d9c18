"""The system status report: health, backends, database and disk."""

from __future__ import annotations

import asyncio
import platform
import shutil
from typing import Any

import httpx

from neuralrp import __version__
from neuralrp.backends import Probe, ProbeCache, probe_http
from neuralrp.config import Settings
from neuralrp.db import appstate, maintenance
from neuralrp.db.connection import Connection, Database, driver, vec_version
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
    llm_cache: ProbeCache | None = None,
    llm_busy: bool = False,
    image_cache: ProbeCache | None = None,
) -> dict[str, Probe]:
    """Check the LLM and image servers concurrently (llm_url: a built-in server's address).

    With `llm_cache` the LLM server is asked at most every few seconds and never while it generates; with
    `image_cache` the image server is asked at most every few seconds (a status page open costs it nothing).
    """
    root = llm_root(llm_url or settings.llm.base_url)
    images_url = settings.images.base_url

    async def ask_llm() -> Probe:
        return await probe_http("llm", root, "/v1/models", transport=llm_transport,
                                not_configured_hint="set llm.base_url (e.g. http://127.0.0.1:5001 for KoboldCpp) "
                                "or start with --model PATH.gguf")

    async def ask_images() -> Probe:
        return await probe_http("images", images_url, "/sdapi/v1/sd-models", transport=image_transport,
                                not_configured_hint="optional: set images.base_url to an AUTOMATIC1111 started "
                                "with --api")

    llm_probe = ask_llm() if llm_cache is None or root is None else llm_cache.get(ask_llm, busy=llm_busy, url=root)
    image_probe = (ask_images() if image_cache is None or not images_url
                   else image_cache.get(ask_images, busy=False, url=images_url))
    llm, images = await asyncio.gather(llm_probe, image_probe)
    return {"llm": llm, "images": images}


def database_facts(conn: Connection) -> dict[str, Any]:
    """Schema version, SQLite and sqlite-vec versions and row counts of the DB."""
    return {"schema_version": schema_version(conn), "sqlite_version": driver().sqlite_version,
            "vec_version": vec_version(conn), "counts": maintenance.row_counts(conn, COUNTED_TABLES)}


def database_report(db: Database, facts: dict[str, Any]) -> dict[str, Any]:
    """The DB's path and file sizes with its facts (from database_facts)."""
    sizes = db.size_bytes()
    return {"path": str(db.path), **facts, "size_bytes": sizes["db"], "wal_bytes": sizes["wal"]}


def disk_report(settings: Settings) -> dict[str, int | str]:
    """Free and total bytes on the data dir's disk."""
    usage = shutil.disk_usage(settings.data_dir)
    return {"path": str(settings.data_dir), "free_bytes": usage.free, "total_bytes": usage.total}


def jobs_report(db: Database, settings: Settings,
                rows: dict[str, dict[str, Any]] | None = None) -> dict[str, dict[str, Any]]:
    """Per maintenance job: whether it is on, its last run (from job_runs, or `rows` read from it) and its next
    run."""
    rows = job_rows(db) if rows is None else rows
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


def _stored_facts(conn: Connection, db: Database,
                  settings: Settings) -> tuple[dict[str, Any], dict[str, Any], dict[str, dict[str, Any]]]:
    """Database facts, backups and jobs in one worker call, on the worker's own connection (one trip off the
    loop, and no new connection per status request)."""
    facts = database_facts(conn)
    jobs = jobs_report(db, settings, appstate.job_runs(conn))
    return facts, backups_report(settings, jobs), jobs


async def system_status(db: Database, settings: Settings, probes: dict[str, Probe],
                        built_in: dict[str, Any] | None = None) -> dict[str, Any]:
    """The full status document served at /api/system/status."""
    facts, backups, jobs = await db.run(_stored_facts, db, settings)
    database = database_report(db, facts)
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
