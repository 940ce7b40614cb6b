"""Benchmark: `fleet push --wait` until 10 daemons report the new version, against a bare retained publish.

Not a test: prints figures and ratios, all measured in this run.

    .venv/bin/python bench/bench_fleet_push.py [--daemons 10] [--n 20]

Starts a private mosquitto on a free port and ``--daemons`` daemons (`python -m streamq
run`, a file sink, [fleet] accept_config), then times ``n`` pushes of each, median and
p95 (target: push --wait to every daemon under 1 s):

- streamq.daemon.fleet_push.push(wait=True), what `streamq fleet push --wait` runs after
  its start-up: connect, subscribe, read the retained statuses, reports and fragment,
  publish a signed fragment (retained), collect every host's report naming the new
  version, disconnect. Each push changes one query's SQL, so each daemon verifies,
  checks (config loader, SQL prepared read-only), applies (one query restarts, one
  keeps its state), writes its state file and publishes its retained report;
- baseline: the same client steps against ``--daemons`` bare MQTT subscribers (one
  process, one client each) that answer each retained message with a retained ack:
  the broker's fan-out and fan-in, with no signature, no checks, no daemon;
- `streamq fleet push --wait` as a whole command (a few runs: process start dominates).
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

from streamq.daemon import fleet_push  # noqa: E402
from streamq.mqtt import parse_url  # noqa: E402

PUSH_CLI = (sys.executable, "-m", "streamq", "fleet", "push")
NODELAY = ((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),)  # as the fleet connection does, so the baseline is fair
FRAGMENT = """
[queries.ports]
sql = "SELECT port, address FROM listening_ports WHERE port > {n}"
interval = 60
[queries.kept]
sql = "SELECT 1 AS one"
interval = 60
"""


# -- the bare baseline ----------------------------------------------------------------------------


async def ack_subscribers(url: str, count: int) -> None:
    """``count`` clients; each answers every retained message on bench/config/+ with a retained ack."""
    import aiomqtt

    broker, _ = parse_url(url)

    async def subscriber(i: int) -> None:
        async with aiomqtt.Client(
            broker.host, broker.port, protocol=aiomqtt.ProtocolVersion.V5, socket_options=NODELAY
        ) as client:
            await client.subscribe("bench/config/+", qos=1)
            print("ready", flush=True)
            async for message in client.messages:
                version = json.loads(bytes(message.payload))["version"]
                ack = json.dumps({"host": f"s{i:02d}", "version": version}).encode()
                await client.publish(f"bench/ack/s{i:02d}", ack, qos=1, retain=True)

    await asyncio.gather(*(subscriber(i) for i in range(count)))


def bare_push(url: str, expect: int):
    """The push client's steps, bare: connect, subscribe, sync, publish retained, collect ``expect`` acks."""
    version = [0]

    async def call() -> None:
        import aiomqtt

        broker, _ = parse_url(url)
        version[0] += 1
        token = uuid.uuid4().hex
        sync = f"bench/sync/{token}"
        async with aiomqtt.Client(
            broker.host, broker.port, protocol=aiomqtt.ProtocolVersion.V5, socket_options=NODELAY
        ) as client:
            await client.subscribe([("streamq/+/status", 1), ("bench/ack/+", 1), (sync, 1)])
            await client.publish(sync, b"", qos=1)
            async for message in client.messages:
                if message.topic.value == sync:
                    break
            body = json.dumps({"version": version[0], "toml": FRAGMENT.format(n=version[0])}).encode()
            await client.publish("bench/config/x", body, qos=1, retain=True)
            acked: set[str] = set()
            async with asyncio.timeout(10):
                async for message in client.messages:
                    if message.topic.value.startswith("bench/ack/"):
                        ack = json.loads(bytes(message.payload))
                        if ack["version"] == version[0]:
                            acked.add(ack["host"])
                            if len(acked) == expect:
                                return

    return call


def streamq_push(url: str, expect: int):
    n = [0]

    async def call() -> None:
        n[0] += 1
        result = await fleet_push.push(
            url, "bench", key=KEY.encode(), toml=FRAGMENT.format(n=n[0]), wait=True, timeout=10
        )
        applied = [h for h, e in result.done.items() if e.get("state") == "applied"]
        if len(applied) != expect or not result.complete:
            raise SystemExit(f"push v{result.version}: {len(applied)}/{expect} applied: {result.done} {result.missing}")

    return call


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--daemons", type=int, default=10)
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--gap", type=float, default=0.2, help="seconds between pushes")
    parser.add_argument("--ack-subscribers", help=argparse.SUPPRESS)  # internal: URL,count
    args = parser.parse_args()
    if args.ack_subscribers:
        url, count = args.ack_subscribers.rsplit(",", 1)
        asyncio.run(ack_subscribers(url, int(count)))
        return

    t0 = time.monotonic()
    with running_fleet("sqbpush", args.daemons, accept_config=True) as (root, url, procs):
        n = args.daemons
        # Every daemon's first report is retained before the first push: --wait awaits only hosts that report.
        asyncio.run(_reports(url, n))
        print(f"{n} daemons reporting after {time.monotonic() - t0:.1f}s; broker {url}")
        acks = subprocess.Popen(
            [sys.executable, __file__, "--ack-subscribers", f"{url},{n}"], stdout=subprocess.PIPE, text=True
        )
        procs.append(acks)
        for _ in range(n):
            acks.stdout.readline()

        rows = [
            (f"fleet push --wait, {n} daemons", streamq_push(url, n)),
            (f"bare retained publish, {n} acks (baseline)", bare_push(url, n)),
        ]
        print(f"\n{'push until every host reported, in process':46} {'median ms':>10} {'p95 ms':>8}   (n={args.n})")
        medians = {}
        for name, make in rows:
            med, p95 = summary(timed(make, args.n, args.gap))
            medians[name] = med
            print(f"{name:46} {med:10.2f} {p95:8.2f}")
        push_ms, bare_ms = (medians[name] for name, _ in rows)
        print(f"\nfleet push / bare retained publish, {n} hosts: {push_ms / bare_ms:.1f}x")
        print(f"target: push --wait to every daemon under 1 s: {'met' if push_ms < 1000 else 'MISSED'}")

        cli = []
        fragment = root / "fragment.toml"
        for i in range(5):
            fragment.write_text(FRAGMENT.format(n=1000 + i))
            t0 = time.perf_counter()
            result = subprocess.run(
                [*PUSH_CLI, "--broker", url, "--key", KEY, "bench", str(fragment), "--wait", "--json"],
                capture_output=True,
                text=True,
                cwd=ROOT,
            )
            cli.append(time.perf_counter() - t0)
            if result.returncode != 0:
                sys.exit(f"streamq fleet push failed: {result.stderr}")
        print(
            f"`streamq fleet push --wait` whole command, {n} hosts: median {statistics.median(cli) * 1e3:.0f} ms (n=5)"
        )


async def _reports(url: str, n: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        view = await fleet_push.status(url)
        if len(view.reports) >= n:
            return
        await asyncio.sleep(0.2)
    sys.exit("the daemons did not all report within 30s")


if __name__ == "__main__":
    main()
