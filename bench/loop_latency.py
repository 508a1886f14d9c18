"""Event-loop latency: how long `GET /api/system/status` takes while the server chews on heavy requests.

`neuralrp serve` runs in its own process with the fake A1111 (tests/fakes, own process) as its image server.
A probe process starts one status request every 50 ms whatever the earlier ones are doing (an open loop, so
a frozen server shows up as many slow requests, not as one), while the server takes, phase by phase and
`--rounds` times each:
several 19 MiB JSON bodies, a 10,000-entry World Info import, and six large inpaint masks (three at the
picture's 2048x2048 size, three at 8192x8192 that must be refused). The bodies go to the card generator, which
receives, checks and parses them, then answers 503 (the bench configures no LLM): the phase measures taking
19 MiB of JSON, not generating from it. Prints p50 / p95 / p99 / max per phase and the server's memory, then
one line `loop_latency p99_ms=N` (p99 over every probe sent during the load phases).

Run: .venv/bin/python bench/loop_latency.py [--bodies 3] [--entries 10000] [--masks 6] [--idle 2]
Against another checkout: PYTHONPATH=/path/to/tree .venv/bin/python bench/loop_latency.py (the server and the
fake run from the tree that `import neuralrp` finds).
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import math
import multiprocessing
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

import neuralrp
from neuralrp.llm.local_server import free_port

TREE = Path(neuralrp.__file__).resolve().parents[1]
PROBE_EVERY_S = 0.05
PROBE_TIMEOUT_S = 120.0
PICTURE_SIDE = 2048
HUGE_MASK_SIDE = 8192
FAKE_MODULE = "from tests.fakes.fake_a1111 import FakeA1111\n\napp = FakeA1111(max_side=4096).app\n"
FAKE_WORKERS = 3  # the fake decodes and renders on its event loop: more workers keep its status answers quick


def probe(url: str, stop: Any, out: Any) -> None:
    """Child process: start a status request every PROBE_EVERY_S (each on its own thread, whatever the earlier
    ones are doing) until `stop` is set; send back [(start on the monotonic clock, ms, problem or "")]."""
    samples: list[tuple[float, float, str]] = []

    def one(client: httpx.Client) -> None:
        start = time.monotonic()
        problem = ""
        try:
            resp = client.get("/api/system/status")
            problem = "" if resp.status_code == 200 else f"HTTP {resp.status_code}"
        except httpx.HTTPError as e:
            problem = type(e).__name__
        samples.append((start, (time.monotonic() - start) * 1000, problem))

    limits = httpx.Limits(max_connections=400, max_keepalive_connections=50)
    with httpx.Client(base_url=url, trust_env=False, timeout=PROBE_TIMEOUT_S, limits=limits) as client, \
            ThreadPoolExecutor(max_workers=300) as pool:
        due = time.monotonic()
        while not stop.is_set():
            pool.submit(one, client)
            due += PROBE_EVERY_S
            stop.wait(max(0.0, due - time.monotonic()))
    out.send(samples)


def wait_up(url: str, path: str, proc: subprocess.Popen[bytes]) -> None:
    """Poll until the server answers `path` (or its process died)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{url} exited with code {proc.returncode} before answering")
        try:
            httpx.get(url + path, trust_env=False, timeout=2)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not start")


