"""process_events from the proc connector (real processes) and the /proc polling fallback."""

from __future__ import annotations

import asyncio
import functools
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict

import pytest

from conftest import until
from streamq.ring import Rings
from streamq.sources.base import SourceUnavailable
from streamq.sources.process import (
    PROC_EVENT_EXEC,
    PROC_EVENT_EXIT,
    PROC_EVENT_FORK,
    ProcessSource,
    exit_code_of,
    open_connector,
    parse_messages,
)

DEFAULTS = asdict(ProcessSource.Options())

wait_for = functools.partial(until, timeout=5.0, interval=0.02)


def connector_problem() -> str | None:
    try:
        open_connector().close()
    except SourceUnavailable as err:
        return str(err)
    return None


_PROBLEM = connector_problem()
needs_connector = pytest.mark.skipif(_PROBLEM is not None, reason=f"proc connector unavailable: {_PROBLEM}")


@pytest.fixture
def bindir():
    """A world-readable tmp dir holding a copy of sh under a name only this test uses."""
    path = tempfile.mkdtemp(prefix="sqt-proc-")
    os.chmod(path, 0o755)
    shell = os.path.join(path, f"sqtsh{os.getpid()}")
    shutil.copy2(os.path.realpath("/bin/sh"), shell)
    os.chmod(shell, 0o755)
    yield path, shell
    shutil.rmtree(path, ignore_errors=True)


async def started(options: dict):
    rings = Rings(capacity=100_000, max_age=None)
    source = ProcessSource("process_events", {**DEFAULTS, **options}, rings)
    task = asyncio.create_task(source.run())
    assert await wait_for(lambda: source.status.mode or task.done(), timeout=3.0)
    await asyncio.sleep(0.1)  # the socket is subscribed before mode is set; let the reader thread start
    if task.done():
        task.result()  # surface the failure
    return rings.ring("process_events"), source, task


async def stop(task: asyncio.Task) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def rows_of(ring, pid: int, action: str) -> list[dict]:
    return [row for _, _, row in ring.since(0) if row.get("pid") == pid and row.get("action") == action]


@needs_connector
async def test_exec_and_exit_rows_of_real_processes(bindir):
    path, shell = bindir
    ring, source, task = await started({"mode": "netlink"})
    try:
        assert source.status.mode.startswith("netlink") and source.status.kind == "netlink"
        arg = os.fsdecode(b"caf\xff\xe9")  # not UTF-8
        child = subprocess.Popen(
            [shell, "-c", "sleep 0.3; exit 7", "sqtname", "plain", arg],
            cwd=path,
            user=65534,
            group=65534,
        )
        killed = subprocess.Popen([shell, "-c", "sleep 30", "sqtkill"], cwd=path)
        assert await wait_for(lambda: rows_of(ring, killed.pid, "exec"))
        killed.send_signal(signal.SIGKILL)
        assert child.wait(10) == 7 and killed.wait(10) == -9

        execs = await wait_for(lambda: rows_of(ring, child.pid, "exec"))
        assert len(execs) == 1
        row = execs[0]
        assert row["path"] == shell
        assert row["cmdline"] == f"{shell} -c sleep 0.3; exit 7 sqtname plain caf\\xff\\xe9"
        assert row["cmdline_size"] == len(os.fsencode(row["cmdline"].replace("\\xff\\xe9", "xx"))) + 1
        assert row["cwd"] == path
        assert (row["uid"], row["euid"], row["gid"], row["egid"]) == (65534, 65534, 65534, 65534)
        assert row["parent"] == os.getpid()
        assert row["syscall"] == "execve" and isinstance(row["uptime"], int)
        st = os.stat(shell)
        assert row["mode"] == f"{st.st_mode & 0o7777:04o}" and row["owner_uid"] == st.st_uid
        assert row["mtime"] == int(st.st_mtime)

        exits = await wait_for(lambda: rows_of(ring, child.pid, "exit"))
        assert [r["exit_code"] for r in exits] == [7]
        assert exits[0].get("parent") in (None, os.getpid())
        forks = rows_of(ring, child.pid, "fork")
        assert len(forks) == 1 and forks[0]["parent"] == os.getpid()
        # `sleep` inside the child: its own fork/exec/exit, with the child as parent.
        sleeps = [r for _, _, r in ring.since(0) if r.get("action") == "exec" and r.get("parent") == child.pid]
        assert sleeps and sleeps[0]["cmdline"] == "sleep 0.3"

        killed_exit = await wait_for(lambda: rows_of(ring, killed.pid, "exit"))
        assert [r["exit_code"] for r in killed_exit] == [137]
    finally:
        await stop(task)


