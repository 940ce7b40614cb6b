"""syslog_events: util-linux's `logger` writes RFC 3164 and RFC 5424 datagrams to the source's
Unix socket (and over UDP); the rows are checked against what logger was told to send, in
the ring, through `query --follow`, and through a running daemon's stream query."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import tempfile
import time
from datetime import datetime

import pytest
from daemon_process import SINK
from source_harness import rows, running

from conftest import follow_while, retry
from streamq.host.syslogmsg import FACILITIES, MalformedMessage, parse_message
from streamq.ring import Rings
from streamq.sources.base import SourceUnavailable
from streamq.sources.syslog import SyslogSource

pytestmark = pytest.mark.skipif(shutil.which("logger") is None, reason="util-linux's logger is not installed")
HOST = socket.gethostname()


@pytest.fixture
def sock_path():
    """A short path for the socket (sun_path holds 108 bytes; pytest's tmp_path may be longer)."""
    directory = tempfile.mkdtemp(prefix="sq-syslog-")
    yield os.path.join(directory, "log.sock")
    shutil.rmtree(directory, ignore_errors=True)


def logger(*args: str) -> None:
    subprocess.run(["logger", *args], check=True, timeout=10, capture_output=True)


async def alogger(*args: str) -> None:
    await asyncio.to_thread(logger, *args)


def source(path: str | None = None, **options) -> SyslogSource:
    if path is not None:
        options["socket"] = path
    return SyslogSource("syslog_events", options, Rings(capacity=1000, max_age=None))


def listening(s: SyslogSource) -> bool:
    return bool(s.status.mode)


async def wait_rows(s: SyslogSource, n: int, timeout: float = 10.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while len(rows(s)) < n and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    return rows(s)


async def test_rfc3164_and_rfc5424_from_logger(sock_path):
    async with running(source(sock_path), listening) as s:
        before = time.time()
        await alogger("-u", sock_path, "--rfc3164", "-p", "auth.warning", "-t", "mytag", "hello from 3164")
        await alogger("-u", sock_path, "--rfc5424", "-p", "local0.err", "-t", "mytag", "hello from 5424")
        await alogger("-u", sock_path, "--rfc3164", "-i", "-p", "daemon.info", "-t", "withpid", "pid message")
        await alogger("-u", sock_path, "--rfc5424", "-p", "user.debug", "-t", "sd", "--sd-id", "x@1",
                      "--sd-param", 'a="b\\]c"', "after structured data")  # fmt: skip
        got = await wait_rows(s, 4)
        after = time.time()
    assert [(r["severity"], r["facility"], r["host"], r["message"]) for r in got] == [
        (4, "auth", HOST, "hello from 3164"),
        (3, "local0", HOST, "hello from 5424"),
        (6, "daemon", HOST, "pid message"),
        (7, "user", HOST, "after structured data"),
    ]
    assert [r["tag"] for r in got[:2]] + [got[3]["tag"]] == ["mytag", "mytag", "sd"]
    assert got[2]["tag"].startswith("withpid[") and got[2]["tag"][8:-1].isdigit(), got[2]["tag"]
    for r in got:
        # The message's own time as RFC 3339 text: 3164 has whole seconds, 5424 microseconds.
        stamp = datetime.fromisoformat(r["datetime"]).timestamp()
        assert int(before) - 1 <= stamp <= after + 1, r
    assert "." not in got[0]["datetime"] and "." in got[1]["datetime"]
    assert s.status.errors == 0, s.status.last_error


async def test_malformed_datagrams_are_counted_not_raised(sock_path):
    async with running(source(sock_path), listening) as s:
        sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        bad = [b"", b"no pri here", b"<999>Nov 30 13:48:31 h t: x", b"<13>1 2026 short", b"<13>\xff\xfe binary"]
        for data in bad:
            sender.sendto(data, sock_path)
        sender.close()
        await alogger("-u", sock_path, "--rfc3164", "-t", "after", "still listening")
        got = await wait_rows(s, 1)
        assert await asyncio.wait_for(_until_errors(s, len(bad)), 10)
    assert [r["message"] for r in got] == ["still listening"]
    assert s.status.errors == len(bad)
    assert "malformed syslog datagram" in s.status.last_error


async def _until_errors(s, n):
    while s.status.errors < n:
        await asyncio.sleep(0.02)
    return True


async def test_udp_listener_and_stale_socket_file(sock_path):
    # A socket file left by a run that was killed: nobody reads it, so it is replaced.
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    stale.bind(sock_path)
    stale.close()
    async with running(source(sock_path, udp="127.0.0.1:0"), listening) as s:
        port = s.status.mode.rsplit(" ", 1)[-1]
        await alogger("-n", "127.0.0.1", "-P", port, "-d", "--rfc5424", "-p", "mail.notice", "-t", "udp", "over udp")
        got = await wait_rows(s, 1)
    assert [(r["facility"], r["severity"], r["tag"], r["message"]) for r in got] == [("mail", 5, "udp", "over udp")]
    assert not os.path.exists(sock_path)  # removed at stop


async def test_off_unless_configured_and_a_live_socket_is_refused(sock_path):
    with pytest.raises(SourceUnavailable, match=r"\[sources.syslog\] socket"):
        await source().run()
    owner = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    owner.bind(sock_path)
    try:
        with pytest.raises(SourceUnavailable, match="in use"):
            await source(sock_path).run()
        assert os.path.exists(sock_path)  # another process's socket is left alone
    finally:
        owner.close()


def test_parser_on_senders_without_a_hostname():
    # glibc's syslog() to /dev/log: no hostname, the tag with its pid.
    row = parse_message(b"<86>Nov  3 09:05:01 cron[812]: session opened\n", default_host="here")
    assert (row["host"], row["tag"], row["message"], row["facility"], row["severity"]) == (
        "here", "cron[812]", "session opened", "authpriv", 6
    )  # fmt: skip
    assert FACILITIES[16] == "local0" and len(FACILITIES) == 24
    row = parse_message(b"<165>1 2026-11-30T13:48:31Z - - - - - \xef\xbb\xbfbom", default_host="here")
    assert (row["datetime"], row["host"], row["tag"], row["message"]) == ("2026-11-30T13:48:31Z", "here", None, "bom")
    # rsyslog's RSYSLOG_ForwardFormat (what omfwd sends by default): 3164 with an RFC 3339 time.
    row = parse_message(b"<38>2026-11-30T13:48:31.123+01:00 web1 sshd[5]: Accepted key")
    assert (row["datetime"], row["host"], row["tag"], row["message"]) == (
        "2026-11-30T13:48:31.123+01:00", "web1", "sshd[5]", "Accepted key"
    )  # fmt: skip
    with pytest.raises(MalformedMessage):
        parse_message(b"<13>1 2026-11-30T13:48:31Z h a p m [unclosed")


def test_follow_query_reads_the_socket(sock_path, tmp_path):
    cfg = tmp_path / "streamq.toml"
    cfg.write_text(f'[sources.syslog]\nsocket = "{sock_path}"\n')

    def feed(done):
        while not done.is_set():
            if os.path.exists(sock_path):
                subprocess.run(
                    ["logger", "-u", sock_path, "--rfc3164", "-p", "auth.warning", "-t", "mytag", "followed"],
                    capture_output=True,
                    timeout=10,
                )
            done.wait(0.2)

    sql = "SELECT host, severity, facility, tag, message FROM syslog_events WHERE tag = 'mytag'"
    got = follow_while(feed, cfg, sql, count=1, timeout=20)
    assert got == [{"host": HOST, "severity": 4, "facility": "auth", "tag": "mytag", "message": "followed"}]


def test_daemon_stream_query(sock_path, daemon):
    d = daemon(
        SINK
        + f"""
[sources.syslog]
socket = "{sock_path}"
[queries.auth_log]
sql = "SELECT facility, severity, tag, message FROM syslog_events WHERE facility = 'auth'"
mode = "stream"
on = ["syslog_events"]
sinks = ["out"]
"""
    ).start()
    assert retry(lambda: os.path.exists(sock_path), timeout=15), d.stderr()
    logger("-u", sock_path, "--rfc5424", "-p", "user.info", "-t", "other", "not auth")
    logger("-u", sock_path, "--rfc5424", "-p", "auth.warning", "-t", "sshd", "Failed password")
    lines = retry(lambda: d.of("auth_log"), timeout=15)
    assert [line["columns"] for line in lines] == [
        {"facility": "auth", "severity": 4, "tag": "sshd", "message": "Failed password"}
    ], lines
