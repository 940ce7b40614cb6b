"""Benchmark: `streamq tail` against jq on the same JSON-lines file, in the same run.

Not a test: prints figures and ratios, all measured here.

    .venv/bin/python bench/bench_tail.py [--lines 500000] [--reps 3]

1. filter + projection: `tail - --sql "SELECT user, path FROM stream WHERE status >= 500"`
   against `jq -c 'select(.status >= 500) | {user, path}'` (target: >= 1.5x jq's throughput);
2. a windowed count: `--time ts --window "tumble 1m"` with
   `SELECT status, count(*) AS n FROM stream GROUP BY status` (target: >= jq's filter throughput);
3. RSS: the filter over 100,000 and 1,000,000 lines (target: at most 10 MB more for the larger).

Each command reads the file on stdin; times are wall clock, best of ``--reps``; RSS is the
child's peak (wait4). Both tools' outputs of (1) must be the same bytes.

Where tail's time went before (cProfile of the old tail, 500,000 lines, 6.9 s under the
profiler): turning each record into an insert tuple, sql_value() per value (~50%); decoding
each line into a dict (orjson and checks, ~20%); executemany into a temp table (~15%); a write
and a flush per output line (~5%). Now SQLite parses each batch of lines once (JSONB) and the
SQL reads it through jsonb_each: no row becomes a Python object unless the SQL returns it,
and output goes out one write per batch. What is left is SQLite's parse (~40%), the query
(~25%), splitting and joining lines, and startup. A windowed tail also assigns each row to its
window in Python (a tight loop for tumbling windows) and parses a window's lines once more
when it closes; big blocks stay in malloc's heap (mallopt), which cut its page faults 7x.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FILTER_SQL = "SELECT user, path FROM stream WHERE status >= 500"
WINDOW_SQL = "SELECT status, count(*) AS n FROM stream GROUP BY status"
JQ_FILTER = "select(.status >= 500) | {user, path}"


def make_file(path: Path, lines: int, seed: int = 1) -> None:
    """About 120 bytes a line; event times ~2 ms apart (a minute holds ~30,000 lines)."""
    rng = random.Random(seed)
    users = [f"user{i}" for i in range(50)]
    paths = ["/", "/api/v1/items", "/login", "/static/app.js", "/api/v1/orders/123", "/health"]
    statuses = [200] * 12 + [301, 404, 500, 503]
    t = 1_700_000_000.0
    with path.open("w") as f:
        for i in range(lines):
            t += rng.random() * 0.004
            record = {
                "ts": round(t, 3),
                "user": rng.choice(users),
                "path": rng.choice(paths),
                "status": rng.choice(statuses),
                "bytes": rng.randint(0, 100_000),
                "agent": "curl/8.0",
                "req": i,
            }
            f.write(json.dumps(record) + "\n")


def run(cmd: list[str], stdin: Path) -> tuple[float, int, bytes]:
    """(wall seconds, peak RSS in KB, stdout) of ``cmd`` reading ``stdin``."""
    with stdin.open("rb") as f, tempfile.TemporaryFile() as out:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdin=f, stdout=out, stderr=subprocess.DEVNULL, cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            raise SystemExit(f"{cmd[0]} exited {proc.returncode}")
        out.seek(0)
        return wall, usage.ru_maxrss, out.read()


def best(cmd: list[str], stdin: Path, reps: int) -> tuple[float, int, bytes]:
    results = [run(cmd, stdin) for _ in range(reps)]
    return min(r[0] for r in results), max(r[1] for r in results), results[0][2]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=500_000)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    streamq = [sys.executable, "-m", "streamq", "tail", "-"]
    jq = shutil.which("jq")
    with tempfile.TemporaryDirectory(prefix="streamq-bench-tail-") as tmp:
        data = Path(tmp) / "events.jsonl"
        make_file(data, args.lines)
        size = data.stat().st_size / 1e6
        print(f"{args.lines:,} lines, {size:.0f} MB, best of {args.reps}")
        tail_s, tail_rss, tail_out = best([*streamq, "--sql", FILTER_SQL], data, args.reps)
        window_s, window_rss, _ = best(
            [*streamq, "--time", "ts", "--window", "tumble 1m", "--sql", WINDOW_SQL], data, args.reps
        )
        print(
            f"tail filter      {tail_s:6.2f} s  {args.lines / tail_s / 1e3:7.0f} k lines/s  peak RSS {tail_rss / 1024:.0f} MB"
        )
        print(
            f"tail tumble 1m   {window_s:6.2f} s  {args.lines / window_s / 1e3:7.0f} k lines/s  peak RSS {window_rss / 1024:.0f} MB"
        )
        if jq is None:
            print("jq is not installed (apt-get install -y jq): no ratios")
        else:
            jq_s, jq_rss, jq_out = best([jq, "-c", JQ_FILTER], data, args.reps)
            same = "same output" if jq_out == tail_out else "OUTPUT DIFFERS"
            print(
                f"jq filter        {jq_s:6.2f} s  {args.lines / jq_s / 1e3:7.0f} k lines/s  peak RSS {jq_rss / 1024:.0f} MB"
            )
            print(f"ratio filter: tail throughput = {jq_s / tail_s:.2f}x jq's (target >= 1.5x), {same}")
            print(f"ratio tumble: tail throughput = {jq_s / window_s:.2f}x jq's filter (target >= 1.0x)")
        small, large = Path(tmp) / "100k.jsonl", Path(tmp) / "1m.jsonl"
        make_file(small, 100_000)
        make_file(large, 1_000_000)
        rss = {}
        for name, path in (("100k", small), ("1M", large)):
            _, filter_rss, _ = run([*streamq, "--sql", FILTER_SQL], path)
            _, tumble_rss, _ = run([*streamq, "--time", "ts", "--window", "tumble 1m", "--sql", WINDOW_SQL], path)
            rss[name] = (filter_rss, tumble_rss)
            print(f"peak RSS {name:>4} lines: filter {filter_rss / 1024:.1f} MB, tumble 1m {tumble_rss / 1024:.1f} MB")
        for i, what in enumerate(("filter", "tumble 1m")):
            grew = (rss["1M"][i] - rss["100k"][i]) / 1024
            print(f"RSS growth 100k -> 1M lines, {what}: {grew:+.1f} MB (target <= 10 MB)")


if __name__ == "__main__":
    main()
