"""Hostile clients against a real daemon: its real control socket and a real private mosquitto.

One daemon (host "h1") with a control socket (idle timeout 1 s) and a [fleet] section
serves the module. Each attack gets an answer or a counted drop, never a crash, and the
counters in streamq_control / streamq_fleet say what happened.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import orjson
import pytest
from daemon_process import terminate
from mqtt_broker import mosquitto  # noqa: F401  (the fixture)

import streamq
from conftest import retry
from streamq.daemon import fleet_protocol

KEY = "hostile test key"
IDLE = 1.0
ZEROBLOBS = "with recursive c(x) as (select 1 union all select x+1 from c) select zeroblob(16000000) from c limit 20"
MB = 1024 * 1024


@pytest.fixture(scope="module")
def daemon(mosquitto, request):  # noqa: F811
    root = Path(tempfile.mkdtemp(prefix="sqhost"))  # short: a socket path must fit in 108 bytes
    request.addfinalizer(lambda: shutil.rmtree(root, ignore_errors=True))
    (root / "streamq.toml").write_text(
        f"""
[host]
identifier = "h1"
[state]
path = "{root}/state.db"
[control]
path = "{root}/run/control.sock"
idle_timeout = "{IDLE}s"
deadline = "5s"
[fleet]
url = "{mosquitto.url}"
key = "{KEY}"
"""
    )
    stderr = root / "stderr.txt"
    with open(stderr, "w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamq", "run", "-c", str(root / "streamq.toml")],
            cwd=root,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )

    request.addfinalizer(lambda: terminate(proc))
    assert retry(lambda: "fleet: answering" in stderr.read_text() or proc.poll() is not None, timeout=20)
    assert proc.poll() is None, stderr.read_text()
    proc.socket = root / "run" / "control.sock"  # type: ignore[attr-defined]
    proc.stderr_path = stderr  # type: ignore[attr-defined]
    return proc


def ask(daemon, sql: str):
    with streamq.Client(str(daemon.socket), timeout=30) as client:
        return client.query(sql)


def counters(daemon, table: str) -> dict:
    (row,) = ask(daemon, f"SELECT * FROM {table}")
    return row


def status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(field)


# -- the control socket ------------------------------------------------------------------------


def test_a_reply_is_capped_in_bytes_and_rss_stays_small(daemon):
    before = status_kb(daemon.pid, "VmRSS")
    peak = [before]
    done = threading.Event()

    def watch():  # VmHWM is the peak too, but it includes the start; sample during the query
        while not done.is_set():
            peak[0] = max(peak[0], status_kb(daemon.pid, "VmRSS"))
            time.sleep(0.005)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        with streamq.Client(str(daemon.socket), timeout=60) as client, pytest.raises(streamq.QueryError) as err:
            client.request(ZEROBLOBS)
    finally:
        done.set()
        watcher.join()
    assert "max_reply_bytes" in str(err.value)
    assert "over 16777216 bytes" in str(err.value)
    print(f"daemon RSS: {before / 1024:.1f} MiB before, peak {peak[0] / 1024:.1f} MiB during the zeroblob query")
    assert peak[0] < 200 * 1024, f"peak RSS {peak[0] / 1024:.0f} MiB"
    assert status_kb(daemon.pid, "VmHWM") < 200 * 1024
    assert ask(daemon, "SELECT 1 AS one") == [{"one": 1}]  # and it goes on answering


def test_reindex_is_refused_like_other_non_reads(daemon):
    for sql in ("REINDEX", "/* sneaky */ reindex"):
        with pytest.raises(streamq.QueryError, match="not allowed on the read-only connection: REINDEX"):
            ask(daemon, sql)


def _raw_connect(path: Path) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(str(path))
    return s


def _read_reply(s: socket.socket) -> dict | None:
    data = b""
    while not data.endswith(b"\n"):
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    return orjson.loads(data) if data else None


def test_idle_connections_are_closed_and_a_new_client_is_served(daemon):
    start = counters(daemon, "streamq_control")
    idle = [_raw_connect(daemon.socket) for _ in range(64)]
    try:
        time.sleep(0.2)  # the daemon has accepted them all
        extra = _raw_connect(daemon.socket)
        reply = _read_reply(extra)
        extra.close()
        assert reply is not None and "too many clients" in reply["error"]
        # Past the idle timeout every idle client got an error line and was closed ...
        for s in idle:
            reply = _read_reply(s)
            assert reply is not None and reply["error"].startswith("no complete request within 1s")
            assert s.recv(1) == b""  # closed
        # ... and a new client is served.
        assert ask(daemon, "SELECT 2 AS two") == [{"two": 2}]
    finally:
        for s in idle:
            s.close()
    end = counters(daemon, "streamq_control")
    assert end["refused"] - start["refused"] == 1
    assert end["idle_closed"] - start["idle_closed"] == 64
    print(f"control socket counters: {end}")


def test_a_client_trickling_a_byte_a_second_loses_its_slot(daemon):
    s = _raw_connect(daemon.socket)
    started = time.monotonic()
    closed_after = None
    try:
        for byte in b'{"sql": "SELECT 1"':
            try:
                s.sendall(bytes([byte]))
            except OSError:
                break
            s.settimeout(0.25)
            try:
                if s.recv(65536):  # the error line: the daemon closes now
                    closed_after = time.monotonic() - started
                    break
            except TimeoutError:
                pass
    finally:
        s.close()
    assert closed_after is not None and IDLE <= closed_after < IDLE + 2


# -- the fleet --------------------------------------------------------------------------------


async def _publish(broker, topic: str, payload: bytes, response_topic: str | None, listen: list[str], wait=2.0):
    """Publish one request; every message on the ``listen`` topics within ``wait`` seconds."""
    import aiomqtt
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    seen: list[tuple[str, bytes]] = []
    async with aiomqtt.Client(broker.host, broker.port, protocol=aiomqtt.ProtocolVersion.V5) as client:
        for t in listen:
            await client.subscribe(t, qos=1)
        props = Properties(PacketTypes.PUBLISH)
        if response_topic is not None:
            props.ResponseTopic = response_topic
        props.CorrelationData = b"c1"
        await client.publish(topic, payload, qos=1, properties=props)
        try:
            async with asyncio.timeout(wait):
                async for message in client.messages:
                    if not message.retain:
                        seen.append((message.topic.value, bytes(message.payload)))
        except TimeoutError:
            pass
    return seen


def _reply_to() -> str:
    return f"{fleet_protocol.REPLY_PREFIX}hostile-{uuid.uuid4().hex}"


def _one_reply(broker, body: dict | bytes, reply_to: str) -> dict:
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    seen = asyncio.run(_publish(broker, "streamq/h1/query", payload, reply_to, [reply_to]))
    assert len(seen) == 1, seen
    return json.loads(seen[0][1])


def _signed(sql: str, reply_to: str, **kw) -> dict:
    return fleet_protocol.make_request(sql, target="h1", reply_to=reply_to, key=KEY.encode(), **kw)


def test_a_non_ascii_signature_is_a_counted_refusal_with_a_reply(daemon, mosquitto):  # noqa: F811
    start = counters(daemon, "streamq_fleet")
    reply_to = _reply_to()
    body = dict(_signed("SELECT 1", reply_to), sig="é" * 64)
    reply = _one_reply(mosquitto, body, reply_to)
    assert reply == {"host": "h1", "id": body["id"], "error": "bad signature"}
    assert counters(daemon, "streamq_fleet")["refused"] - start["refused"] == 1
    assert "Traceback" not in daemon.stderr_path.read_text()


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("deadline_ms", 0, "'deadline_ms' must be a positive integer"),
        ("deadline_ms", -5, "'deadline_ms' must be a positive integer"),
        ("max_rows", 0, "'max_rows' must be a positive integer"),
        ("max_rows", -1, "'max_rows' must be a positive integer"),
        ("sql", "SELECT 1\x00; DELETE", None),
        ("target", ["h1"], "'target' must be a string"),
    ],
)
def test_malformed_fields_are_refused_with_a_reply(daemon, mosquitto, field, value, error):  # noqa: F811
    start = counters(daemon, "streamq_fleet")
    reply_to = _reply_to()
    body = fleet_protocol.make_request("SELECT 1", target="h1", reply_to=reply_to, key=None)
    body[field] = value
    body["sig"] = fleet_protocol.signature(body, KEY.encode())
    reply = _one_reply(mosquitto, body, reply_to)
    assert "error" in reply, reply
    if error is not None:
        assert reply["error"] == error
    assert counters(daemon, "streamq_fleet")["refused"] - start["refused"] == 1
    assert "Traceback" not in daemon.stderr_path.read_text()


def test_a_fleet_reply_is_capped_in_bytes(daemon, mosquitto):  # noqa: F811
    reply_to = _reply_to()
    reply = _one_reply(mosquitto, _signed(ZEROBLOBS, reply_to), reply_to)
    assert "max_reply_bytes" in reply["error"]
    assert status_kb(daemon.pid, "VmHWM") < 200 * 1024


@pytest.mark.parametrize(
    "response_topic", ["streamq/h1/status", "streamq/fleet/query", "elsewhere/x", fleet_protocol.REPLY_PREFIX + "+"]
)
def test_replies_go_only_under_the_reply_prefix(daemon, mosquitto, response_topic):  # noqa: F811
    start = counters(daemon, "streamq_fleet")
    body = _signed("SELECT 1", response_topic if "+" not in response_topic else "x")
    listen = [response_topic.replace("+", "#"), "streamq/h1/status"]
    seen = asyncio.run(_publish(mosquitto, "streamq/h1/query", json.dumps(body).encode(), response_topic, listen))
    assert seen == []  # nothing published there, not even a refusal
    end = counters(daemon, "streamq_fleet")
    assert end["dropped"] - start["dropped"] == 1
    assert end["refused"] == start["refused"]
    print(f"fleet counters: {end}")
