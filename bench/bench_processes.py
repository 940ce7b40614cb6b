"""Benchmark: the processes table against a plain Python /proc scan, at 1,000+ processes.

Not a test: prints figures and ratios. Run as root or a user allowed ~1,100 processes:

    .venv/bin/python bench/bench_processes.py [--extra 1000] [--reps 7]

(a) a plain loop reading the files `SELECT * FROM processes` reads, with open().read()
    and os.readlink; (b) `SELECT * FROM processes`; (c) `SELECT pid, name FROM processes`;
(d) `SELECT * FROM processes WHERE pid = N`. Targets: b/a <= 1.3, c/b <= 0.3, d < 2 ms.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import time

import streamq

_FILES = ("stat", "status", "cmdline", "io", "cgroup")
_LINKS = ("exe", "cwd", "root")


def raise_limits(extra: int) -> None:
    for limit in (resource.RLIMIT_NPROC, resource.RLIMIT_NOFILE):
        soft, hard = resource.getrlimit(limit)
        want = max(soft, extra * 2 + 1024)
        if hard != resource.RLIM_INFINITY:
            want = min(want, hard)
        try:
            resource.setrlimit(limit, (want, hard))
        except (ValueError, OSError):
            pass


def spawn(n: int) -> list[subprocess.Popen]:
    children = []
    for _ in range(n):
        children.append(
            subprocess.Popen(
                ["sleep", "600"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
    return children


def plain_scan() -> int:
    rows = 0
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        base = f"/proc/{name}/"
        for f in _FILES:
            try:
                with open(base + f, "rb") as fh:
                    fh.read()
            except OSError:
                pass
        for link in _LINKS:
            try:
                os.readlink(base + link)
            except OSError:
                pass
        rows += 1
    return rows


def measure(figures: dict, reps: int) -> dict[str, tuple[float, float]]:
    """Median wall and CPU seconds of each figure; repetitions interleave the figures so
    that background load on a shared machine hits them all alike."""
    wall: dict[str, list[float]] = {k: [] for k in figures}
    cpu: dict[str, list[float]] = {k: [] for k in figures}
    for _ in range(reps):
        for key, (fn, inner) in figures.items():
            for _ in range(inner):
                w0, c0 = time.perf_counter(), time.process_time()
                fn()
                wall[key].append(time.perf_counter() - w0)
                cpu[key].append(time.process_time() - c0)
    return {k: (statistics.median(wall[k]), statistics.median(cpu[k])) for k in figures}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--extra", type=int, default=1000, help="extra `sleep` processes to start")
    parser.add_argument("--reps", type=int, default=7, help="repetitions per figure (median)")
    args = parser.parse_args()

    raise_limits(args.extra)
    children = spawn(args.extra)
    try:
        conn = streamq.connect(tables=["processes"])

        def query(sql: str):
            return lambda: len(list(conn.execute(sql)[1]))

        pid = children[len(children) // 2].pid
        one = query(f"SELECT * FROM processes WHERE pid = {pid}")
        assert one() == 1
        figures = {
            "a": (plain_scan, 1),
            "b": (query("SELECT * FROM processes"), 1),
            "c": (query("SELECT pid, name FROM processes"), 1),
            "d": (one, 20),
        }
        for fn, _ in figures.values():
            fn()  # warm caches (imports, dentries) before timing
        n_plain, n_all = plain_scan(), query("SELECT * FROM processes")()
        result = measure(figures, args.reps)
        conn.close()
    finally:
        for child in children:
            child.kill()
        for child in children:
            child.wait()

    (a, a_cpu), (b, b_cpu), (c, c_cpu), (d, d_cpu) = (result[k] for k in "abcd")
    print(f"processes on the host: {n_plain} (plain scan), {n_all} (SELECT *); median of {args.reps}")
    print("                                       wall ms    cpu ms")
    print(f"(a) plain Python /proc scan        {a * 1e3:9.1f} {a_cpu * 1e3:9.1f}")
    print(f"(b) SELECT * FROM processes        {b * 1e3:9.1f} {b_cpu * 1e3:9.1f}")
    print(f"(c) SELECT pid, name               {c * 1e3:9.1f} {c_cpu * 1e3:9.1f}")
    print(f"(d) SELECT * ... WHERE pid = N     {d * 1e3:9.3f} {d_cpu * 1e3:9.3f}   (target < 2 ms)")
    print(f"b/a = {b / a:.2f} (cpu {b_cpu / a_cpu:.2f})   target <= 1.3")
    print(f"c/b = {c / b:.2f} (cpu {c_cpu / b_cpu:.2f})   target <= 0.3")


if __name__ == "__main__":
    main()
