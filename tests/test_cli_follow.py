"""`streamq query --follow`: new rows as JSON lines while real processes start."""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import sys
import threading
import time
import uuid

import pytest

from conftest import ROOT, run_cli
from streamq.cli.follow import Follower
from streamq.config.loader import Config
from streamq.sources.base import SourceUnavailable
from streamq.sources.process import open_connector


def _connector_problem() -> str | None:
    try:
        open_connector().close()
    except SourceUnavailable as err:
        return str(err)
    return None


_PROBLEM = _connector_problem()
needs_connector = pytest.mark.skipif(_PROBLEM is not None, reason=f"proc connector unavailable: {_PROBLEM}")


def spawn_marked(marker: str, i: int) -> int:
    """A short process whose command line carries ``marker``; returns its pid."""
    child = subprocess.Popen(["sh", "-c", "sleep 0.05", f"{marker}-{i}"])
    child.wait()
    return child.pid


class Trigger:
    """From a thread: after ``delay``, start marked processes every ``every`` s until stopped."""

    def __init__(self, marker: str, *, delay: float = 0.5, every: float = 0.25) -> None:
        self.marker, self.delay, self.every = marker, delay, every
        self.pids: list[int] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        if self.stop.wait(self.delay):
            return
        i = 0
        while not self.stop.is_set():
            self.pids.append(spawn_marked(self.marker, i))
            i += 1
            self.stop.wait(self.every)

    def __enter__(self) -> Trigger:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(5)


def consecutive_in(got: list[int], spawned: list[int]) -> bool:
    """``got`` is a run of consecutive spawned pids: in order, none twice, none skipped.

    (The first marked process may start before the CLI's source is up on a loaded host.)"""
    if not got or got[0] not in spawned:
        return False
    start = spawned.index(got[0])
    return spawned[start : start + len(got)] == got


def follow_cli(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "streamq", "query", "--follow", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
    )


def marker_sql(marker: str, columns: str = "pid, cmdline") -> str:
    return f"SELECT {columns} FROM process_events WHERE action = 'exec' AND cmdline LIKE '%{marker}%'"


@needs_connector
def test_follow_json_count_2():
    marker = f"sqtf{uuid.uuid4().hex[:10]}"
    with Trigger(marker) as trigger:
        result = run_cli(
            "query", "--follow", "--json", "--count", "2", "--timeout", "10", marker_sql(marker), timeout=20
        )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    rows = [json.loads(line) for line in lines]
    assert [set(r) for r in rows] == [{"pid", "cmdline"}] * 2
    assert consecutive_in([r["pid"] for r in rows], trigger.pids)
    first = trigger.pids.index(rows[0]["pid"])
    assert [r["cmdline"] for r in rows] == [f"sh -c sleep 0.05 {marker}-{i}" for i in (first, first + 1)]


@needs_connector
def test_follow_flushes_each_row_as_it_comes():
    marker = f"sqtf{uuid.uuid4().hex[:10]}"
    proc = follow_cli("--json", "--count", "3", "--timeout", "15", marker_sql(marker, "pid"))
    try:
        got: list[str] = []
        reader = threading.Thread(target=lambda: got.extend(iter(proc.stdout.readline, "")), daemon=True)
        reader.start()
        spawned: list[int] = []
        deadline = time.monotonic() + 10
        while not got and time.monotonic() < deadline:  # until the CLI's source is up and prints
            spawned.append(spawn_marked(marker, len(spawned)))
            end = time.monotonic() + 0.3
            while not got and time.monotonic() < end:
                time.sleep(0.02)
        # One row printed, and the command still running (count 3): the line was flushed on its own.
        assert got and json.loads(got[0])["pid"] in spawned
        assert proc.poll() is None
        with Trigger(marker, delay=0.0, every=0.1):
            assert proc.wait(10) == 0
        reader.join(5)
        assert len(got) == 3 and len({json.loads(line)["pid"] for line in got}) == 3
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@needs_connector
def test_follow_timeout_without_events_prints_nothing():
    marker = f"sqtf{uuid.uuid4().hex[:10]}"
    t0 = time.monotonic()
    result = run_cli("query", "--follow", "--json", "--timeout", "1", marker_sql(marker), timeout=20)
    took = time.monotonic() - t0
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and result.stderr == ""
    assert 1.0 <= took < 8


@pytest.mark.parametrize("sql", ["SELECT 1", "SELECT pid FROM processes", "SELECT * FROM users"])
def test_follow_needs_an_event_table(sql):
    result = run_cli("query", "--follow", "--timeout", "5", sql, timeout=20)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "--follow needs a query over an event table" in lines[0]
    assert "process_events" in lines[0]


def test_count_without_follow_is_a_usage_error():
    result = run_cli("query", "--count", "2", "SELECT 1")
    assert result.returncode == 2 and "--follow" in result.stderr


def test_follow_bad_sql_is_one_line():
    result = run_cli("query", "--follow", "--timeout", "5", "SELECT nope FROM process_events", timeout=20)
    assert result.returncode != 0 and len(result.stderr.splitlines()) == 1 and "nope" in result.stderr


@needs_connector
def test_follow_join_with_users():
    marker = f"sqtf{uuid.uuid4().hex[:10]}"
    sql = (
        "SELECT p.pid, u.username, u.uid FROM process_events p JOIN users u USING (uid) "
        f"WHERE p.action = 'exec' AND p.cmdline LIKE '%{marker}%'"
    )
    with Trigger(marker) as trigger:
        result = run_cli("query", "--follow", "--json", "--count", "1", "--timeout", "10", sql, timeout=20)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    me = pwd.getpwuid(os.getuid())
    assert len(rows) == 1 and rows[0]["pid"] in trigger.pids
    assert rows[0] == {"pid": rows[0]["pid"], "username": me.pw_name, "uid": me.pw_uid}


@needs_connector
async def test_follower_sees_each_event_once():
    marker = f"sqtf{uuid.uuid4().hex[:10]}"
    follower = Follower(Config())
    emitted: list[dict] = []
    try:
        await follower.open()
        with Trigger(marker, delay=0.4, every=0.05) as trigger:
            n = await follower.follow(
                marker_sql(marker, "pid, eid"),
                lambda names, row: emitted.append(dict(zip(names, row))),
                count=8,
                timeout=10,
            )
    finally:
        await follower.close()
    assert n == 8
    pids = [r["pid"] for r in emitted]
    assert consecutive_in(pids, trigger.pids)
    eids = [r["eid"] for r in emitted]
    assert eids == sorted(eids) and len(set(eids)) == 8
    assert follower.rings.status["process_events"].source == "process"
