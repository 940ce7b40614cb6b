"""Latency of file_events: from a write() to its row in the ring.

Runs the inotify source on a tmp dir, writes one byte to each of N files and
times each write until the source's UPDATED row for that file is appended
(a ring subscriber notes the arrival). Two patterns: one write at a time
(the latency of a lone event) and a burst of N writes (latency under load).
A burst is 20 writes back to back, waited for together; a flood is all N at
once, which measures throughput more than latency. The baseline is watchdog's stock inotify observer with a plain handler, in the
same run on the same files: what the library costs before our stat, mapping
and ring append. Target: p99 under 20 ms.

    .venv/bin/python bench/bench_file_events.py [N]
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import threading
import time

from watchdog.events import FileSystemEventHandler
from watchdog.observers.inotify import InotifyObserver

from streamq.ring import Rings
from streamq.sources.file import FileSource

BURST = 20


class Arrivals:
    """path -> when its event arrived, with a wait per path."""

    def __init__(self) -> None:
        self.seen: dict[str, float] = {}
        self.cond = threading.Condition()

    def note(self, path: str) -> None:
        now = time.perf_counter()
        with self.cond:
            self.seen.setdefault(path, now)
            self.cond.notify_all()

    def wait(self, path: str, timeout: float = 2.0) -> float | None:
        with self.cond:
            self.cond.wait_for(lambda: path in self.seen, timeout)
            return self.seen.get(path)

    def clear(self) -> None:
        with self.cond:
            self.seen.clear()


def measure(paths: list[str], arrivals: Arrivals) -> dict[str, list[float]]:
    """Latencies (ms) for one-at-a-time writes and for a burst; lost events are reported apart."""
    fds = [os.open(p, os.O_WRONLY | os.O_APPEND) for p in paths]
    out: dict[str, list[float]] = {"single": [], "burst": [], "flood": [], "lost": []}
    try:
        arrivals.clear()
        for p, fd in zip(paths, fds, strict=True):
            t0 = time.perf_counter()
            os.write(fd, b"x")
            t1 = arrivals.wait(p)
            out["single"].append((t1 - t0) * 1000 if t1 else float("nan"))
            if t1 is None:
                out["lost"].append(1)
        for size, kind, data in ((BURST, "burst", b"y"), (len(paths), "flood", b"z")):
            for lo in range(0, len(paths), size):
                arrivals.clear()
                starts = []
                for fd in fds[lo : lo + size]:
                    starts.append(time.perf_counter())
                    os.write(fd, data)
                for p, t0 in zip(paths[lo : lo + size], starts, strict=True):
                    t1 = arrivals.wait(p)
                    out[kind].append((t1 - t0) * 1000 if t1 else float("nan"))
                    if t1 is None:
                        out["lost"].append(1)
                if kind == "flood":
                    out["flood_rate"] = [size / (max(arrivals.seen.values()) - starts[0])]
    finally:
        for fd in fds:
            os.close(fd)
    return out


def pct(values: list[float], q: float) -> float:
    values = sorted(v for v in values if v == v)
    if not values:
        return float("nan")
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


def report(label: str, figures: dict[str, list[float]]) -> None:
    for kind in ("single", "burst", "flood"):
        v = figures[kind]
        print(
            f"{label:<22} {kind:<6} n={len(v):<5} p50={pct(v, 0.5):7.3f} ms  p99={pct(v, 0.99):7.3f} ms"
            f"  max={max(v):7.3f} ms  mean={statistics.fmean(v):7.3f} ms"
        )
    print(f"{label:<22} flood: {figures['flood_rate'][0]:,.0f} events/s drained")
    if figures["lost"]:
        print(f"{label:<22} LOST {len(figures['lost'])} events (no row within 2 s)")


async def bench_source(top: str, paths: list[str]) -> dict[str, list[float]]:
    rings = Rings()
    source = FileSource("file_events", {"paths": [f"{top}/%"]}, rings)
    ring = source.ring
    arrivals = Arrivals()
    last = [0]
    lock = threading.Lock()

    def on_append() -> None:
        with lock:
            for eid, _, row in ring.since(last[0]):
                last[0] = eid
                if row["action"] == "UPDATED":
                    arrivals.note(row["target_path"])

    ring.subscribe(on_append)
    task = asyncio.create_task(source.run())
    await asyncio.to_thread(source.ready.wait, 5)
    try:
        return await asyncio.to_thread(measure, paths, arrivals)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        print(f"source status: {source.status}")


def bench_watchdog(top: str, paths: list[str]) -> dict[str, list[float]]:
    arrivals = Arrivals()

    class Handler(FileSystemEventHandler):
        def on_modified(self, event):  # type: ignore[override]
            if not event.is_directory:
                arrivals.note(event.src_path)

    observer = InotifyObserver()
    observer.schedule(Handler(), top, recursive=False)
    observer.start()
    try:
        time.sleep(0.2)
        return measure(paths, arrivals)
    finally:
        observer.stop()
        observer.join()


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    with tempfile.TemporaryDirectory(prefix="sqbench") as top:
        paths = [os.path.join(top, f"f{i:05d}") for i in range(n)]
        for p in paths:
            open(p, "w").close()
        print(f"{n} files in {top}; {os.cpu_count()} CPUs; latency = write() to row/handler")
        baseline = bench_watchdog(top, paths)
        ours = asyncio.run(bench_source(top, paths))
        report("watchdog observer", baseline)
        report("streamq file_events", ours)
        for kind in ("single", "burst"):
            for q in (0.5, 0.99):
                a, b = pct(ours[kind], q), pct(baseline[kind], q)
                print(f"ratio streamq/watchdog {kind} p{int(q * 100)}: {a / b:5.2f}x")
        for kind in ("single", "burst"):
            verdict = "meets" if pct(ours[kind], 0.99) < 20 else "MISSES"
            print(f"target p99 < 20 ms ({kind}): {verdict}")


if __name__ == "__main__":
    main()
