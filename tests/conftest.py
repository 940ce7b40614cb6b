"""Shared fixtures: a streamq connection, the CLI as a subprocess, and a bounded retry."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import streamq

# The `daemon` fixture: `streamq run` as a child process (tests/daemon_process.py).
pytest_plugins = ("daemon_process",)

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
COMPAT = SHARED / "compat"


@pytest.fixture(scope="session")
def conn():
    connection = streamq.connect()
    yield connection
    connection.close()


def run_cli(*args: str, input: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run `python -m streamq ARGS` and capture text output."""
    return subprocess.run(
        [sys.executable, "-m", "streamq", *args],
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        stdin=None if input is not None else subprocess.DEVNULL,
    )


def query_json(sql: str) -> list[dict]:
    """Rows of `streamq query --json SQL`, asserting it succeeded."""
    result = run_cli("query", "--json", sql)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def follow_while(feed, config, sql: str, *, count: int, timeout: float) -> list[dict]:
    """The rows `streamq query -c CONFIG --follow --json --count N` prints while ``feed(done)``
    makes events in a thread until ``done`` is set (the CLI's source needs a moment to start,
    so the feed keeps going until the CLI has its rows). A failed exit fails the test."""
    import threading

    done = threading.Event()
    thread = threading.Thread(target=feed, args=(done,), daemon=True)
    thread.start()
    try:
        result = run_cli(
            "query", "--follow", "--json", "--count", str(count), "--timeout", str(timeout), "-c", str(config), sql
        )
    finally:
        done.set()
        thread.join()
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def retry(check, *, timeout: float = 5.0, interval: float = 0.05):
    """Call ``check`` until it returns a truthy value or ``timeout`` passes; return its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


async def until(check, timeout: float = 10.0, interval: float = 0.05):
    """:func:`retry` for async tests: awaits ``interval`` between calls, so the loop runs meanwhile."""
    import asyncio

    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        await asyncio.sleep(interval)


def compat_json(name: str) -> dict:
    """A file of ../shared/compat, or skip: a user's fresh clone has no shared/ beside it."""
    path = COMPAT / name
    if not path.exists():
        pytest.skip(f"{path} is absent (../shared is only beside the development checkout)")
    return json.loads(path.read_text())


is_root = os.geteuid() == 0
needs_root = pytest.mark.skipif(not is_root, reason="needs root")
