"""Events/s of JSON lines through the jsonl source into an event table, then read back by SQL.

Stages, all on one core (one process; the follow SQL thread shares the GIL):
  baseline   orjson.loads of every line, nothing else (the floor any decoder pays);
  source     the jsonl source reading the file into its ring (split, decode, type, append);
  read       SELECT over the ring through the vtable (the cursor read of a query);
  end to end Follower: the source and `query --follow` running together until every row
             has been emitted by the query;
  tail       `streamq tail FILE --sql ... --count N` as a subprocess, output to /dev/null.
Target: end to end >= 100k events/s.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time

import orjson

from streamq.cli.follow import Follower
from streamq.config.sections import Config, RingOptions
from streamq.ring import Rings
from streamq.sources.jsonl import JsonlSource
from streamq.sources.records import declare_record_table
from streamq.sql.connection import connect

N = 300_000
COLUMNS = {"user": "TEXT", "status": "INTEGER", "ms": "DOUBLE"}
SQL = "SELECT user, status FROM bench_events WHERE status >= 200"


def make_lines(n: int) -> bytes:
    users = ["ann", "bob", "cyd", "dee"]
    return b"".join(
        orjson.dumps(
            {"user": users[i % 4], "status": 200 + (i % 4) * 100, "ms": i / 7, "path": f"/api/v1/items/{i}", "ok": True}
        )
        + b"\n"
        for i in range(n)
    )


def options(path: str) -> dict:
    return {"path": path, "columns": COLUMNS, "from_start": True, "checkpoint": None, "max_line_bytes": 1 << 20}


async def run_source(path: str, rings: Rings) -> float:
    source = JsonlSource("bench_events", options(path), rings)
    ring = rings.ring("bench_events")
    start = time.perf_counter()
    task = asyncio.create_task(source.run())
    while ring.seen < N:
        await asyncio.sleep(0.001)
    elapsed = time.perf_counter() - start
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return elapsed


async def run_follow(path: str) -> float:
    opts = dict(options(path), table="bench_events", poll_interval=0.01)
    config = Config(sources={"jsonl.bench": JsonlSource.Options(**opts)}, rings=RingOptions(capacity=N))
    follower = Follower(config)
    seen = [0]

    def emit(names, row):
        seen[0] += 1

    await follower.open()
    try:
        start = time.perf_counter()
        await follower.follow(SQL, emit, count=N, timeout=120)
        elapsed = time.perf_counter() - start
    finally:
        await follower.close()
    assert seen[0] == N, seen[0]
    return elapsed


def rate(n: int, seconds: float) -> str:
    return f"{n / seconds / 1000:8.1f} k events/s  ({seconds * 1000:7.1f} ms for {n} events)"


def main() -> None:
    data = make_lines(N)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "events.jsonl")
        with open(path, "wb") as f:
            f.write(data)
        lines = data.splitlines()

        start = time.perf_counter()
        for line in lines:
            orjson.loads(line)
        t_base = time.perf_counter() - start

        declare_record_table("bench_events", COLUMNS, source="jsonl.bench")
        rings = Rings(capacity=N, max_age=None)
        t_source = asyncio.run(run_source(path, rings))

        conn = connect(rings=rings)
        start = time.perf_counter()
        _names, rows = conn.execute(SQL)
        got = sum(1 for _ in rows)
        t_read = time.perf_counter() - start
        assert got == N, got
        conn.close()

        t_follow = asyncio.run(run_follow(path))

        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "streamq", "tail", path, "--sql", "SELECT user, status FROM stream",
             "--count", str(N), "--timeout", "120"],
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        t_tail = time.perf_counter() - start

    print(f"{N} JSON lines, {len(data) / N:.0f} bytes each, one core")
    print(f"baseline orjson.loads only:        {rate(N, t_base)}")
    print(f"jsonl source into the ring:        {rate(N, t_source)}")
    print(f"SQL read of the ring (vtable):     {rate(N, t_read)}")
    print(f"end to end, source + --follow SQL: {rate(N, t_follow)}   (target >= 100k/s)")
    print(f"streamq tail --sql, subprocess:    {rate(N, t_tail)}   (includes start-up and JSON output)")
    print(f"ratio source / baseline:           {t_source / t_base:8.2f}x the time of orjson.loads alone")
    print(f"ratio end to end / baseline:       {t_follow / t_base:8.2f}x")


if __name__ == "__main__":
    main()