def start_processes(data_dir: Path) -> tuple[list[subprocess.Popen[bytes]], str, int]:
    """The fake A1111 and `neuralrp serve` pointed at it; returns the processes, NeuralRP's URL and its pid."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEURALRP_")}
    sd_port, port = free_port(), free_port()
    (data_dir.parent / "bench_fake_sd.py").write_text(FAKE_MODULE)
    fake = subprocess.Popen([sys.executable, "-m", "uvicorn", "bench_fake_sd:app", "--app-dir", str(data_dir.parent),
                             "--port", str(sd_port), "--workers", str(FAKE_WORKERS), "--log-level", "error"],
                            cwd=TREE, env={**env, "PYTHONPATH": os.pathsep.join(filter(None, [
                                env.get("PYTHONPATH"), str(TREE)]))}, stdout=subprocess.DEVNULL)
    wait_up(f"http://127.0.0.1:{sd_port}", "/sdapi/v1/sd-models", fake)
    env.update(NEURALRP_IMAGES_BASE_URL=f"http://127.0.0.1:{sd_port}", NEURALRP_LOGGING_LEVEL="WARNING")
    server = subprocess.Popen([sys.executable, "-m", "neuralrp", "serve", "--port", str(port), "--data-dir",
                               str(data_dir)], cwd=TREE, env=env, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    wait_up(url, "/api/system/health", server)
    return [server, fake], url, server.pid


# --- payloads -------------------------------------------------------------------------------------


def big_body(index: int, mib: float) -> bytes:
    """A card-generator request of `mib` MiB: prose with quotes and newlines plus 2,000 example lines."""
    line = f'Draft {index}: the keeper said "mind the stairs" and walked on.\nThe tower hummed. '
    examples = [f"Example {i}: hello again, traveller." for i in range(2000)]
    want = int(mib * 2**20)
    escaped = len(json.dumps(line)) - 2  # the quotes and the newline take two bytes each once escaped
    description = line * ((want - len(json.dumps({"name": "", "description": "", "examples": examples}))) // escaped)
    request = {"name": f"Bench {index}", "description": description, "examples": examples}
    request["description"] = description + "." * (want - len(json.dumps(request)))
    return json.dumps(request).encode()


def world_file(entries: int) -> bytes:
    """SillyTavern World Info JSON with `entries` entries."""
    book = {str(i): {"uid": i, "key": [f"place{i}", f"Landmark {i}"], "keysecondary": [], "comment": f"entry {i}",
                     "content": f"Lore about place {i}. " * 8, "constant": False, "selective": True, "order": 100,
                     "position": 0, "disable": False} for i in range(entries)}
    return json.dumps({"entries": book}).encode()


def mask_body(side: int, noise_side: int) -> bytes:
    """An inpaint request whose mask is a side x side PNG with a noise_side square of noise (so it is big)."""
    rng = random.Random(side)
    mask = Image.new("L", (side, side), 255)
    mask.paste(Image.frombytes("L", (noise_side, noise_side), rng.randbytes(noise_side * noise_side)), (0, 0))
    out = io.BytesIO()
    mask.save(out, "PNG", compress_level=1)
    url = "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()
    return json.dumps({"mask": url, "prompt": "bench repaint", "steps": 1}).encode()


# --- phases ---------------------------------------------------------------------------------------


@dataclass
class Load:
    """One phase: a name and the requests sent at once."""

    name: str
    requests: list[Callable[[httpx.Client], httpx.Response]]


def run_phase(url: str, load: Load, rounds: int, pid: int) -> tuple[float, float, str]:
    """Send the phase's requests concurrently, `rounds` times; its time window and a line on what came back."""
    start = time.monotonic()
    codes: list[int] = []
    with httpx.Client(base_url=url, trust_env=False, timeout=600) as client, \
            ThreadPoolExecutor(max_workers=len(load.requests)) as pool:
        for _ in range(rounds):
            codes += sorted(r.status_code for r in pool.map(lambda send: send(client), load.requests))
    end = time.monotonic()
    time.sleep(0.5)  # a gap between phases
    return start, end, f"{load.name}: {end - start:.1f} s, answers {codes}, server {memory(pid)}"


def memory(pid: int) -> str:
    """The server process's resident and peak memory (Linux /proc)."""
    try:
        fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    except OSError:
        return "memory unknown"
    return f"RSS {int(fields['VmRSS'].split()[0]) // 1024} MiB, peak {int(fields['VmHWM'].split()[0]) // 1024} MiB"


