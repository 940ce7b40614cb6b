"""Benchmark: fleet query round trip over MQTT v5 to 10 daemons, against a bare echo through the same broker.

Not a test: prints figures and ratios, all measured in this run.

    .venv/bin/python bench/bench_fleet.py [--daemons 10] [--n 20]

Starts a private mosquitto on a free port and ``--daemons`` daemons
(`python -m streamq run`, no sources, no queries, a [fleet] section, hosts h00...),
then times ``n`` calls of each, median and p95 (target: fleet `SELECT * FROM time`
median < 500 ms):

- streamq.daemon.fleet_client.query() (what `streamq fleet query` runs after its start-up):
  connect, subscribe, read the retained statuses, publish one signed request,
  collect every host's reply, disconnect;
- baseline: the same steps by hand against ``--daemons`` bare MQTT v5 echo
  responders (one process, one client each), replying with the request's
  payload: the broker's fan-out and fan-in with no SQL, no signature, no daemon;
- the same for one host (`--host h00`) against one echo responder;
- `streamq fleet query` as a whole command (a few runs: process start dominates).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fleet_setup import KEY, running_fleet, summary, timed  # noqa: E402

from streamq.daemon import fleet_client as fleet  # noqa: E402

CLI = (sys.executable, "-m", "streamq", "fleet", "query")
NODELAY = ((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),)  # as streamq.daemon.fleet does, so the baseline is fair


# -- the bare echo baseline ----------------------------------------------------------------------


async def echo_responders(url: str, count: int) -> None:
    """``count`` clients; each answers every message on bench/echo/all and bench/echo/<i> to its response topic."""
    import aiomqtt
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    broker, _ = fleet.parse_url(url)

    async def responder(i: int) -> None:
        async with aiomqtt.Client(
            broker.host, broker.port, protocol=aiomqtt.ProtocolVersion.V5, socket_options=NODELAY
        ) as client:
            await client.subscribe([("bench/echo/all", 1), (f"bench/echo/{i}", 1)])
            print("ready", flush=True)
            async for message in client.messages:
                props = Properties(PacketTypes.PUBLISH)
                props.CorrelationData = message.properties.CorrelationData
                await client.publish(message.properties.ResponseTopic, message.payload, qos=1, properties=props)

    await asyncio.gather(*(responder(i) for i in range(count)))


async def echo_round_trip(url: str, topic: str, expect: int) -> None:
    """The fleet client's steps, bare: connect, subscribe, sync, publish one request, collect ``expect`` replies."""
    import aiomqtt
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    broker, _ = fleet.parse_url(url)
    token = uuid.uuid4().hex
    reply_to, sync = f"bench/reply/{token}", f"bench/reply/{token}/sync"
    async with aiomqtt.Client(
        broker.host, broker.port, protocol=aiomqtt.ProtocolVersion.V5, socket_options=NODELAY
    ) as client:
        await client.subscribe([("streamq/+/status", 1), (reply_to, 1), (sync, 1)])
        await client.publish(sync, b"", qos=1)
        async for message in client.messages:
            if message.topic.value == sync:
                break
        props = Properties(PacketTypes.PUBLISH)
        props.ResponseTopic = reply_to
        props.CorrelationData = token.encode()
        await client.publish(topic, json.dumps({"id": token, "sql": "SELECT * FROM time"}), qos=0, properties=props)
        got = 0
        async with asyncio.timeout(10):
            async for message in client.messages:
                if message.topic.value == reply_to:
                    got += 1
                    if got == expect:
                        return


def fleet_call(url: str, sql: str, hosts: list[str] | None, expect: int):
    async def call() -> None:
        result = await fleet.query(url, sql, hosts=hosts, timeout=10, key=KEY.encode())
        if len(result.replies) != expect or not result.complete:
            raise SystemExit(f"fleet query got {len(result.replies)}/{expect} replies: {result.replies}")

    return call


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--daemons", type=int, default=10)
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--gap", type=float, default=0.1, help="seconds between calls (0: back to back)")
    parser.add_argument("--echo-responders", help=argparse.SUPPRESS)  # internal: URL,count
    args = parser.parse_args()
    if args.echo_responders:
        url, count = args.echo_responders.rsplit(",", 1)
        asyncio.run(echo_responders(url, int(count)))
        return

    t0 = time.monotonic()
    with running_fleet("sqbfleet", args.daemons) as (_root, url, procs):
        print(f"{args.daemons} daemons answering after {time.monotonic() - t0:.1f}s; broker {url}")
        echo = subprocess.Popen(
            [sys.executable, __file__, "--echo-responders", f"{url},{args.daemons}"],
            stdout=subprocess.PIPE,
            text=True,
        )
        procs.append(echo)
        for _ in range(args.daemons):
            echo.stdout.readline()

        n = args.daemons
        rows = [
            ("fleet SELECT * FROM time, all hosts", fleet_call(url, "SELECT * FROM time", None, n)),
            ("echo, all responders (baseline)", lambda: echo_round_trip(url, "bench/echo/all", n)),
            ("fleet SELECT 1, all hosts", fleet_call(url, "SELECT 1", None, n)),
            ("fleet SELECT * FROM time, --host h00", fleet_call(url, "SELECT * FROM time", ["h00"], 1)),
            ("echo, one responder (baseline)", lambda: echo_round_trip(url, "bench/echo/0", 1)),
        ]
        print(f"\n{'round trip, in process':44} {'median ms':>10} {'p95 ms':>8}   (n={args.n}, {args.gap:g}s apart)")
        medians = {}
        for name, make in rows:
            med, p95 = summary(timed(make, args.n, args.gap))
            medians[name] = med
            print(f"{name:44} {med:10.2f} {p95:8.2f}")
        fleet_all = medians["fleet SELECT * FROM time, all hosts"]
        echo_all = medians["echo, all responders (baseline)"]
        one, echo_one = medians["fleet SELECT * FROM time, --host h00"], medians["echo, one responder (baseline)"]
        print(f"\nfleet / echo, {n} hosts: {fleet_all / echo_all:.1f}x   one host: {one / echo_one:.1f}x")
        print(f"target: fleet SELECT * FROM time median < 500 ms: {'met' if fleet_all < 500 else 'MISSED'}")

        cli = []
        for _ in range(5):
            t0 = time.perf_counter()
            result = subprocess.run(
                [*CLI, "--broker", url, "--key", KEY, "--json", "SELECT * FROM time"],
                capture_output=True,
                text=True,
                cwd=ROOT,
            )
            cli.append(time.perf_counter() - t0)
            if result.returncode != 0:
                sys.exit(f"streamq fleet query failed: {result.stderr}")
        print(f"`streamq fleet query` whole command, {n} hosts: median {statistics.median(cli) * 1e3:.0f} ms (n=5)")


if __name__ == "__main__":
    main()
