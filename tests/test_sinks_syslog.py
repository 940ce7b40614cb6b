"""The syslog sink against local listeners (TCP with octet counting, UDP, a unix datagram socket)
that parse each frame by RFC 5424's grammar."""

from __future__ import annotations

import re
import socket
import threading

import orjson
import pytest
from sink_harness import Outbox, result_lines, until

from conftest import run_cli
from streamq.sinks.syslog import SyslogSink, SyslogUnavailable

# RFC 5424 section 6: HEADER SP STRUCTURED-DATA [SP MSG], with NILVALUE "-" allowed in each field.
RFC5424 = re.compile(
    rb"<(?P<pri>\d{1,3})>1 (?P<time>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?(?:Z|[+-]\d\d:\d\d)|-) "
    rb"(?P<host>[\x21-\x7e]{1,255}) (?P<app>[\x21-\x7e]{1,48}) (?P<procid>[\x21-\x7e]{1,128}) "
    rb"(?P<msgid>[\x21-\x7e]{1,32}) (?P<sd>-|(?:\[[^\]]*\])+)(?: (?P<msg>.*))?\Z",
    re.S,
)


def parse(frame: bytes) -> dict:
    m = RFC5424.match(frame)
    assert m, f"not an RFC 5424 message: {frame[:120]!r}"
    return m.groupdict()


def octet_frames(data: bytes) -> list[bytes]:
    """RFC 6587 octet counting: MSG-LEN SP SYSLOG-MSG, repeated."""
    frames = []
    while data:
        length, _, rest = data.partition(b" ")
        n = int(length)
        frames.append(rest[:n])
        data = rest[n:]
    return frames


class TcpListener:
    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        self.data = b""
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                while chunk := conn.recv(65536):
                    self.data += chunk

    def frames(self) -> list[bytes]:
        return octet_frames(self.data)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def cleanup(request):
    items: list = []
    request.addfinalizer(lambda: [item() for item in reversed(items)])
    return items


async def test_tcp_octet_counted_rfc5424(tmp_path, cleanup):
    listener = TcpListener()
    cleanup.append(listener.close)
    sink = SyslogSink("s", {"type": "syslog", "url": f"tcp://127.0.0.1:{listener.port}", "facility": "local3"},
                      host="web 01")  # fmt: skip
    lines = result_lines("new ports", 2, [{"port": 22, "text": "a\nb ü"}, {"port": 443}])
    async with Outbox(tmp_path, sink) as box:
        await box.commit("new ports", lines)
        assert await until(lambda: len(listener.frames()) == 2)
    messages = [parse(frame) for frame in listener.frames()]
    assert [m["msg"] for m in messages] == lines  # newlines in values stay inside one frame
    first = messages[0]
    assert int(first["pri"]) == 19 * 8 + 6  # local3.info
    assert first["time"] == b"2024-01-01T00:00:00Z"  # the run's unixTime
    assert (first["host"], first["app"], first["msgid"], first["sd"]) == (b"web_01", b"streamq", b"new_ports", b"-")
    assert orjson.loads(first["msg"])["columns"]["text"] == "a\nb ü"


async def test_udp_one_datagram_a_message(tmp_path, cleanup):
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    cleanup.append(receiver.close)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(5)
    sink = SyslogSink("s", {"type": "syslog", "url": f"udp://127.0.0.1:{receiver.getsockname()[1]}"}, host="h1")
    lines = result_lines("q", 1, [{"i": i} for i in range(5)])
    async with Outbox(tmp_path, sink) as box:
        await box.commit("q", lines)
        assert await until(lambda: sink.stats.sent == 5)
    messages = [parse(receiver.recv(65536)) for _ in lines]
    assert [m["msg"] for m in messages] == lines and {m["msgid"] for m in messages} == {b"q"}


async def test_unix_datagram_socket(tmp_path, cleanup):
    path = str(tmp_path / "log.sock")
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    cleanup.append(receiver.close)
    receiver.bind(path)
    receiver.settimeout(5)
    sink = SyslogSink("s", {"type": "syslog", "url": f"unix://{path}", "severity": "warning"}, host="h1")
    await sink.start()
    try:
        await sink.send("q", result_lines("q", 1, [{"i": 1}]))
    finally:
        await sink.close()
    message = parse(receiver.recv(65536))
    assert int(message["pri"]) == 1 * 8 + 4 and message["msgid"] == b"q"


async def test_nobody_listening_raises(tmp_path):
    sink = SyslogSink("s", {"type": "syslog", "url": f"unix://{tmp_path}/none.sock"}, host="h1")
    await sink.start()
    with pytest.raises(SyslogUnavailable, match=r"none\.sock"):
        await sink.send("q", result_lines("q", 1, [{"i": 1}]))
    await sink.close()


def test_bad_url_is_a_config_error(tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text('[sinks.s]\ntype = "syslog"\nurl = "http://x"\n[queries.q]\nsql = "SELECT 1"\ninterval = 60\n')
    result = run_cli("run", "--check", "-c", str(cfg))
    assert result.returncode == 2 and "tcp://host:port" in result.stderr, result.stderr
