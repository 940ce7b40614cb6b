"""`streamq query --repeat N --leak-check`: every built-in table runs clean, and a leaking table is caught."""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
import textwrap
import time

import pytest

import streamq
from conftest import ROOT, run_cli
from streamq.cli import leakcheck
from streamq.sql import schema
from streamq.sql.connection import load_tables

TABLES = load_tables()
UNCONSTRAINED = sorted(name for name, spec in TABLES.items() if not spec.required)
RUNS = 8
# A table slower than this (a run under tracemalloc takes 2-4x longer) gets the
# fewest runs a fit accepts, which keeps this file's leak checks under a minute.
SLOW_SECONDS = 0.08
# Tables whose Python allocations grow over their first tens of runs and then stop:
# measured flat from run 50 to 300 (certificates: +26 KB over runs 0-50, then +-0.5 KB;
# python_packages and npm_packages: +16 KB over runs 0-300 with glob/re caches, then 0).
# A few runs cannot tell that from a leak, so they get a wider Python bound here;
# bench/bench_leakcheck.py checks them at the default bound over hundreds of runs.
FILLING_CACHES = {"certificates": 4096, "python_packages": 4096, "npm_packages": 4096}


@pytest.fixture(scope="module")
def lconn():
    connection = streamq.connect()
    yield connection
    connection.close()


@pytest.mark.parametrize("name", UNCONSTRAINED)
def test_builtin_table_does_not_leak(lconn, name):
    sql = f'SELECT * FROM "{name}"'
    started = time.perf_counter()
    lconn.query(sql)  # the first run pays for imports; it also tells a slow table
    slow = time.perf_counter() - started > SLOW_SECONDS
    # A slow table: that first run plus one more are its warm-up, then four runs to fit.
    runs, warmup = (5, 1) if slow else (RUNS, None)
    bound = FILLING_CACHES.get(name, leakcheck.TRACEMALLOC_BOUND)
    report = leakcheck.repeat_query(lconn, sql, runs, leak_check=True, warmup=warmup, traced_bound=bound)
    if report.leaking:
        # A cache that fills during the first runs (re, glob, cryptography's) slows
        # down and stops; a leak keeps its rate. Confirm on the warmed connection.
        report = leakcheck.repeat_query(lconn, sql, 2 * runs, leak_check=True, warmup=warmup, traced_bound=bound)
    assert not report.leaking, f"{name}: {report.growth.verdict()}"
    assert report.runs == len(report.rows) == len(report.seconds)
    assert len(report.growth.traced) == report.runs - report.growth.warmup


# A leaking table: each query keeps what it read, the way a forgotten cache does.
_kept: list[bytes] = []
_c_kept: list[int] = []


@pytest.fixture
def test_tables():
    """Register throwaway tables; drop them from the registry afterwards."""
    names: list[str] = []

    def register(name: str, leak) -> str:
        @streamq.table(
            name, "A table that exists for the leak check tests.", [streamq.Column("n", streamq.INTEGER, "A number.")]
        )
        def gen(ctx):
            leak()
            yield from ({"n": i} for i in range(10))

        names.append(name)
        return name

    yield register
    for name in names:
        schema.REGISTRY.pop(name, None)
    _kept.clear()
    libc = ctypes.CDLL(None)
    libc.free.argtypes = [ctypes.c_void_p]
    for address in _c_kept:
        libc.free(address)
    _c_kept.clear()


def _check(name: str, runs: int = 12) -> leakcheck.Report:
    with streamq.connect(tables=[name]) as conn:
        return leakcheck.repeat_query(conn, f"SELECT * FROM {name}", runs, leak_check=True)


def test_a_python_leak_is_caught(test_tables):
    name = test_tables("leakcheck_python_leak", lambda: _kept.append(os.urandom(4096)))
    report = _check(name)
    assert report.leaking
    assert 4096 <= report.growth.traced_per_run < 2 * 4096
    assert "Python allocations grow" in report.growth.verdict()
    assert set(report.rows) == {10}


def test_a_small_python_leak_is_caught(test_tables):
    # One 1.5 KiB object a run: under a page, invisible to RSS, plain to tracemalloc.
    name = test_tables("leakcheck_small_leak", lambda: _kept.append(os.urandom(1536)))
    report = _check(name, runs=20)
    assert report.leaking
    assert report.growth.traced_per_run > leakcheck.TRACEMALLOC_BOUND


