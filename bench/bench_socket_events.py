"""listen()-to-row latency of socket_events (sock_diag polling) against the poll interval.

A child process opens N TCP listeners at random moments (so they fall at every
phase of the poll), closes each 1.2 to 3 intervals later (a socket that lives
less than an interval may fall between two polls: that is polling's blind spot), and reports the CLOCK_MONOTONIC
time of each listen() and close() with the socket inode. This process runs the
SocketSource and notes when each listen/close row reaches the ring. The owner
is another process, so every new inode costs a real /proc/*/fd search.

Polling can only add up to one interval of delay, so the figure to watch is
p99 - interval (the target is under 20 ms). --background keeps that many extra
sockets open in the child, to show the cost of a poll and of the fd search.

    .venv/bin/python bench/bench_socket_events.py [--interval 0.25] [--listeners 60] [--background 0]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import threading
import time

from streamq.ring import Rings
from streamq.sources.socket import SocketSource

CHILD = r"""
import os, random, resource, socket, sys, time
n, gap, background = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, background + 512)), hard))
keep = []
for _ in range(background):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    keep.append(s)
sys.stdout.write("ready\n"); sys.stdout.flush()
sys.stdin.readline()
open_ = []
for _ in range(n):
    time.sleep(random.uniform(0, 2 * gap))
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    t = time.monotonic()
    ino = os.fstat(s.fileno()).st_ino
    sys.stdout.write(f"listen {ino} {t}\n"); sys.stdout.flush()
    open_.append((time.monotonic() + random.uniform(1.2 * gap, 3 * gap), s, ino))  # outlives a poll
    for item in [o for o in open_ if o[0] <= time.monotonic()]:
        open_.remove(item)
        item[1].close()
        sys.stdout.write(f"close {item[2]} {time.monotonic()}\n"); sys.stdout.flush()
time.sleep(gap)
for _, s, ino in open_:
    s.close()
    sys.stdout.write(f"close {ino} {time.monotonic()}\n"); sys.stdout.flush()
sys.stdout.write("done\n"); sys.stdout.flush()
"""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


async def run(interval: float, listeners: int, background: int) -> None:
    rings = Rings()
    source = SocketSource("socket_events", {"interval": interval}, rings)
    seen: dict[tuple[str, str], float] = {}
    ring = source.ring

    def on_append() -> None:  # runs in the poll thread right after each append
        row = ring.since(ring.last_eid - 1)[-1][2]
        seen.setdefault((row["action"], row["socket"]), time.monotonic())

    ring.subscribe(on_append)
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(listeners), str(interval), str(background)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout.readline().strip() == "ready"
    task = asyncio.create_task(source.run())
    while source.polls < 2:
        await asyncio.sleep(0.01)
    polls_before, walks_before = source.polls, source.owners.walks
    events: dict[tuple[str, str], float] = {}
    finished = threading.Event()

    def reader() -> None:
        for line in child.stdout:
            parts = line.split()
            if parts[0] == "done":
                break
            events[(parts[0], parts[1])] = float(parts[2])
        finished.set()

    threading.Thread(target=reader, daemon=True).start()
    started = time.monotonic()
    child.stdin.write("go\n")
    child.stdin.flush()
    while not finished.is_set():
        await asyncio.sleep(0.05)
    await asyncio.sleep(interval * 2 + 0.1)
    elapsed = time.monotonic() - started
    polls, walks = source.polls - polls_before, source.owners.walks - walks_before
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    child.wait()

    owners_rows = [r for _, _, r in ring.since(0) if r["action"] == "listen"]
    ours = {k[1] for k in events}
    owners_rows = [r for r in owners_rows if r["socket"] in ours]
    owned = sum(1 for r in owners_rows if r.get("pid") == child.pid)
    print(f"interval            {interval * 1000:8.1f} ms")
    for action in ("listen", "close"):
        lat = [(seen[k] - t) * 1000 for k, t in events.items() if k[0] == action and k in seen]
        missing = sum(1 for k in events if k[0] == action and k not in seen)
        if not lat:
            print(f"{action}: no rows")
            continue
        p50, p99 = percentile(lat, 50), percentile(lat, 99)
        print(
            f"{action:6s} n={len(lat):4d} missed={missing}  p50 {p50:7.1f} ms  p99 {p99:7.1f} ms  "
            f"max {max(lat):7.1f} ms  p99 - interval {p99 - interval * 1000:+7.1f} ms  "
            f"p50/interval {p50 / (interval * 1000):.2f}"
        )
    print(f"listen rows naming the child's pid: {owned}/{len(owners_rows)}")
    print(f"polls {polls} in {elapsed:.1f} s ({polls / elapsed:.2f}/s), /proc fd walks {walks}")


def poll_cost(background: int, runs: int = 50) -> None:
    """Median time of one snapshot + diff with ``background`` extra sockets in this process."""
    import socket

    from streamq.sources.socket import SockDiag, diff

    keep = []
    for _ in range(background):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        keep.append(s)
    diag = SockDiag()
    before = diag.snapshot()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        now = diag.snapshot(before)
        list(diff(before, now, set()))
        times.append((time.perf_counter() - t) * 1000)
        before = now
    diag.close()
    print(f"one poll (dump + diff) over {len(before)} sockets: median {statistics.median(times):.2f} ms")
    for s in keep:
        s.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--interval", type=float, default=0.25, help="poll interval in seconds")
    parser.add_argument("--listeners", type=int, default=60)
    parser.add_argument("--background", type=int, default=0, help="extra sockets the child keeps open")
    args = parser.parse_args()
    asyncio.run(run(args.interval, args.listeners, args.background))
    poll_cost(args.background)


if __name__ == "__main__":
    main()
