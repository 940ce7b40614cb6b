"""Benchmark: sustained rows/s through each new sink with its outbox, against its raw client alone.

Not a test: prints figures and ratios. Each pair runs in the same process, one after the other:

(raw)  the client library publishing the same N result lines with nothing around it:
       nats   nats-py `js.publish_async` of every line with its Nats-Msg-Id, then every ack;
       postgres  psycopg `executemany` of INSERT ... ON CONFLICT DO NOTHING, 500 rows a call;
       webhook  aiohttp POSTs of 500-line JSON arrays, one at a time;
       syslog   the standard library's logging.handlers.SysLogHandler over TCP, a line a record;
(sink) the daemon path: N rows already in the StateStore outbox (runs of --batch rows, as
       queries commit them), drained by Delivery through the sink, timed until the last
       row counts as sent (acked, committed, 2xx, written).

Servers are private: nats-server -js and an initdb cluster on free ports in tmp dirs, an aiohttp
receiver and a TCP byte counter in child processes. Targets: sink within 2x of raw; NATS >= 20k rows/s.

    .venv/bin/python bench/bench_sinks.py [--rows 40000] [--batch 100] [--only nats,postgres,webhook,syslog]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))

import orjson  # noqa: E402
from bench_sink_servers import http_receiver, tcp_counter  # noqa: E402

from streamq.daemon.state import StateStore  # noqa: E402
from streamq.sinks import sink_class  # noqa: E402
from streamq.sinks.delivery import Delivery  # noqa: E402
from streamq.sql.thread import SqlThread  # noqa: E402


def make_lines(rows: int, batch: int) -> list[list[bytes]]:
    """``rows`` result lines in runs of ``batch``, as event queries write them."""
    runs = []
    for counter in range(rows // batch):
        header = {"name": "bench", "hostIdentifier": "benchhost", "calendarTime": "Mon Jan  1 00:00:00 2024 UTC",
                  "unixTime": 1704067200, "epoch": 0, "counter": counter, "numerics": True, "decorations": {}}  # fmt: skip
        runs.append([
            orjson.dumps({**header, "columns": {"pid": 1000 + i, "path": "/usr/bin/true", "cmdline": "true --x"},
                          "action": "added", "id": f"benchhost:bench:0:{counter}:{i}"})
            for i in range(batch)
        ])  # fmt: skip
    return runs


async def through_outbox(kind: str, options: dict, runs: list[list[bytes]], tmp: str) -> float:
    sink = sink_class(kind)("b", {"type": kind, **options}, host="benchhost")
    store = StateStore(os.path.join(tmp, f"{kind}-state.db"))
    sql = SqlThread()
    try:
        state = store.load("bench", "select 1", 0)
        for lines in runs:
            store.commit("bench", state, [("b", len(lines), lines)])
        total = sum(len(lines) for lines in runs)
        await sink.start()
        delivery = Delivery(sink, store, sql)
        started = time.perf_counter()
        task = asyncio.create_task(delivery.run())
        while sink.stats.sent < total:
            await asyncio.sleep(0.005)
            if task.done():
                task.result()
        elapsed = time.perf_counter() - started
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert sink.stats.failed == 0, sink.stats
        return total / elapsed
    finally:
        await sink.close()
        await sql(store.close)
        sql.close()


# -- raw clients ---------------------------------------------------------------------------------


async def raw_nats(url: str, stream: str, lines: list[bytes]) -> float:
    import nats

    nc = await nats.connect(url)
    js = nc.jetstream(publish_async_max_pending=4000)
    await js.add_stream(name=stream, subjects=[f"{stream.lower()}.>"])
    ids = [orjson.loads(line)["id"] for line in lines]
    started = time.perf_counter()
    futures = [
        await js.publish_async(f"{stream.lower()}.x", line, headers={"Nats-Msg-Id": i}) for line, i in zip(lines, ids)
    ]
    await asyncio.gather(*futures)
    elapsed = time.perf_counter() - started
    await nc.close()
    return len(lines) / elapsed


def raw_postgres(dsn: str, lines: list[bytes]) -> float:
    import psycopg

    from streamq.sinks.postgres import CREATE

    items = [orjson.loads(line) for line in lines]
    rows = [
        (i, item["hostIdentifier"], item["name"], item["action"], item["unixTime"], item["epoch"], item["counter"],
         orjson.dumps(item["columns"]).decode(), orjson.dumps(item["decorations"]).decode())
        for item, i in zip(items, (item["id"] for item in items))
    ]  # fmt: skip
    with psycopg.connect(dsn) as conn:
        for statement in CREATE.format(table="raw", index="raw").split(";"):
            conn.execute(statement)
        conn.commit()
        insert = ("INSERT INTO raw (id, host, name, action, time, epoch, counter, columns, decorations) "
                  "VALUES (%s, %s, %s, %s, to_timestamp(%s), %s, %s, %s::jsonb, %s::jsonb) ON CONFLICT (id) DO NOTHING")  # fmt: skip
        started = time.perf_counter()
        with conn.cursor() as cur:
            for i in range(0, len(rows), 500):
                cur.executemany(insert, rows[i : i + 500])
                conn.commit()
        return len(rows) / (time.perf_counter() - started)


async def raw_webhook(url: str, lines: list[bytes]) -> float:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        started = time.perf_counter()
        for i in range(0, len(lines), 500):
            body = b"[" + b",".join(lines[i : i + 500]) + b"]"
            async with session.post(url, data=body, headers={"Content-Type": "application/json"}) as r:
                assert r.status == 200
        return len(lines) / (time.perf_counter() - started)


def raw_syslog(port: int, lines: list[bytes]) -> float:
    import logging
    import logging.handlers
    import socket

    handler = logging.handlers.SysLogHandler(("127.0.0.1", port), socktype=socket.SOCK_STREAM)
    logger = logging.Logger("raw")
    logger.addHandler(handler)
    started = time.perf_counter()
    for line in lines:
        logger.info(line.decode())
    elapsed = time.perf_counter() - started
    handler.close()
    return len(lines) / elapsed


# -- the pairs -----------------------------------------------------------------------------------


async def bench_nats(runs, flat, tmp):
    from nats_server import start_nats

    server = start_nats()
    try:
        raw = await raw_nats(server.url, "RAW", flat)
        sink = await through_outbox(
            "nats", {"url": server.url, "stream": "SINK", "subject": "sink.{host}.{query}"}, runs, tmp
        )
        return raw, sink
    finally:
        server.stop()


async def bench_postgres(runs, flat, tmp):
    from pg_cluster import make_cluster

    cluster = make_cluster()
    try:
        raw = await asyncio.to_thread(raw_postgres, cluster.dsn, flat)
        sink = await through_outbox("postgres", {"dsn": cluster.dsn, "table": "sink"}, runs, tmp)
        return raw, sink
    finally:
        cluster.remove()


async def bench_webhook(runs, flat, tmp):
    with http_receiver() as url:
        raw = await raw_webhook(url, flat)
        sink = await through_outbox("webhook", {"url": url, "batch_size": 500}, runs, tmp)
        return raw, sink


async def bench_syslog(runs, flat, tmp):
    with tcp_counter() as port:
        raw = await asyncio.to_thread(raw_syslog, port, flat)
        sink = await through_outbox("syslog", {"url": f"tcp://127.0.0.1:{port}"}, runs, tmp)
        return raw, sink


BENCHES = {"nats": bench_nats, "postgres": bench_postgres, "webhook": bench_webhook, "syslog": bench_syslog}


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=40_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--only", default=",".join(BENCHES))
    args = parser.parse_args()
    runs = make_lines(args.rows, args.batch)
    flat = [line for lines in runs for line in lines]
    print(f"{len(flat)} result lines of ~{len(flat[0])} bytes, outbox runs of {args.batch} rows")
    print(f"{'sink':10} {'raw client':>14} {'sink+outbox':>14} {'ratio':>7}")
    for name in args.only.split(","):
        with tempfile.TemporaryDirectory(prefix=f"streamq-bench-{name}-") as tmp:
            raw, sink = await BENCHES[name](runs, flat, tmp)
        print(f"{name:10} {raw:12,.0f}/s {sink:12,.0f}/s {raw / sink:6.2f}x", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