def test_a_c_leak_is_caught_by_rss_alone(test_tables):
    # malloc'd outside Python's allocator: tracemalloc cannot see it, RSS can.
    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    size = 256 * 1024

    def leak():
        address = libc.malloc(size)
        ctypes.memset(address, 1, size)  # touch every page so it is resident
        _c_kept.append(address)

    name = test_tables("leakcheck_c_leak", leak)
    report = _check(name)
    assert report.leaking
    assert report.growth.rss_per_run >= 0.9 * size
    assert report.growth.traced_per_run < leakcheck.TRACEMALLOC_BOUND
    assert "RSS grows" in report.growth.verdict()


def test_the_same_table_without_the_leak_passes(test_tables):
    name = test_tables("leakcheck_no_leak", lambda: None)
    report = _check(name)
    assert not report.leaking, report.growth.verdict()
    assert abs(report.growth.traced_per_run) < 256


def test_slope_is_a_least_squares_fit():
    assert leakcheck.slope([10, 20, 30, 40]) == 10
    assert leakcheck.slope([5, 5, 5]) == 0
    # One step halfway (an arena grabbed once) counts far less than steady growth of the same total.
    assert leakcheck.slope([0] * 10 + [1000] * 10) < 1000 / 19 * 1.6
    assert leakcheck.slope([7]) == 0


def test_p95_and_median_are_measured_values():
    report = leakcheck.Report(sql="", seconds=tuple(i / 1000 for i in range(1, 21)), rows=(1,) * 20)
    assert report.median_ms == pytest.approx(10.5)
    assert report.p95_ms == pytest.approx(19)  # nearest rank: the 19th of 20


# The CLI, with the leaking table shipped as a plugin (a dist-info with an entry point).


@pytest.fixture
def leaky_plugin(tmp_path):
    (tmp_path / "leaky_plugin.py").write_text(
        textwrap.dedent(
            """
            import streamq

            KEPT = []

            @streamq.table("leaky", "Keeps 256 KiB per query.", [streamq.Column("n", streamq.INTEGER, "A number.")],
                           examples=("SELECT * FROM leaky",))
            def gen_leaky(ctx):
                KEPT.append(bytearray(b"x" * 262144))
                yield {"n": len(KEPT)}
            """
        )
    )
    info = tmp_path / "leaky_plugin-0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: leaky-plugin\nVersion: 0\n")
    (info / "entry_points.txt").write_text("[streamq.tables]\nleaky = leaky_plugin\n")
    return tmp_path


def _run(path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(path))
    return subprocess.run(
        [sys.executable, "-m", "streamq", *args], capture_output=True, text=True, timeout=60, cwd=ROOT, env=env
    )


def test_cli_leak_check_exits_1_on_a_leaking_plugin_table(leaky_plugin):
    result = _run(leaky_plugin, "query", "--repeat", "12", "--leak-check", "SELECT * FROM leaky")
    assert result.returncode == 1, result.stderr
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert "leak" in result.stderr and "Python allocations grow" in result.stderr and "RSS grows" in result.stderr
    report = dict(line.split(None, 1) for line in result.stdout.splitlines())
    assert report["verdict"] == "LEAK"
    assert report["rows/run"] == "1"


def test_cli_leak_check_passes_and_reports_json(leaky_plugin):
    result = _run(leaky_plugin, "query", "--json", "--repeat", "10", "--leak-check", "SELECT * FROM uptime")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["runs"] == 10 and report["rows_per_run"] == 1
    assert 0 < report["median_ms"] <= report["p95_ms"]
    leak = report["leak_check"]
    assert leak["leaking"] is False
    assert leak["warmup_runs"] == 3 and leak["measured_runs"] == 7
    assert leak["tracemalloc_bound"] == leakcheck.TRACEMALLOC_BOUND and leak["rss_bound"] == leakcheck.RSS_BOUND


def test_cli_repeat_report_is_aligned():
    result = run_cli("query", "--repeat", "5", "SELECT * FROM users")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["runs", "median", "p95", "rows/run"]
    assert len({line.index(line.split()[1], len(line.split()[0])) for line in lines}) == 1  # one value column
    assert lines[0].split()[1] == "5"
    with open("/etc/passwd") as f:  # users lists /etc/passwd
        assert lines[3].split()[1] == str(sum(1 for line in f if line.strip() and not line.startswith("#")))


@pytest.mark.parametrize(
    "args",
    [
        ("--repeat", "0", "SELECT 1"),
        ("--repeat", "SELECT 1"),
        ("--leak-check", "SELECT 1"),
        ("--repeat", "5", "--leak-check", "SELECT 1"),  # too few runs for a fit after the warm-up
        ("--repeat", "3", "--csv", "SELECT 1"),
        ("--repeat", "3", "--follow", "SELECT 1"),
    ],
)
def test_cli_usage_errors_exit_2(args):
    result = run_cli("query", *args)
    assert result.returncode == 2, (args, result.stderr)
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
