"""`SELECT * FROM listening_ports` against `ss -ltnup`, with 1,000 listening TCP sockets.

The sockets live in this process, so both tools must scan its 1,000 fds to
name the owner. Prints the median of each and their ratio.

    .venv/bin/python bench/bench_listening_ports.py [--sockets 1000] [--runs 15]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import socket
import statistics
import subprocess
import time

import streamq


def open_listeners(count: int) -> list[socket.socket]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = count + 256
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard) if hard != resource.RLIM_INFINITY else need, hard))
    socks = []
    for _ in range(count):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.1", 0))
        s.listen()
        socks.append(s)
    return socks


def timed_ms(fn) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def interleaved_medians(a, b, runs: int) -> tuple[float, float]:
    """Median times of ``a`` and ``b``, run alternately so both see the same load on the host."""
    a()
    b()  # warm caches (imports, dentries) before timing
    ta, tb = [], []
    for _ in range(runs):
        ta.append(timed_ms(a))
        tb.append(timed_ms(b))
    return statistics.median(ta), statistics.median(tb)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sockets", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()

    socks = open_listeners(args.sockets)
    conn = streamq.connect()
    rows = conn.query("SELECT * FROM listening_ports")
    mine = sum(1 for r in rows if r["pid"] is not None and r["socket"] and r["port"] and r["protocol"] == 6)
    print(f"listening_ports rows: {len(rows)} (TCP with an owner and a port: {mine})")

    if shutil.which("ss") is None:
        print("ss is not installed: no comparison")
        return
    ours, theirs = interleaved_medians(
        lambda: conn.query("SELECT * FROM listening_ports"),
        lambda: subprocess.run(["ss", "-ltnup"], capture_output=True, check=True),
        args.runs,
    )
    print(f"streamq SELECT * FROM listening_ports: {ours:8.2f} ms (median of {args.runs}, interleaved)")
    print(f"ss -ltnup (subprocess):                {theirs:8.2f} ms (median of {args.runs}, interleaved)")
    print(f"ratio streamq / ss: {ours / theirs:.2f}")
    for s in socks:
        s.close()


if __name__ == "__main__":
    main()
