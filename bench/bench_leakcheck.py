"""Benchmark: every table that needs no constraint, run many times in one process.

Not a test: prints per-table figures. For each table, first a timing pass without
tracing (median and p95 wall time, rows per run), then a leak check pass under
tracemalloc (growth per run of Python allocations and of RSS, least-squares
slopes after the warm-up; see streamq/leakcheck.py for the bounds).

    .venv/bin/python bench/bench_leakcheck.py [--runs 200] [--budget 6] [TABLE ...]

A table gets --runs runs, or fewer when that would take over --budget seconds
(never fewer than 20), so the slow tables do not take the whole run.
"""

from __future__ import annotations

import argparse
import time

import streamq
from streamq.cli import leakcheck
from streamq.sql.connection import load_tables

MIN_RUNS = 20


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200, help="runs per table (default 200)")
    parser.add_argument("--budget", type=float, default=6.0, help="seconds per table and pass, roughly (default 6)")
    parser.add_argument("tables", nargs="*", help="only these tables")
    args = parser.parse_args()

    registry = load_tables()
    names = sorted(args.tables or (n for n, spec in registry.items() if not spec.required))
    conn = streamq.connect()
    print(
        f"{'table':<24} {'runs':>5} {'median ms':>10} {'p95 ms':>9} {'rows':>7} {'py B/run':>9} {'rss B/run':>10}  verdict"
    )
    leaking, started = [], time.perf_counter()
    for name in names:
        sql = f'SELECT * FROM "{name}"'
        conn.query(sql)  # the first run pays for imports
        t0 = time.perf_counter()
        conn.query(sql)  # the second sizes the run count
        one = time.perf_counter() - t0
        runs = max(MIN_RUNS, min(args.runs, int(args.budget / max(one, 1e-4))))
        timing = leakcheck.repeat_query(conn, sql, runs)
        # tracemalloc slows a run 1.5-3x: fewer runs for the leak pass, same budget.
        check = leakcheck.repeat_query(conn, sql, max(MIN_RUNS, runs // 2), leak_check=True)
        g = check.growth
        rows = min(timing.rows) if min(timing.rows) == max(timing.rows) else f"~{sorted(timing.rows)[runs // 2]}"
        verdict = "LEAK" if g.leaking else "ok"
        if g.leaking:
            leaking.append(name)
        print(
            f"{name:<24} {runs:>5} {timing.median_ms:>10.2f} {timing.p95_ms:>9.2f} {rows!s:>7} "
            f"{g.traced_per_run:>9.0f} {g.rss_per_run:>10.0f}  {verdict}",
            flush=True,
        )
    print(
        f"\n{len(names)} tables in {time.perf_counter() - started:.0f} s; over the bounds: {', '.join(leaking) or 'none'}"
    )
    return 1 if leaking else 0


if __name__ == "__main__":
    raise SystemExit(main())
