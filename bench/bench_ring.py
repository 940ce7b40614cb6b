"""Benchmark: EventRing append and read rates against plain Python baselines.

Not a test: prints figures and ratios, all measured in this run.

    .venv/bin/python bench/bench_ring.py [--n 1000000] [--reps 5]

Appends (target >= 1 M/s): EventRing.append vs a bare ``list.append`` loop (the
floor: no bound, no eid, no time) and a ``deque(maxlen)`` under a lock (what a
bounded, thread-safe buffer costs the obvious way). Reads: RingCursor.read in
pages of 1,000 and 100,000, and ``since(last - 5)`` on a full ring (should
not depend on the ring's size).
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections import deque
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from streamq.ring import EventRing, RingCursor


def best(fn, reps: int) -> float:
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    n, reps = args.n, args.reps
    row = {"pid": 1, "action": "exec", "cmdline": "/bin/true"}
    capacity = 100_000

    def plain_list() -> None:
        out: list = []
        append = out.append
        now = time.time
        for _ in range(n):
            append((now(), row))

    def bare_list() -> None:
        out: list = []
        append = out.append
        for _ in range(n):
            append(row)

    def locked_deque() -> None:
        buf: deque = deque(maxlen=capacity)
        lock = threading.Lock()
        now = time.time
        for _ in range(n):
            with lock:
                buf.append((now(), row))

    def ring_append() -> None:
        ring = EventRing(capacity)
        append = ring.append
        for _ in range(n):
            append(row)

    t_bare = best(bare_list, reps)
    t_list = best(plain_list, reps)
    t_deque = best(locked_deque, reps)
    t_ring = best(ring_append, reps)
    print(f"appends of {n:,} rows (best of {reps}), ring capacity {capacity:,}:")
    print(f"  list.append(row)           {n / t_bare / 1e6:6.2f} M/s   (floor: no bound, no eid, no time)")
    print(f"  list.append + time.time()  {n / t_list / 1e6:6.2f} M/s   (unbounded: the list grows to n)")
    print(f"  locked deque(maxlen)       {n / t_deque / 1e6:6.2f} M/s")
    print(f"  EventRing.append           {n / t_ring / 1e6:6.2f} M/s   (target >= 1 M/s)")
    print(
        f"  ring vs bare list {t_bare / t_ring:.2f}x, vs list+time {t_list / t_ring:.2f}x,"
        f" vs locked deque {t_deque / t_ring:.2f}x (speed ratios)"
    )

    ring = EventRing(capacity)
    for _ in range(capacity):
        ring.append(row)
    for page in (1_000, 100_000):

        def read_all(page: int = page) -> None:
            cursor = RingCursor(ring, 0)
            while cursor.read(limit=page).rows:
                pass

        t = best(read_all, reps)
        print(f"cursor read, pages of {page:>7,}: {capacity / t / 1e6:6.2f} M rows/s")
    t_copy = best(lambda: list(ring._slots), reps)
    print(f"  (baseline: copying the slot list, {capacity / t_copy / 1e6:.1f} M/s)")

    for size in (10_000, 1_000_000):
        big = EventRing(size)
        for _ in range(size):
            big.append(row)
        last = big.last_eid
        calls = 10_000
        t = best(lambda big=big, last=last, calls=calls: [big.since(last - 5) for _ in range(calls)], reps)
        print(f"since(last - 5) on a full ring of {size:>9,}: {t / calls * 1e6:6.2f} us per call")
    big = EventRing(1_000_000)
    for i in range(1_000_000):
        big.append(row, when=1_000_000.0 + i / 1000)
    t = best(lambda: big.since(0, min_time=1_000_999.0), reps)
    print(f"since(min_time=T) on 1,000,000 rows, the last 1,000 wanted: {t * 1e6:.0f} us")


if __name__ == "__main__":
    main()
