"""Cold start of `streamq query "select * from time"`, against a bare `python -c pass` in the same run.

Prints the median wall time of each over N runs, and the ratio. Target: streamq median under 250 ms.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time

RUNS = 21


# A user's Python caches bytecode; a shell with PYTHONDONTWRITEBYTECODE=1 would make
# every run compile every module, which is not the cold start anyone meets.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def median_ms(argv: list[str]) -> float:
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, env=ENV)  # writes the bytecode caches
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, env=ENV)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    bare = median_ms([sys.executable, "-c", "pass"])
    streamq = median_ms([sys.executable, "-m", "streamq", "query", "select * from time"])
    print(f"python -c pass:                        median {bare:7.1f} ms")
    print(f"streamq query 'select * from time':    median {streamq:7.1f} ms  (target < 250 ms)")
    print(f"ratio streamq / bare interpreter:      {streamq / bare:7.2f}x")


if __name__ == "__main__":
    main()
