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


async def system_status(db: Database, settings: Settings, probes: dict[str, Probe],
                        built_in: dict[str, Any] | None = None) -> dict[str, Any]:
    """The full status document served at /api/system/status."""
    database = await asyncio.to_thread(database_report, db)
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
    }
