"""Benchmark: does process_events keep up with a burst of short processes?

Not a test: prints figures. Needs root (the proc connector). Runs ProcessSource
in-process on an asyncio loop and, from a thread, spawns N short processes as
fast as a C loop can (`sh -c 'for i in $(seq N); do /bin/true MARK $i & done'`),
or with os.posix_spawn in a tight Python loop (--spawner posix_spawn).

    .venv/bin/python bench/bench_process_events.py [--n 1000] [--spawner sh|posix_spawn]

Figures: exec events captured with the right pid (target >= 99%), with the full
command line (target >= 95%), exits captured with their exit code, and the
ProcessSource's own cost. The baseline is the list of pids the spawner reports.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from streamq.ring import Rings
from streamq.sources.process import ProcessSource


def spawn_sh(n: int, marker: str) -> list[tuple[int, str]]:
    """N children of one sh; each prints its own pid ($!) so we know what was spawned."""
    script = f"for i in $(seq {n}); do /bin/true {marker} $i & echo $! $i; done; wait"
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True).stdout
    spawned = []
    words = out.split()
    for pid, i in zip(words[0::2], words[1::2]):
        spawned.append((int(pid), f"/bin/true {marker} {i}"))
    return spawned


_POSIX_LOOP = """
import os, sys
n, marker = int(sys.argv[1]), sys.argv[2]
pids = [os.posix_spawn("/bin/true", ["/bin/true", marker, str(i + 1)], {}) for i in range(n)]
for pid in pids:
    os.waitpid(pid, 0)
print(*pids)
"""


def spawn_posix(n: int, marker: str) -> list[tuple[int, str]]:
    """A separate Python spawning in a tight loop (in this process it would hold the GIL
    the source's reader thread needs: see the report's note on in-process spawners)."""
    out = subprocess.run(
        [sys.executable, "-c", _POSIX_LOOP, str(n), marker], capture_output=True, text=True, check=True
    )
    return [(int(pid), f"/bin/true {marker} {i + 1}") for i, pid in enumerate(out.stdout.split())]


async def run(n: int, spawner: str, priority: str) -> None:
    rings = Rings(capacity=1_000_000, max_age=None)
    source = ProcessSource("process_events", {"mode": "netlink", "priority": priority}, rings)
    ring = rings.ring("process_events")
    task = asyncio.create_task(source.run())
    await asyncio.sleep(0.3)
    if source.status.errors or task.done():
        print("proc connector unavailable:", source.status.last_error, file=sys.stderr)
        sys.exit(1)
    marker = f"bench{os.getpid()}"
    spawn = spawn_sh if spawner == "sh" else spawn_posix
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    spawned = await asyncio.to_thread(spawn, n, marker)
    burst = time.perf_counter() - t0
    # Let the source drain what the kernel queued.
    last = -1
    while ring.last_eid != last:
        last = ring.last_eid
        await asyncio.sleep(0.3)
    cpu = time.process_time() - cpu0
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)

    rows = [row for _, _, row in ring.since(0)]
    execs = {r["pid"]: r for r in rows if r.get("action") == "exec"}
    exits = {r["pid"]: r for r in rows if r.get("action") == "exit"}
    want = dict(spawned)
    got_pid = sum(1 for pid in want if pid in execs)
    got_cmd = sum(1 for pid, cmd in want.items() if execs.get(pid, {}).get("cmdline") == cmd)
    true_path = os.path.realpath("/bin/true")
    got_path = sum(1 for pid in want if execs.get(pid, {}).get("path") == true_path)
    got_exit = sum(1 for pid in want if exits.get(pid, {}).get("exit_code") == 0)
    total = len(want)

    def pct(k: int) -> str:
        return f"{k:5d}/{total} = {100.0 * k / total:6.2f}%"

    print(
        f"spawner={spawner}  priority={priority}  processes={total}  burst={burst * 1000:.0f} ms  ({total / burst:,.0f} spawns/s)"
    )
    print(f"  exec with right pid   {pct(got_pid)}   (target >= 99%)")
    print(f"  exec with cmdline     {pct(got_cmd)}   (target >= 95%)")
    print(f"  exec with path        {pct(got_path)}")
    print(f"  exit with exit_code 0 {pct(got_exit)}")
    print(f"  ring rows {len(rows)}, overflows (ENOBUFS) {source.status.overflows}, errors {source.status.errors}")
    print(f"  source CPU {cpu * 1000:.0f} ms = {cpu * 1e6 / max(1, len(rows)):.1f} us per event")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--spawner", choices=("sh", "posix_spawn", "both"), default="both")
    parser.add_argument("--priority", choices=("normal", "high", "realtime", "all"), default="all")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root (the proc connector)")
    priorities = ("normal", "high", "realtime") if args.priority == "all" else (args.priority,)
    for spawner in ("sh", "posix_spawn") if args.spawner == "both" else (args.spawner,):
        for priority in priorities:
            asyncio.run(run(args.n, spawner, priority))


if __name__ == "__main__":
    main()
