"""Benchmark: a one-row query through the daemon's control socket, against in-process baselines.

Not a test: prints figures and ratios, all measured in this run.

    .venv/bin/python bench/bench_control.py [--n 500]

Starts `python -m streamq run` (no sources, no queries) with its control socket in
a tmp dir, then times ``n`` requests of each query (target: median round trip
< 5 ms), median and p99:

- streamq.Client on one kept connection, and with a new connection per request;
- baselines in this process: a plain streamq.connect() connection, and the
  guarded ReadOnlyConnection the daemon uses (the guard's own cost);
- `streamq query --connect` as a whole command (a few runs: process start dominates).
"""

from __future__ import annotations

import argparse
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import streamq  # noqa: E402
from streamq.sql.readonly import ReadOnlyConnection  # noqa: E402

QUERIES = {
    "SELECT 1": "SELECT 1 AS one",
    "processes pid=1": "SELECT pid, name, state FROM processes WHERE pid = 1",
}


def timed(fn, n: int) -> list[float]:
    for _ in range(min(20, n)):  # warm caches and the daemon's statement cache
        fn()
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def summary(times: list[float]) -> tuple[float, float]:
    ordered = sorted(times)
    return statistics.median(ordered) * 1e3, ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1e3


def start_daemon(root: Path) -> tuple[subprocess.Popen, Path]:
    sock = root / "control.sock"
    (root / "bench.toml").write_text(
        f'[state]\npath = "{root}/state.db"\n[control]\npath = "{sock}"\n'
        f'[sinks.out]\ntype = "file"\npath = "{root}/out.jsonl"\n'
    )
    with open(root / "stderr.txt", "w") as err:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamq", "run", "-c", str(root / "bench.toml")],
            cwd=root,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            with streamq.Client(str(sock), timeout=5) as c:
                c.query("SELECT 1")
            return proc, sock
        except streamq.StreamqError:
            if proc.poll() is not None:
                break
            time.sleep(0.05)
    proc.kill()
    sys.exit(f"the daemon did not start: {(root / 'stderr.txt').read_text()}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--cli-runs", type=int, default=10)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="sqbench"))
    proc, sock = start_daemon(root)
    try:
        local = streamq.connect()
        guarded = ReadOnlyConnection.open()
        client = streamq.Client(str(sock)).connect()
        print(f"{args.n} requests each; median and p99 in ms\n")
        print(f"{'query':<18} {'how':<34} {'median':>8} {'p99':>8} {'x local':>8}")
        for label, sql in QUERIES.items():
            rows = {
                "in-process connect() (baseline)": timed(lambda sql=sql: local.query(sql), args.n),
                "in-process ReadOnlyConnection": timed(lambda sql=sql: guarded.run(sql), args.n),
                "Client, one connection": timed(lambda sql=sql: client.query(sql), args.n),
                "Client, connection per request": timed(lambda sql=sql: _fresh(sock, sql), args.n),
            }
            base = summary(rows["in-process connect() (baseline)"])[0]
            for how, times in rows.items():
                median, p99 = summary(times)
                print(f"{label:<18} {how:<34} {median:8.3f} {p99:8.3f} {median / base:8.1f}")
        median, _ = summary(timed(lambda: client.query(QUERIES["processes pid=1"]), args.n))
        verdict = "meets" if median < 5 else "MISSES"
        print(f"\nround trip through the socket: median {median:.3f} ms, {verdict} the 5 ms target")

        def cli(*extra: str) -> None:
            subprocess.run(
                [sys.executable, "-m", "streamq", "query", *extra, QUERIES["processes pid=1"]],
                check=True,
                capture_output=True,
                cwd=ROOT,
            )

        remote = summary(timed(lambda: cli("--connect", str(sock)), args.cli_runs))[0]
        here = summary(timed(cli, args.cli_runs))[0]
        print(f"`streamq query --connect` whole command: median {remote:.1f} ms (local `streamq query`: {here:.1f} ms)")
        client.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
        shutil.rmtree(root, ignore_errors=True)


def _fresh(sock: Path, sql: str) -> None:
    with streamq.Client(str(sock)) as c:
        c.query(sql)


if __name__ == "__main__":
    main()