def loads(url: str, args: argparse.Namespace) -> list[Load]:
    """The three load phases, payloads built before any is sent."""
    with httpx.Client(base_url=url, trust_env=False, timeout=600) as client:
        made = client.post("/api/images/generate", json={"prompt": "bench picture", "width": PICTURE_SIDE,
                                                         "height": PICTURE_SIDE, "steps": 1})
    made.raise_for_status()
    picture = made.json()
    assert (picture["width"], picture["height"]) == (PICTURE_SIDE, PICTURE_SIDE), picture
    json_headers = {"content-type": "application/json"}
    bodies = [big_body(i, args.body_mib) for i in range(args.bodies)]
    world = world_file(args.entries)
    fit, huge = mask_body(PICTURE_SIDE, 1800), mask_body(HUGE_MASK_SIDE, 3000)
    masks = [fit if i % 2 == 0 else huge for i in range(args.masks)]
    inpaint = f"/api/images/{picture['id']}/inpaint"

    def post(path: str, body: bytes) -> Callable[[httpx.Client], httpx.Response]:
        return lambda client: client.post(path, content=body, headers=json_headers)

    def upload(client: httpx.Client) -> httpx.Response:
        return client.post("/api/worlds/import", files={"file": ("bench-world.json", world)})

    return [
        Load(f"json bodies ({args.bodies} x {len(bodies[0]) / 2**20:.1f} MiB)",
             [post("/api/cardgen/character", body) for body in bodies]),
        Load(f"world import ({args.entries} entries, {len(world) / 2**20:.1f} MiB)",
             [upload]),
        Load(f"masks ({args.masks}: {len(fit) / 2**20:.1f} MiB at {PICTURE_SIDE}px, {len(huge) / 2**20:.1f} MiB "
             f"at {HUGE_MASK_SIDE}px)",
             [post(inpaint, mask) for mask in masks]),
    ]


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (nearest rank) of sorted values."""
    return values[max(0, math.ceil(q * len(values)) - 1)]


def report(name: str, values: list[float]) -> str:
    """One table row."""
    values = sorted(values)
    if not values:
        return f"  {name:<58} no samples"
    return (f"  {name:<58} n={len(values):<4} p50 {percentile(values, 0.5):7.1f}  p95 "
            f"{percentile(values, 0.95):7.1f}  p99 {percentile(values, 0.99):7.1f}  max {values[-1]:7.1f}")


def measure(url: str, pid: int, args: argparse.Namespace) -> list[float]:
    """Idle baseline, then each load phase; prints the table and returns the load-phase samples."""
    phases = loads(url, args)
    context = multiprocessing.get_context("spawn")
    stop, (receive, send) = context.Event(), context.Pipe(duplex=False)
    child = context.Process(target=probe, args=(url, stop, send))
    child.start()
    idle = (time.monotonic(), time.monotonic() + args.idle)
    time.sleep(args.idle)
    windows = [run_phase(url, load, args.rounds, pid) for load in phases]
    stop.set()
    samples: list[tuple[float, float, str]] = receive.recv()
    child.join()
    print(f"neuralrp from {TREE}")
    for _, _, line in windows:
        print(line)
    print(f"GET /api/system/status latency (ms), one request every {PROBE_EVERY_S * 1000:.0f} ms (by start time):")
    print(report("idle", [ms for t, ms, _ in samples if idle[0] <= t < idle[1]]))
    loaded: list[float] = []
    for load, (start, end, _) in zip(phases, windows, strict=True):
        during = [ms for t, ms, _ in samples if start <= t < end]
        loaded += during
        print(report(load.name, during))
    print(report("all load phases", loaded))
    problems = [f"{problem} at {t - idle[0]:.1f} s" for t, _, problem in samples if problem]
    if problems:
        print(f"  failed status requests: {len(problems)} (first: {problems[0]})")
    return loaded


def main() -> None:
    """Run the benchmark; the last line is `loop_latency p99_ms=N`."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--bodies", type=int, default=3)
    parser.add_argument("--body-mib", type=float, default=19.0)
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--masks", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=3, help="times each phase's requests are sent")
    parser.add_argument("--idle", type=float, default=2.0, help="seconds of probing before any load (the floor)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        procs, url, pid = start_processes(Path(tmp) / "data")
        try:
            loaded = measure(url, pid, args)
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait()
    print(f"loop_latency p99_ms={percentile(sorted(loaded), 0.99):.0f}")


if __name__ == "__main__":
    main()
