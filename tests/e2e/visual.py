"""Helpers for screenshot tests: stable pages, baseline comparison with a small tolerance, horizontal overflow.

Baselines are PNGs under tests/e2e/baselines/, made on Debian's chromium in headless mode (the CI machine). A
missing baseline fails the test unless UPDATE_BASELINES=1 is set, which (re)writes every baseline it meets.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

if TYPE_CHECKING:
    from playwright.sync_api import Page, Route

BASELINES = Path(__file__).resolve().parent / "baselines"
CHANNEL_SLACK = 24  # a pixel counts as changed when a colour channel moves more than this (0-255)
MAX_CHANGED = 0.002  # at most this share of the pixels may change (antialiasing, a subpixel shift)
SIZES: dict[str, Any] = {"1366": {"width": 1366, "height": 900}, "1920": {"width": 1920, "height": 1080},
         "390": {"width": 390, "height": 844}}
# The page is ready once its fonts are loaded, every image has loaded (lazy ones are asked to load now, or a
# picture below the fold would be missing from a full-page shot), and two frames have been drawn.
SETTLED = """() => {
  for (const img of document.querySelectorAll('img[loading=lazy]')) img.loading = 'eager';
  const loaded = (img) => img.complete ? null : new Promise((done) => {
    img.addEventListener('load', done, {once: true});
    img.addEventListener('error', done, {once: true});
  });
  const giveUp = new Promise((done) => setTimeout(done, 8000));
  return document.fonts.ready
    .then(() => Promise.race([Promise.all(Array.from(document.images, loaded)), giveUp]))
    .then(() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done))));
}"""
# Finite animations only: a spinner or a blinking caret never ends.
STILL = """() => Promise.all(document.getAnimations()
  .filter((a) => Number.isFinite(a.effect?.getComputedTiming().endTime ?? Infinity))
  .map((a) => a.finished.catch(() => null)))"""
# No caret blinking, no smooth scrolling, no transitions: the same pixels every time.
STILL_CSS = ("*, *::before, *::after { transition: none !important; animation: none !important; "
             "caret-color: transparent !important; scroll-behavior: auto !important; }")

# Every visible element must lie inside the viewport and inside the box of the nearest ancestor that clips it
# (overflow other than visible); a scrolling ancestor (auto/scroll) must not scroll sideways unless it is one of
# the horizontal scrollers named in SIDEWAYS. Returns one line per offender.
OVERFLOW = """(sideways) => {
  const vw = document.documentElement.clientWidth;
  const out = [];
  const label = (n) => n.tagName.toLowerCase() + (n.id ? '#' + n.id : '')
    + (n.classList.length ? '.' + [...n.classList].join('.') : '')
    + (n.textContent ? ' "' + n.textContent.trim().slice(0, 30) + '"' : '');
  if (document.documentElement.scrollWidth > vw + 1) {
    out.push(`the page scrolls sideways: ${document.documentElement.scrollWidth}px wide in a ${vw}px window`);
  }
  const scrollersSeen = new Set();
  for (const node of document.querySelectorAll('body *')) {
    const style = getComputedStyle(node);
    if (style.visibility !== 'visible' || style.display === 'contents') continue;
    const box = node.getBoundingClientRect();
    if (box.width < 2 || box.height < 2) continue;  // nothing drawn (or a visually hidden label)
    if (style.clip === 'rect(0px, 0px, 0px, 0px)' || style.clipPath === 'inset(50%)') continue;
    let clipper = null;
    for (let a = node.parentElement; a && a !== document.documentElement; a = a.parentElement) {
      if (getComputedStyle(a).overflowX !== 'visible') { clipper = a; break; }
    }
    let left = 0;
    let right = vw;
    if (clipper) {
      const clip = getComputedStyle(clipper).overflowX;
      if (clip === 'auto' || clip === 'scroll') {
        if (!scrollersSeen.has(clipper)) {
          scrollersSeen.add(clipper);
          const wide = clipper.scrollWidth > clipper.clientWidth + 1;
          if (wide && !sideways.some((s) => clipper.matches(s))) {
            out.push(`${label(clipper)} scrolls sideways (${clipper.scrollWidth}px in ${clipper.clientWidth}px)`);
          }
        }
        continue;
      }
      const c = clipper.getBoundingClientRect();
      left = Math.max(0, c.left);
      right = Math.min(vw, c.right);
    }
    if (box.right > right + 1 || box.left < left - 1) {
      out.push(`${label(node)} is cut off: x ${Math.round(box.left)}..${Math.round(box.right)}, room `
        + `${Math.round(left)}..${Math.round(right)}` + (clipper ? ` in ${label(clipper)}` : ' (window)'));
    }
  }
  return out;
}"""
# Elements meant to scroll sideways.
SIDEWAYS = [".lib-tabs", ".nav ul", ".img-strip", ".insp-chips", "pre", ".lib-grid-zone"]


@dataclass
class Shot:
    """One screenshot compared with its baseline."""

    name: str
    changed: float
    note: str


def settle(page: Page) -> None:
    """Wait until the page shows its final pixels: network quiet, fonts and images in, two frames drawn."""
    page.wait_for_load_state("networkidle")
    page.evaluate(SETTLED)


def still(page: Page) -> None:
    """Wait until every finite CSS animation on the page has ended (a dialog scaling in moves its boxes)."""
    page.evaluate(STILL)


def overflow(page: Page) -> list[str]:
    """Elements that stick out of the window or out of a clipping box, and sideways scrolling."""
    found: list[str] = page.evaluate(OVERFLOW, SIDEWAYS)
    return found


def compare(png: bytes, name: str, out_dir: Path) -> Shot:
    """Compare a screenshot with baselines/<name>.png (write it with UPDATE_BASELINES=1); AssertionError on a miss."""
    baseline = BASELINES / f"{name}.png"
    if os.environ.get("UPDATE_BASELINES") == "1":
        BASELINES.mkdir(parents=True, exist_ok=True)
        baseline.write_bytes(png)
        return Shot(name, 0.0, "baseline written")
    actual_path = out_dir / f"{name}.actual.png"
    if not baseline.is_file():
        actual_path.write_bytes(png)
        raise AssertionError(f"no baseline {baseline.relative_to(BASELINES.parent)}; look at {actual_path} and run "
                             "with UPDATE_BASELINES=1 to accept it")
    want = np.asarray(Image.open(baseline).convert("RGB"), dtype=np.int16)
    got = np.asarray(Image.open(_bytes_io(png)).convert("RGB"), dtype=np.int16)
    if want.shape != got.shape:
        actual_path.write_bytes(png)
        raise AssertionError(f"{name}: the page is {got.shape[1]}x{got.shape[0]}, its baseline "
                             f"{want.shape[1]}x{want.shape[0]}; see {actual_path}")
    moved = np.abs(want - got).max(axis=2) > CHANNEL_SLACK
    share = float(moved.mean())
    if share > MAX_CHANGED:
        actual_path.write_bytes(png)
        diff = np.zeros_like(want, dtype=np.uint8)
        diff[moved] = (255, 0, 160)
        Image.fromarray(diff).save(out_dir / f"{name}.diff.png")
        raise AssertionError(f"{name}: {share:.2%} of the pixels changed (allowed {MAX_CHANGED:.2%}); see "
                             f"{actual_path} and {name}.diff.png")
    return Shot(name, share, "matches")


def _bytes_io(data: bytes) -> Any:
    import io

    return io.BytesIO(data)


def steady_status(route: Route) -> None:
    """Serve /api/system/status with the machine-dependent values (ports, paths, sizes, times) fixed."""
    response = route.fetch()
    body = response.json()
    body["version"], body["python"], body["schema_version"] = "0.1.0", "3.11.7", 7
    llm = body.get("backends", {}).get("llm", {})
    if llm.get("url"):
        llm["url"] = "http://127.0.0.1:5001"
        llm["detail"] = "http://127.0.0.1:5001/v1/models answered HTTP 200"
    body["disk"] = {"path": "/home/ari/neuralrp/data", "free_bytes": 81 * 2**30, "total_bytes": 250 * 2**30}
    db = body.get("database", {})
    db.update(path="/home/ari/neuralrp/data/neuralrp.db", size_bytes=1_245_184, wal_bytes=0, sqlite_version="3.50.4",
              vec_version="v0.1.9", counts={"characters": 2, "worlds": 2, "chats": 2, "messages": 4, "images": 0})
    for job in body.get("jobs", {}).values():
        job.update(last_finished_at=None, last_status="scheduled", last_detail=None,
                   next_run_at="2025-06-02T03:00:00+00:00" if job.get("enabled") else None)
    backups = body.get("backups", {})
    backups.update(dir="/home/ari/neuralrp/data/backups", next="2025-06-02T03:00:00+00:00")
    route.fulfill(response=response, body=json.dumps(body), headers={**response.headers,
                                                                    "content-type": "application/json"})


def steady_backups(route: Route) -> None:
    """Serve /api/backups with a fixed folder path."""
    response = route.fetch()
    body = response.json()
    body["dir"] = "/home/ari/neuralrp/data/backups"
    route.fulfill(response=response, body=json.dumps(body), headers={**response.headers,
                                                                    "content-type": "application/json"})