@needs_connector
async def test_threads_are_not_processes():
    ring, _source, task = await started({"mode": "netlink"})
    try:
        first = ring.last_eid
        tids: list[int] = []

        def work() -> None:
            tids.append(threading.get_native_id())

        threads = [threading.Thread(target=work) for _ in range(5)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        marker = subprocess.run(["/bin/true", "sqt-thread-marker"], check=True)  # something to wait for
        assert marker.returncode == 0
        assert await wait_for(
            lambda: any(r.get("cmdline", "").endswith("sqt-thread-marker") for _, _, r in ring.since(first))
        )
        pids = {r.get("pid") for _, _, r in ring.since(first)}
        assert len(tids) == 5 and not pids & set(tids)
    finally:
        await stop(task)


@needs_connector
async def test_stop_is_prompt_and_closes_the_socket():
    _ring, source, task = await started({"mode": "netlink"})
    before = len(os.listdir("/proc/self/fd"))
    t0 = time.monotonic()
    await stop(task)
    assert time.monotonic() - t0 < 2.0
    assert len(os.listdir("/proc/self/fd")) <= before - 3  # socket and wake pipe closed
    assert not any(t.name == f"streamq-{source.name}" for t in threading.enumerate())


async def test_poll_fallback_sees_exec_and_exit(bindir):
    path, shell = bindir
    ring, source, task = await started({"mode": "poll", "poll_interval": 0.05})
    try:
        assert "poll" in source.status.mode and source.status.kind == "poll"
        child = subprocess.Popen([shell, "-c", "sleep 0.5; exit 3", "sqtpoll"], cwd=path)
        execs = await wait_for(lambda: rows_of(ring, child.pid, "exec"))
        assert len(execs) == 1
        row = execs[0]
        assert row["syscall"] == "poll" and row["path"] == shell and row["cwd"] == path
        assert row["cmdline"].startswith(f"{shell} -c sleep 0.5")
        assert row["parent"] == os.getpid()
        child.wait(10)
        exits = await wait_for(lambda: rows_of(ring, child.pid, "exit"))
        assert len(exits) == 1 and exits[0].get("exit_code") is None  # polling cannot know it
    finally:
        await stop(task)


# -- the parser, on constructed datagrams -----------------------------------------------------


def datagram(what: int, body: bytes, ts_ns: int = 5_000_000_000) -> bytes:
    event = struct.pack("=IIQ", what, 0, ts_ns) + body
    cn = struct.pack("=IIIIHH", 1, 1, 0, 0, len(event), 0) + event
    return struct.pack("=IHHII", 16 + len(cn), 3, 0, 0, 0) + cn


def test_parse_fork_exec_exit():
    data = (
        datagram(PROC_EVENT_FORK, struct.pack("=IIII", 100, 100, 200, 200))
        + datagram(PROC_EVENT_FORK, struct.pack("=IIII", 100, 100, 201, 100))  # a thread
        + datagram(PROC_EVENT_EXEC, struct.pack("=II", 200, 200))
        + datagram(PROC_EVENT_EXIT, struct.pack("=IIIIII", 200, 200, 3 << 8, 17, 100, 100))
        + datagram(PROC_EVENT_EXIT, struct.pack("=IIII", 201, 100, 0, 0))  # thread exit: not the process
        + datagram(PROC_EVENT_EXIT, struct.pack("=IIII", 300, 300, signal.SIGKILL, 17))  # old kernel: no parent
        + datagram(0x40, b"\0" * 16)  # an event kind we do not report (uid change)
    )
    assert parse_messages(data) == [
        ("fork", {"pid": 200, "parent": 100, "uptime": 5}),
        ("exec", {"pid": 200, "uptime": 5}),
        ("exit", {"pid": 200, "exit_code": 3, "uptime": 5, "parent": 100}),
        ("exit", {"pid": 300, "exit_code": 137, "uptime": 5}),
    ]


def test_parse_truncated_and_garbage():
    good = datagram(PROC_EVENT_EXEC, struct.pack("=II", 9, 9))
    assert parse_messages(b"") == []
    assert parse_messages(good[:10]) == []
    assert parse_messages(struct.pack("=IHHII", 4, 3, 0, 0, 0) + good) == []  # bad length stops parsing
    assert parse_messages(good + good[:20]) == [("exec", {"pid": 9, "uptime": 5})]


def test_exit_code_of():
    assert exit_code_of(0) == 0
    assert exit_code_of(7 << 8) == 7
    assert exit_code_of(signal.SIGKILL) == 137
    assert exit_code_of(signal.SIGSEGV | 0x80) == 128 + signal.SIGSEGV  # core dumped


@needs_connector
async def test_a_burst_under_load_keeps_path_cmdline_cwd_uid_of_processes_living_50ms(bindir):
    """600 processes living 60 ms, started at once while 3,000 /bin/true and two busy loops
    compete for the 2 CPUs: every exec row has path, cmdline, cwd and uid (default priority)."""
    path, _shell = bindir
    ring, source, task = await started({"mode": "netlink"})
    if "refused" in source.status.mode:
        pytest.skip(f"the reader's priority was refused here: {source.status.mode}")
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        flood = subprocess.Popen(["sh", "-c", "for i in $(seq 1 3000); do /bin/true; done"])
        burst = f"for i in {' '.join(map(str, range(100)))}; do sleep 0.06 & done; wait"  # no $(seq): one child kind
        shells = [subprocess.Popen(["sh", "-c", burst], cwd=path) for _ in range(6)]
        for shell in shells:
            assert shell.wait(60) == 0
        assert flood.wait(120) == 0
    finally:
        for b in busy:
            b.kill()
            b.wait()
    try:
        parents = {shell.pid for shell in shells}

        def sleeps():  # the exec rows of the shells' children, found through their fork rows
            rows = [r for _, _, r in ring.since(0)]
            children = {r["pid"] for r in rows if r.get("action") == "fork" and r.get("parent") in parents}
            return [r for r in rows if r.get("action") == "exec" and r["pid"] in children]

        rows = await wait_for(lambda: len(sleeps()) >= 600 and sleeps(), timeout=10)
        assert rows, f"{len(sleeps())} of 600 exec rows"
        incomplete = [r for r in rows if None in (r.get("path"), r.get("cmdline"), r.get("cwd"), r.get("uid"))]
        assert not incomplete, f"{len(incomplete)} of {len(rows)} incomplete, e.g. {incomplete[:2]}"
        assert {r["cmdline"] for r in rows} == {"sleep 0.06"} and {r["cwd"] for r in rows} == {path}
    finally:
        await stop(task)
