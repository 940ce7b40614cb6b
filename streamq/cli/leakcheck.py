"""Run one query many times in one process: its speed, and whether memory grows per run.

This is what osquery's table authors get from running a query in a loop under
valgrind, done the Python way. A table that forgets a cache entry, keeps a file
object, or appends to a module-level list on every query retains a little more
memory after each run; repeated a million times in a daemon, that is the leak.

Two measures, sampled after every run once the garbage collector has run and
the C allocator has given freed pages back (``malloc_trim``):

- ``tracemalloc``: bytes Python has allocated and not freed. Exact, so it sees
  a small leak, but blind to memory a C extension allocates itself.
- RSS from ``/proc/self/statm``: everything, C included, but coarse (pages,
  allocator arenas), so it needs a larger bound.

The first runs are a warm-up (imports, caches, SQLite's statement cache fill
once); growth per run is the least-squares slope over the remaining runs, so
one arena grabbed halfway through moves it little while growth that goes on
run after run moves it fully. A query leaks when either slope passes its
bound (:data:`TRACEMALLOC_BOUND`, :data:`RSS_BOUND`).
"""

from __future__ import annotations

import gc
import math
import os
import statistics
import time
import tracemalloc
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass

# Python allocations retained per run. A real leak of one small object per row
# passes this at once; a warm cache stops growing after the warm-up.
TRACEMALLOC_BOUND = 1024
# Resident memory per run. Allocator noise after malloc_trim is a few pages
# spread over many runs; 64 KiB per run is sixteen pages, every run, for good.
RSS_BOUND = 64 * 1024
# The fewest runs a fit is made over; with fewer, a slope is first-vs-last noise.
MIN_MEASURED = 3

_PAGE = os.sysconf("SC_PAGE_SIZE")


