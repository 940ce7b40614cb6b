"""Rows per second from a query run to the results file: StateStore outbox commit, Delivery, FileSink.

Baseline, measured in the same run: the same lines written with plain os.write, one write per
batch, to an O_APPEND file. Target: >= 100k rows/s end to end.

    .venv/bin/python bench/bench_file_sink.py [--rows 200000] [--batch 500]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time

from streamq.daemon import results
from streamq.daemon.state import QueryState, StateStore
from streamq.sinks.delivery import Delivery
from streamq.sinks.file import FileSink
from streamq.sql.thread import SqlThread


def make_batches(rows: int, batch: int) -> list[list[bytes]]:
    out = []
    for start in range(0, rows, batch):
        header = results.Header(name="new_listening_ports", host="bench-host", counter=start // batch)
        added = [
            {"name": "python3", "port": 1024 + i % 60000, "pid": 1000 + i, "address": "0.0.0.0"}
            for i in range(start, min(rows, start + batch))
        ]
        out.append(results.event_lines(header, added, []))
    return out


def baseline(directory: str, batches: list[list[bytes]]) -> float:
    fd = os.open(os.path.join(directory, "plain.jsonl"), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    started = time.perf_counter()
    for lines in batches:
        os.write(fd, b"\n".join(lines) + b"\n")
    os.fsync(fd)
    took = time.perf_counter() - started
    os.close(fd)
    return took


async def streamq_path(directory: str, batches: list[list[bytes]], fsync: str) -> tuple[float, float]:
    sql = SqlThread()
    store = await sql(StateStore, os.path.join(directory, f"state-{fsync}.db"))
    sink = FileSink("out", {"path": os.path.join(directory, f"out-{fsync}.jsonl"), "fsync": fsync}, host="h")
    await sink.start()
    delivery = Delivery(sink, store, sql)
    task = asyncio.create_task(delivery.run())
    state = QueryState("bench")

    def commit(lines: list[bytes]) -> None:
        state.counter += 1
        store.commit("q", state, [("out", len(lines), lines)])

    started = time.perf_counter()
    for lines in batches:  # as the scheduler does: one transaction per run, then wake the sink
        await sql(commit, lines)
        delivery.wake.set()
    committed = time.perf_counter() - started
    assert await delivery.drain(120)
    total = time.perf_counter() - started
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await sink.close()
    await sql(store.close)
    sql.close()
    return committed, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=500, help="rows per query run (one outbox batch)")
    args = parser.parse_args()
    batches = make_batches(args.rows, args.batch)
    size = sum(len(line) + 1 for lines in batches for line in lines)
    print(f"{args.rows} rows in batches of {args.batch}, {size / args.rows:.0f} bytes a line")
    with tempfile.TemporaryDirectory() as directory:
        plain = baseline(directory, batches)
        print(f"baseline os.write:            {args.rows / plain:>12,.0f} rows/s  ({plain * 1000:.0f} ms)")
        for fsync in ("interval", "always"):
            committed, total = asyncio.run(streamq_path(directory, batches, fsync))
            ratio = plain / total
            print(
                f"outbox+delivery+file ({fsync:8}): {args.rows / total:>12,.0f} rows/s  ({total * 1000:.0f} ms; "
                f"commits alone {args.rows / committed:,.0f} rows/s)  = {ratio:.2f}x baseline speed"
            )
    print("target: >= 100,000 rows/s end to end")


if __name__ == "__main__":
    main()
