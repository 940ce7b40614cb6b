"""The audit source against the real kernel, with and without auditd (Debian's auditd package).

Without an audit daemon the source registers as one and must leave the kernel's
audit state (enabled, pid, backlog limit) and its rules as it found them. Beside
a private auditd (own config, log and plugin dir under a temp dir, stopped by
pid) it must only listen: auditd keeps the socket and logs the same records,
which are the ground truth. A system auditd, if one runs, is used but never
stopped; the tests that need no daemon then skip.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest

from conftest import ROOT, is_root, retry, until
from streamq.ring import Rings
from streamq.sources.audit import AuditSource
from streamq.sources.base import SourceUnavailable

AUDITCTL = shutil.which("auditctl") or "/usr/sbin/auditctl"
AUDITD = shutil.which("auditd") or "/usr/sbin/auditd"


def _why_not() -> str | None:
    if not is_root:
        return "the audit netlink socket needs root"
    if not os.path.exists("/proc/self/loginuid"):
        return "this kernel has no audit support (no /proc/self/loginuid)"
    try:
        socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 9).close()
    except OSError as err:
        return f"no audit netlink socket here: {err.strerror}"
    if not os.path.exists(AUDITCTL):
        return "auditctl is not installed (Debian: auditd)"
    return None


pytestmark = pytest.mark.skipif(_why_not() is not None, reason=str(_why_not()))


def auditctl(*args: str) -> str:
    return subprocess.run([AUDITCTL, *args], capture_output=True, text=True, check=True, timeout=30).stdout


def kernel_state() -> dict[str, str]:
    """`auditctl -s` as a dict, less the counters that move on their own."""
    state = dict(line.split(" ", 1) for line in auditctl("-s").splitlines() if " " in line)
    return {k: v for k, v in state.items() if k in ("enabled", "pid", "backlog_limit", "failure", "rate_limit")}


@contextlib.asynccontextmanager
async def audit_sources(*tables: str, mode: str = "auto"):
    rings = Rings(capacity=100_000, max_age=None)
    sources = [AuditSource(t, {"mode": mode, "event_timeout": 0.2}, rings) for t in tables]
    tasks = [asyncio.create_task(s.run()) for s in sources]
    try:
        deadline = time.monotonic() + 5
        while not sources[0].status.mode and time.monotonic() < deadline and not any(t.done() for t in tasks):
            await asyncio.sleep(0.02)
        for task in tasks:
            if task.done():
                task.result()
        yield sources
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def rows(source) -> list[dict]:
    return [r for _, _, r in source.ring.since(0)]


async def send_user_message(text: str) -> int:
    proc = await asyncio.create_subprocess_exec(AUDITCTL, "-m", text)
    assert await proc.wait() == 0
    return proc.pid


@pytest.fixture
def no_daemon():
    """The kernel with no audit daemon; its state and rules are checked (and put back) after."""
    state, rules = kernel_state(), auditctl("-l")
    if state.get("pid", "0") != "0":
        pytest.skip(f"an audit daemon (pid {state['pid']}) holds the socket; these tests would have to stop it")
    yield state
    after, after_rules = kernel_state(), auditctl("-l")
    if after.get("enabled") != state.get("enabled"):
        auditctl("-e", state["enabled"])
    assert (after, after_rules) == (state, rules)


async def test_without_a_daemon_it_registers_and_restores(no_daemon):
    marker = f"streamq-owner-{os.getpid()}"
    async with audit_sources("user_events") as (src,):
        assert src.status.mode.startswith("audit daemon"), src.status.mode
        during = kernel_state()
        assert during["pid"] == str(os.getpid()) and during["enabled"] == "1"
        pid = await send_user_message(marker)
        found = await until(lambda: [r for r in rows(src) if marker in (r["message"] or "")])
    assert len(found) == 1, rows(src)
    row = found[0]
    assert (row["pid"], row["uid"], row["type"]) == (pid, 0, 1005)
    assert row["path"] == os.path.realpath(AUDITCTL)
    assert row["message"].startswith(f"text={marker} exe=")
    assert kernel_state() == no_daemon  # as found: pid 0, enabled and backlog limit back


_FILE_OPS = """
import os, sys
os.chdir(sys.argv[1])
open("a", "w").close()
os.rename("a", "b b")
os.chmod("b b", 0o600)
os.unlink("b b")
"""


async def test_watch_rule_hits_reach_process_file_events(no_daemon, tmp_path):
    watched = tmp_path / "watched"
    watched.mkdir()
    key = f"sq-test-{os.getpid()}"
    auditctl("-w", str(watched), "-p", "wa", "-k", key)
    try:
        async with audit_sources("process_file_events", "user_events") as (files, _users):
            child = await asyncio.create_subprocess_exec(sys.executable, "-c", _FILE_OPS, str(watched))
            assert await child.wait() == 0
            expected = [
                ("open+truncate", f"{watched}/a", None),
                ("rename", f"{watched}/a", f"{watched}/b b"),
                ("chmod", f"{watched}/b b", None),
                ("unlink", f"{watched}/b b", None),
            ]

            def mine():
                return [r for r in rows(files) if r["pid"] == child.pid]

            found = await until(lambda: len(mine()) >= len(expected))
            assert found, rows(files)[-5:]
    finally:
        auditctl("-W", str(watched), "-p", "wa", "-k", key)
    assert [(r["operation"], r["path"], r["dest_path"]) for r in mine()] == expected
    for row in mine():
        assert row["executable"] == os.path.realpath(sys.executable)
        assert (row["cwd"], row["partial"], row["ppid"], row["uid"]) == (str(watched), "false", os.getpid(), "0")


# -- beside auditd ------------------------------------------------------------------------------

AUDITD_CONF = """\
local_events = yes
write_logs = yes
log_file = {dir}/audit.log
log_format = RAW
flush = INCREMENTAL_ASYNC
freq = 1
max_log_file = 50
max_log_file_action = IGNORE
num_logs = 2
name_format = NONE
space_left = 2
space_left_action = IGNORE
admin_space_left = 1
admin_space_left_action = IGNORE
disk_full_action = IGNORE
disk_error_action = IGNORE
plugin_dir = {dir}/plugins
q_depth = 2000
overflow_action = IGNORE
"""


@pytest.fixture
def auditd(tmp_path):
    """An audit daemon holding the socket: a private one, or the system's (then left alone).
    Yields its log file, or None for a system daemon whose log is not where Debian puts it."""
    state, rules = kernel_state(), auditctl("-l")
    if state.get("pid", "0") != "0":
        log = "/var/log/audit/audit.log"
        yield log if os.access(log, os.R_OK) else None
        return
    if not os.path.exists(AUDITD):
        pytest.skip("auditd is not installed (Debian: auditd)")
    (tmp_path / "plugins").mkdir()
    conf = tmp_path / "auditd.conf"
    conf.write_text(AUDITD_CONF.format(dir=tmp_path))
    conf.chmod(0o600)
    daemon = subprocess.Popen([AUDITD, "-n", "-c", str(tmp_path)], stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while kernel_state().get("pid") != str(daemon.pid):
            if daemon.poll() is not None or time.monotonic() > deadline:
                pytest.skip(f"auditd did not start here: {daemon.stderr.read().decode(errors='replace')[-300:]}")
            time.sleep(0.05)
        yield str(tmp_path / "audit.log")
    finally:
        if daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(timeout=15)
        auditctl("-e", state.get("enabled", "0"))  # auditd enables auditing and leaves it on
        assert (kernel_state(), auditctl("-l")) == (state, rules)


def _logged(log: str, marker: str) -> list[str]:
    with open(log, errors="replace") as f:
        return [line for line in f if marker in line]


async def test_beside_auditd_it_listens_and_auditd_keeps_logging(auditd):
    holder = kernel_state()["pid"]
    marker = f"streamq-beside-{os.getpid()}"
    async with audit_sources("user_events") as (src,):
        assert src.status.mode.startswith(f"multicast (pid {holder} holds the socket"), src.status.mode
        pid = await send_user_message(marker)
        found = await until(lambda: [r for r in rows(src) if marker in (r["message"] or "")])
        assert kernel_state()["pid"] == holder  # the daemon keeps the socket
    assert len(found) == 1 and found[0]["pid"] == pid
    if auditd is not None:
        lines = await until(lambda: _logged(auditd, marker))
        assert len(lines) == 1, lines
        logged = re.search(r" pid=(\d+) .* msg='(.*)'", lines[0])
        assert (int(logged.group(1)), logged.group(2)) == (found[0]["pid"], found[0]["message"])


async def test_own_mode_refuses_to_take_the_socket_from_a_daemon(auditd):
    holder = kernel_state()["pid"]
    with pytest.raises(SourceUnavailable, match=f"pid {holder} holds the audit socket"):
        async with audit_sources("user_events", mode="own"):
            pass
    assert kernel_state()["pid"] == holder


def test_follow_gives_the_socket_back_on_sigterm(no_daemon):
    follow = subprocess.Popen(
        [sys.executable, "-m", "streamq", "query", "--follow", "--json", "SELECT message FROM user_events"],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        registered = retry(lambda: kernel_state().get("pid") == str(follow.pid), timeout=15)
        assert registered, (kernel_state(), follow.poll())
        follow.send_signal(signal.SIGTERM)
        assert follow.wait(timeout=15) == 0, follow.stderr.read()
    finally:
        if follow.poll() is None:
            follow.kill()
            follow.wait()
    assert kernel_state() == no_daemon
