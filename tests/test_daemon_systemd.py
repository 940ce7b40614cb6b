"""Running under systemd: the notify protocol on a datagram socket the test opens as NOTIFY_SOCKET,
watchdog pings, journald log lines, --log-level, the unit file (systemd-analyze verify) and logrotate."""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import socket
import struct
import subprocess
import time

import pytest
from sink_harness import FeedDaemon

from conftest import ROOT, retry
from streamq._version import __version__

FILE_SINK = 'type = "file"\npath = "out.jsonl"\nfsync = "always"\n'


class NotifySocket:
    """A datagram socket like systemd's: each message with the sender's pid (SO_PASSCRED)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.messages: list[tuple[float, int, dict[str, str]]] = []  # (monotonic time, pid, fields)

    def receive(self, timeout: float) -> dict[str, str] | None:
        self.sock.settimeout(timeout)
        try:
            data, ancillary, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(12))
        except TimeoutError:
            return None
        pid = -1
        for level, kind, value in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid = struct.unpack("iII", value[:12])[0]
        fields = dict(line.split("=", 1) for line in data.decode().splitlines())
        self.messages.append((time.monotonic(), pid, fields))
        return fields

    def wait_for(self, key: str, timeout: float = 20) -> dict[str, str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            fields = self.receive(max(0.05, deadline - time.monotonic()))
            if fields is not None and key in fields:
                return fields
        raise AssertionError(f"no {key} within {timeout}s; got {[m[2] for m in self.messages]}")

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def notify(tmp_path, request):
    sock = NotifySocket(str(tmp_path / "notify.sock"))
    request.addfinalizer(sock.close)
    return sock


def test_notify_ready_watchdog_reload_stopping(tmp_path, notify, request):
    daemon = FeedDaemon(tmp_path, FILE_SINK)
    request.addfinalizer(daemon.stop)
    env = {**os.environ, "NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "2000000"}
    daemon.start(env=env, wait=False)
    ready = notify.wait_for("READY")
    assert ready["READY"] == "1"
    assert "running" in daemon.stderr()  # READY comes once sources, sinks and queries are up
    assert ready["STATUS"].startswith("1 queries, 1 sources")
    # WATCHDOG_USEC=2 s: a ping every second, from the daemon's own pid
    start = time.monotonic()
    while time.monotonic() - start < 3.5:
        notify.receive(0.5)
    pings = [(at, pid) for at, pid, fields in notify.messages if fields.get("WATCHDOG") == "1"]
    assert len(pings) >= 3, notify.messages
    assert {pid for _, pid in pings} == {daemon.proc.pid}
    assert max(b[0] - a[0] for a, b in itertools.pairwise(pings)) < 2.0  # never a gap systemd would kill for
    assert all("delivered" in fields["STATUS"] for _, _, fields in notify.messages if "WATCHDOG" in fields)
    daemon.proc.send_signal(signal.SIGHUP)
    reloading = notify.wait_for("RELOADING")
    assert int(reloading["MONOTONIC_USEC"]) > 0
    assert notify.wait_for("READY")["READY"] == "1"
    daemon.proc.send_signal(signal.SIGTERM)
    assert notify.wait_for("STOPPING")["STOPPING"] == "1"
    assert daemon.proc.wait(10) == 0


def test_no_notify_socket_no_messages(tmp_path, notify, request):
    """Without NOTIFY_SOCKET (outside systemd) nothing is sent anywhere, and logs keep their form."""
    daemon = FeedDaemon(tmp_path, FILE_SINK)
    request.addfinalizer(daemon.stop)
    env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "JOURNAL_STREAM")}
    daemon.start(env=env)
    assert notify.receive(0.5) is None
    first = daemon.stderr().splitlines()[0]
    assert (
        first.startswith("streamq: ") and f"streamq {__version__} running" in daemon.stderr()
    )  # version in the start line


def test_journald_priority_prefixes(tmp_path, request):
    daemon = FeedDaemon(tmp_path, FILE_SINK)
    request.addfinalizer(daemon.stop)
    stderr_path = tmp_path / f"stderr.{daemon.runs + 1}.txt"
    stderr_path.write_text("")
    st = os.stat(stderr_path)  # the file the daemon's stderr will be: as systemd's journal stream
    daemon.start("--log-level", "debug", env={**os.environ, "JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"})
    lines = daemon.stderr().splitlines()
    assert lines and all(line[:3] in ("<6>", "<7>", "<4>", "<3>") for line in lines), lines
    running = next(line for line in lines if "running" in line)
    assert running.startswith("<6>streamq ") and not any(ch.isdigit() for ch in running[3:11])  # no timestamp
    assert any(line.startswith("<7>") for line in lines)  # --log-level debug


def test_log_level_warning_hides_info(tmp_path, notify, request):
    daemon = FeedDaemon(tmp_path, FILE_SINK)
    request.addfinalizer(daemon.stop)
    daemon.start("--log-level", "warning", env={**os.environ, "NOTIFY_SOCKET": notify.path}, wait=False)
    notify.wait_for("READY")
    assert "running" not in daemon.stderr()


def test_unit_file_verifies(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    unit = (ROOT / "conf" / "streamq.service").read_text()
    for key in ("Type=notify", "WatchdogSec=", "StateDirectory=streamq", "RuntimeDirectory=streamq", "NotifyAccess="):
        assert key in unit
    # verify checks that ExecStart's program exists: point it at this checkout's streamq
    installed = shutil.which("streamq") or str(ROOT / ".venv" / "bin" / "streamq")
    if not os.path.exists(installed):
        pytest.skip("no streamq executable to point ExecStart at")
    (tmp_path / "streamq.service").write_text(unit.replace("/usr/local/bin/streamq", installed))
    result = subprocess.run(
        [analyze, "verify", "--man=no", str(tmp_path / "streamq.service")], capture_output=True, text=True, timeout=60
    )
    problems = [line for line in result.stderr.splitlines() if "streamq.service" in line]
    assert result.returncode == 0 and not problems, result.stderr


def test_logrotate_then_usr1_reopens_the_results_file(tmp_path, request):
    """The real logrotate renames the file; SIGUSR1 (its postrotate) makes the sink write a new one."""
    logrotate = shutil.which("logrotate") or ("/usr/sbin/logrotate" if os.path.exists("/usr/sbin/logrotate") else None)
    if logrotate is None:
        pytest.skip("logrotate is not installed")
    daemon = FeedDaemon(tmp_path, FILE_SINK)
    request.addfinalizer(daemon.stop)
    daemon.start()
    out = tmp_path / "out.jsonl"
    daemon.feed(0, 50)
    assert retry(lambda: out.exists() and out.read_text().count("\n") >= 50, timeout=15)
    shipped = (ROOT / "conf" / "logrotate.d" / "streamq").read_text()
    assert "/var/log/streamq/*.jsonl" in shipped and "SIGUSR1" in shipped
    config = tmp_path / "logrotate.conf"
    config.write_text(
        f"{tmp_path}/*.jsonl {{\n  rotate 3\n  dateext\n  dateformat -%Y%m%d-%s\n  missingok\n"
        f"  postrotate\n    kill -USR1 {daemon.proc.pid}\n  endscript\n}}\n"
    )
    result = subprocess.run(
        [logrotate, "--force", "--state", str(tmp_path / "logrotate.state"), str(config)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    rotated = [p for p in tmp_path.iterdir() if p.name.startswith("out.jsonl-")]
    assert len(rotated) == 1
    daemon.feed(50, 50)
    assert retry(lambda: out.exists() and out.read_text().count("\n") >= 50, timeout=15)
    numbers = [
        int(line.split('"n":')[1].split("}")[0]) for path in (rotated[0], out) for line in path.read_text().splitlines()
    ]
    assert numbers == list(range(100))  # nothing lost, nothing twice, across the rotation