def warmup_runs(runs: int) -> int:
    """How many of ``runs`` are a warm-up: a tenth, at least three."""
    return max(3, runs // 10)


def min_runs() -> int:
    """The fewest ``runs`` a leak check accepts: the warm-up plus a fit's worth."""
    return 3 + MIN_MEASURED


@dataclass(frozen=True)
class Growth:
    """Memory after each post-warm-up run and the verdict on it."""

    warmup: int
    traced: tuple[int, ...]  # tracemalloc's current size after each measured run, bytes
    rss: tuple[int, ...]  # resident set size after each measured run, bytes
    traced_per_run: float  # least-squares slope, bytes per run
    rss_per_run: float
    traced_bound: int = TRACEMALLOC_BOUND
    rss_bound: int = RSS_BOUND

    @property
    def leaking(self) -> bool:
        return self.traced_per_run > self.traced_bound or self.rss_per_run > self.rss_bound

    def verdict(self) -> str:
        """One line: what grew, by how much per run, against which bound."""
        over = []
        if self.traced_per_run > self.traced_bound:
            over.append(
                f"Python allocations grow {_bytes(self.traced_per_run)}/run (bound {_bytes(self.traced_bound)})"
            )
        if self.rss_per_run > self.rss_bound:
            over.append(f"RSS grows {_bytes(self.rss_per_run)}/run (bound {_bytes(self.rss_bound)})")
        if not over:
            return "no leak: memory growth per run is within the bounds"
        return f"leak over {len(self.traced)} runs after {self.warmup} warm-up: " + "; ".join(over)


@dataclass(frozen=True)
class Report:
    """What ``streamq query --repeat N [--leak-check]`` prints."""

    sql: str
    seconds: tuple[float, ...]  # wall time of each run, fetching every row included
    rows: tuple[int, ...]  # rows returned by each run
    growth: Growth | None = None  # only with leak_check

    @property
    def runs(self) -> int:
        return len(self.seconds)

    @property
    def median_ms(self) -> float:
        return statistics.median(self.seconds) * 1000

    @property
    def p95_ms(self) -> float:
        ordered = sorted(self.seconds)  # nearest rank: a value that was measured, never interpolated
        return ordered[math.ceil(0.95 * len(ordered)) - 1] * 1000

    @property
    def leaking(self) -> bool:
        return self.growth is not None and self.growth.leaking

    def as_dict(self) -> dict:
        out = {
            "sql": self.sql,
            "runs": self.runs,
            "median_ms": round(self.median_ms, 3),
            "p95_ms": round(self.p95_ms, 3),
            "rows_per_run": statistics.median_low(self.rows),
            "rows_min": min(self.rows),
            "rows_max": max(self.rows),
        }
        if self.growth is not None:
            g = self.growth
            out["leak_check"] = {
                "warmup_runs": g.warmup,
                "measured_runs": len(g.traced),
                "tracemalloc_growth_per_run": round(g.traced_per_run),
                "rss_growth_per_run": round(g.rss_per_run),
                "tracemalloc_bound": g.traced_bound,
                "rss_bound": g.rss_bound,
                "leaking": g.leaking,
                "verdict": g.verdict(),
            }
        return out

    def text(self) -> str:
        rows = str(min(self.rows)) if min(self.rows) == max(self.rows) else f"{min(self.rows)}-{max(self.rows)}"
        lines = [
            ("runs", str(self.runs)),
            ("median", f"{self.median_ms:.3f} ms"),
            ("p95", f"{self.p95_ms:.3f} ms"),
            ("rows/run", rows),
        ]
        if self.growth is not None:
            g = self.growth
            lines += [
                ("warm-up", f"{g.warmup} runs (not measured)"),
                ("tracemalloc", f"{_signed(g.traced_per_run)}/run (bound {_bytes(g.traced_bound)})"),
                ("rss", f"{_signed(g.rss_per_run)}/run (bound {_bytes(g.rss_bound)})"),
                ("verdict", "LEAK" if g.leaking else "ok"),
            ]
        width = max(len(k) for k, _ in lines)
        return "".join(f"{k.ljust(width)}  {v}\n" for k, v in lines)


def repeat(
    run_once: Callable[[], int],
    runs: int,
    *,
    sql: str = "",
    leak_check: bool = False,
    warmup: int | None = None,
    traced_bound: int = TRACEMALLOC_BOUND,
    rss_bound: int = RSS_BOUND,
) -> Report:
    """Call ``run_once`` (which runs a query and returns its row count) ``runs`` times.

    With ``leak_check``, tracemalloc traces the whole loop, so the times include
    its overhead (1.5-3x); time a query without the leak check. ``warmup``
    overrides :func:`warmup_runs`, e.g. when the caller has run the query already.
    """
    if runs < 1:
        raise ValueError("runs must be at least 1")
    warmup = warmup_runs(runs) if warmup is None else max(0, warmup)
    if leak_check and runs - warmup < MIN_MEASURED:
        raise ValueError(f"a leak check needs at least {MIN_MEASURED} runs after {warmup} warm-up")
    # Preallocated arrays hold raw numbers: the loop's own bookkeeping allocates
    # nothing that survives a run, so it cannot read as growth.
    seconds = array("d", bytes(8 * runs))
    rows = array("q", bytes(8 * runs))
    traced = array("q", bytes(8 * (runs - warmup)))
    rss = array("q", bytes(8 * (runs - warmup)))
    trim = _malloc_trim() if leak_check else None
    started = leak_check and not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    try:
        for i in range(runs):
            t0 = time.perf_counter()
            rows[i] = run_once()
            seconds[i] = time.perf_counter() - t0
            if leak_check and i >= warmup:
                traced[i - warmup], rss[i - warmup] = _sample(trim)
    finally:
        if started:
            tracemalloc.stop()
    growth = None
    if leak_check:
        growth = Growth(
            warmup=warmup,
            traced=tuple(traced),
            rss=tuple(rss),
            traced_per_run=slope(traced),
            rss_per_run=slope(rss),
            traced_bound=traced_bound,
            rss_bound=rss_bound,
        )
    return Report(sql=sql, seconds=tuple(seconds), rows=tuple(rows), growth=growth)


def repeat_query(conn, sql: str, runs: int, **kwargs) -> Report:
    """:func:`repeat` over ``sql`` on a streamq connection, reading every row of every run."""

    def run_once() -> int:
        _, rows = conn.execute(sql)
        count = 0
        for _ in rows:
            count += 1
        return count

    return repeat(run_once, runs, sql=sql, **kwargs)


def slope(values: Sequence[float]) -> float:
    """Least-squares slope of ``values`` against their index (growth per run)."""
    n = len(values)
    if n < 2:
        return 0.0
    mean_x = (n - 1) / 2
    mean_y = sum(values) / n
    num = sum((i - mean_x) * (v - mean_y) for i, v in enumerate(values))
    den = sum((i - mean_x) ** 2 for i in range(n))
    return num / den


def rss_bytes() -> int:
    with open("/proc/self/statm", "rb") as f:
        return int(f.read().split()[1]) * _PAGE


def _sample(trim: Callable[[int], int] | None) -> tuple[int, int]:
    gc.collect()
    if trim is not None:
        trim(0)
    return tracemalloc.get_traced_memory()[0], rss_bytes()


def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's malloc_trim, or None (musl).

    glibc keeps freed memory for reuse, which reads as RSS growth that is not a
    leak; malloc_trim hands it back so RSS follows what is really held.
    """
    try:
        import ctypes

        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None


def _bytes(n: float) -> str:
    n = abs(n)
    if n >= 1024 * 1024:
        return f"{n / (1024 * 1024):.1f} MiB"
    if n >= 1024:
        return f"{n / 1024:.1f} KiB"
    return f"{n:.0f} B"


def _signed(n: float) -> str:
    return ("-" if n < 0 else "+") + _bytes(n)
