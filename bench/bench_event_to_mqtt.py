"""Latency from a kernel event to an MQTT subscriber, through `streamq run`.

A stream query triggered by ``on = ["process_events"]`` publishes every exec of a marker
command to a private mosquitto (QoS 1). The bench spawns the marker ``--events`` times and,
for each, measures from just before the spawn to the message arriving at its own aiomqtt
subscriber: fork/exec, the netlink proc connector, the ring, the debounce, the query run,
the outbox commit, the sink and the broker. Baseline, measured in the same run: a message the
bench publishes itself and receives back through the same broker (the broker round trip).
Target: p99 < 50 ms.

    .venv/bin/python bench/bench_event_to_mqtt.py [--events 200] [--debounce 20ms]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import aiomqtt
from mqtt_broker import start_broker

CONFIG = """
[control]
enabled = false
[host]
identifier = "bench"
[state]
path = "state.db"
[sources.process]
[sinks.broker]
type = "mqtt"
url = "{url}"
topic = "{prefix}/{{host}}/{{query}}"
qos = 1
[queries.marker_execs]
sql = "SELECT pid, cmdline FROM process_events WHERE action = 'exec' AND cmdline LIKE '%{marker}%'"
mode = "stream"
on = ["process_events"]
debounce = "{debounce}"
"""


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def summary(label: str, ms: list[float]) -> str:
    return (
        f"{label:34} n={len(ms):4}  p50 {statistics.median(ms):6.2f} ms  p99 {pct(ms, 99):6.2f} ms"
        f"  max {max(ms):6.2f} ms"
    )


async def broker_round_trip(host: str, port: int, topic: str, n: int) -> list[float]:
    out = []
    async with aiomqtt.Client(host, port) as client:
        await client.subscribe(topic, qos=1)
        for i in range(n):
            sent = time.perf_counter()
            await client.publish(topic, str(i).encode(), qos=1)
            async for _ in client.messages:
                break
            out.append((time.perf_counter() - sent) * 1000)
    return out


async def event_latency(host: str, port: int, topic: str, marker: str, n: int) -> tuple[list[float], int]:
    sent: dict[str, float] = {}
    latencies: list[float] = []
    async with aiomqtt.Client(host, port) as client:
        await client.subscribe(topic, qos=1)
        await asyncio.sleep(0.5)  # let the daemon's sources and the first (baseline) run settle

        async def receive() -> None:
            async for message in client.messages:
                now = time.perf_counter()
                item = json.loads(message.payload)
                tag = item["columns"]["cmdline"].split()[-1]
                if tag in sent and tag not in seen:
                    seen.add(tag)
                    latencies.append((now - sent[tag]) * 1000)
                if len(seen) >= n:
                    return

        seen: set[str] = set()
        receiver = asyncio.create_task(receive())
        for i in range(n):
            tag = f"{marker}-{i}"
            sent[tag] = time.perf_counter()
            # The shell lives 30 ms so the source can read its command line at exec (a process
            # gone before that has no cmdline to match); `; :` keeps sh from exec'ing sleep.
            proc = await asyncio.create_subprocess_exec("/bin/sh", "-c", "sleep 0.03; :", marker, tag)
            await proc.wait()
            await asyncio.sleep(0.01)  # events apart, so each is one run: latency, not throughput
        try:
            await asyncio.wait_for(receiver, 10)
        except TimeoutError:
            pass
    return latencies, n - len(latencies)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--debounce", default="20ms", help="the query's debounce (default: streamq's default)")
    args = parser.parse_args()
    try:
        broker = start_broker()
    except Exception as err:  # no mosquitto here: nothing to measure
        raise SystemExit(f"cannot start mosquitto: {err}") from err
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    marker = f"sqbench{uuid.uuid4().hex[:8]}"
    try:
        base = asyncio.run(broker_round_trip(broker.host, broker.port, f"{prefix}/echo", args.events))
        with tempfile.TemporaryDirectory() as cwd:
            Path(cwd, "streamq.toml").write_text(
                CONFIG.format(url=broker.url, prefix=prefix, marker=marker, debounce=args.debounce)
            )
            with open(os.path.join(cwd, "stderr.txt"), "w") as err:
                daemon = subprocess.Popen(
                    [sys.executable, "-m", "streamq", "run", "-c", "streamq.toml"],
                    cwd=cwd,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=err,
                )
            try:
                deadline = time.monotonic() + 15
                while "running" not in Path(cwd, "stderr.txt").read_text():
                    if daemon.poll() is not None or time.monotonic() > deadline:
                        raise SystemExit(f"daemon did not start: {Path(cwd, 'stderr.txt').read_text()}")
                    time.sleep(0.05)
                ms, lost = asyncio.run(
                    event_latency(broker.host, broker.port, f"{prefix}/bench/marker_execs", marker, args.events)
                )
            finally:
                daemon.send_signal(signal.SIGTERM)
                daemon.wait(10)
    finally:
        broker.stop()
    print(summary("baseline: broker round trip", base))
    if not ms:
        raise SystemExit("no event arrived at the subscriber")
    print(summary(f"exec -> MQTT (debounce {args.debounce})", ms) + f"  missing {lost}")
    p99 = pct(ms, 99)
    print(f"ratio p50 vs broker round trip: {statistics.median(ms) / statistics.median(base):.1f}x")
    print(f"target: p99 < 50 ms: {'OK' if p99 < 50 and not lost else 'OVER TARGET'}")


if __name__ == "__main__":
    main()
