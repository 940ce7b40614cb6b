"""Benchmark: rows/s through the MQTT sink, measured at a subscriber, against raw publishing.

Not a test: prints figures and ratios. Needs `mosquitto` and `mosquitto_sub` on PATH:

    .venv/bin/python bench/bench_mqtt_sink.py [--rows 50000] [--batch 100] [--window 500]

A private mosquitto on a free port; `mosquitto_sub -q 1` (C, its own process) counts
the messages. Every figure is N rows from the first publish until the subscriber
received the last one, one osquery-format result line per message, QoS 1:
(a) raw aiomqtt: `await client.publish()` for every line, `--window` at a time;
(b) raw paho under aiomqtt (the sink's publish path without the outbox);
(c) the daemon path: N rows in the StateStore outbox (batches of `--batch` lines, as
    a query commits them), drained by Delivery through MqttSink;
(d) as (c) with one row per outbox batch (event queries that commit one row at a time);
(c1) as (c) with `lines_per_message = 1`: one line a message even under load;
(e) as (c) with `lines_per_message = --pack` (newline-separated lines in one message).
Target: (c) >= 20,000 rows/s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import aiomqtt
import orjson

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from streamq.daemon.state import StateStore
from streamq.sinks.delivery import Delivery
from streamq.sinks.mqtt import MqttSink
from streamq.sql.thread import SqlThread

HOST = "benchhost"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_broker(tmp: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    conf = os.path.join(tmp, "mosquitto.conf")
    with open(conf, "w") as f:
        # no per-client queue limit: a subscriber that falls behind must not lose messages
        f.write(f"listener {port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\n")
    broker = subprocess.Popen(["mosquitto", "-c", conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return broker, port
        time.sleep(0.02)
    broker.kill()
    raise SystemExit("mosquitto did not start")


def lines(n: int) -> list[bytes]:
    return [
        orjson.dumps(
            {
                "name": "pack_bench_processes",
                "hostIdentifier": HOST,
                "calendarTime": "Mon Jan  1 00:00:00 2024 UTC",
                "unixTime": 1704067200 + i // 1000,
                "epoch": 0,
                "counter": 1 + i // 1000,
                "numerics": True,
                "columns": {"pid": 1000 + i, "name": "bash", "path": "/usr/bin/bash", "uid": 0, "state": "S"},
                "action": "added",
            }
        )
        for i in range(n)
    ]


class Subscriber:
    """mosquitto_sub counting N messages; ready once it received a probe."""

    def __init__(self, port: int, topic: str, n: int) -> None:
        self.port, self.topic, self.n = port, topic, n
        self.proc = subprocess.Popen(
            ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(port), "-q", "1", "-t", topic],
            stdout=subprocess.PIPE,
        )

    async def ready(self, publish_topic: str) -> None:
        async with aiomqtt.Client("127.0.0.1", self.port) as client:
            reader = asyncio.create_task(asyncio.to_thread(self.proc.stdout.readline))
            while not reader.done():
                await client.publish(publish_topic, b"probe", qos=1)
                await asyncio.wait({reader}, timeout=0.1)

    async def done(self, timeout: float = 120) -> None:
        def drain() -> None:
            count = 0  # counted in chunks: a Python loop per line would compete with the publisher
            while count < self.n:
                data = self.proc.stdout.read1(1 << 16)
                if not data:
                    raise SystemExit(f"mosquitto_sub ended after {count} of {self.n} messages")
                count += data.count(b"\n") - data.count(b"probe\n")
            self.proc.kill()
            self.proc.wait()

        await asyncio.wait_for(asyncio.to_thread(drain), timeout)


async def raw_aiomqtt(port: int, payloads: list[bytes], window: int) -> float:
    sub = Subscriber(port, "bench/raw1/#", len(payloads))
    await sub.ready("bench/raw1/x")
    async with aiomqtt.Client("127.0.0.1", port, max_inflight_messages=0) as client:
        client.pending_calls_threshold = 1 << 30
        start = time.perf_counter()
        for i in range(0, len(payloads), window):
            await asyncio.gather(*(client.publish("bench/raw1/x", p, qos=1) for p in payloads[i : i + window]))
        await sub.done()
        return len(payloads) / (time.perf_counter() - start)


async def raw_paho(port: int, payloads: list[bytes], window: int) -> float:
    sub = Subscriber(port, "bench/raw2/#", len(payloads))
    await sub.ready("bench/raw2/x")
    sink = MqttSink("raw", {"url": f"mqtt://127.0.0.1:{port}", "batch_max": window}, host="raw")
    await sink.start()
    conn = await sink._connection()
    start = time.perf_counter()
    await conn.publish_lines("bench/raw2/x", payloads, 1, window)
    await sub.done()
    rate = len(payloads) / (time.perf_counter() - start)
    await sink.close()
    return rate


async def through_outbox(
    port: int, tmp: str, payloads: list[bytes], batch: int, window: int, tag: str, pack: int = 0
) -> float:
    store_path = os.path.join(tmp, f"state-{tag}.db")
    store = StateStore(store_path)
    sink_name = f"mq{tag}"
    sql = SqlThread()
    options = {"url": f"mqtt://127.0.0.1:{port}", "batch_max": window, "lines_per_message": pack}
    sink = MqttSink(sink_name, options, host=HOST)
    await sink.start()
    # fill the outbox as the scheduler does: one transaction per query run
    fill = time.perf_counter()

    def fill_outbox() -> None:
        state = store.load(f"q{tag}", "select 1", 0)
        for i in range(0, len(payloads), batch):
            part = payloads[i : i + batch]
            store.commit(f"q{tag}", state, [(sink_name, len(part), part)])

    await sql(fill_outbox)
    fill = time.perf_counter() - fill
    sub = Subscriber(port, f"streamq/{HOST}/q{tag}", len(payloads))
    await sub.ready(f"streamq/{HOST}/q{tag}")
    delivery = Delivery(sink, store, sql)
    start = time.perf_counter()
    task = asyncio.create_task(delivery.run())
    await sub.done()
    rate = len(payloads) / (time.perf_counter() - start)
    await delivery.drain(10)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert sink.stats.sent == len(payloads) and not sink.stats.failed, sink.stats
    await sink.close()
    await sql(store.close)
    sql.close()
    print(f"    (outbox filled in {fill:.2f} s, {len(payloads) / fill:,.0f} rows/s)")
    return rate


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--window", type=int, default=500)
    parser.add_argument("--pack", type=int, default=50, help="lines per message for (e)")
    parser.add_argument("--single-rows", type=int, default=10_000, help="rows for (d), one per outbox batch")
    args = parser.parse_args()
    if not shutil.which("mosquitto") or not shutil.which("mosquitto_sub"):
        raise SystemExit("needs mosquitto and mosquitto_sub")
    payloads = lines(args.rows)
    size = sum(map(len, payloads)) / len(payloads)
    print(f"{args.rows} rows of {size:.0f} bytes, QoS 1, window {args.window}, outbox batches of {args.batch}")
    with tempfile.TemporaryDirectory() as tmp:
        broker, port = start_broker(tmp)
        try:
            a = await raw_aiomqtt(port, payloads, args.window)
            print(f"(a) raw aiomqtt publish():      {a:>9,.0f} rows/s")
            b = await raw_paho(port, payloads, args.window)
            print(f"(b) raw paho (sink fast path):  {b:>9,.0f} rows/s")
            c = await through_outbox(port, tmp, payloads, args.batch, args.window, "c")
            print(f"(c) outbox + Delivery + sink:   {c:>9,.0f} rows/s   c/a = {c / a:.2f}, c/b = {c / b:.2f}")
            print("    (default settings: one line a message, batched when a backlog exceeds the window)")
            c1 = await through_outbox(port, tmp, payloads, args.batch, args.window, "c1", pack=1)
            print(f"(c1) as (c), never batched:     {c1:>9,.0f} rows/s   (lines_per_message = 1)")
            d = await through_outbox(port, tmp, payloads[: args.single_rows], 1, args.window, "d")
            print(f"(d) as (c), 1 row per batch:    {d:>9,.0f} rows/s")
            e = await through_outbox(port, tmp, payloads, args.batch, args.window, "e", pack=args.pack)
            print(f"(e) as (c), {args.pack} lines per message: {e:>7,.0f} rows/s")
            print(f"target (c) >= 20,000 rows/s: {'met' if c >= 20_000 else 'NOT met'}")
        finally:
            broker.kill()
            broker.wait()


if __name__ == "__main__":
    asyncio.run(main())
