"""The MQTT sink against a real mosquitto: order, QoS 1 acks, status and will, outages, auth, TLS."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest
from mqtt_broker import MOSQUITTO, Broker, free_port, start_broker

from conftest import until
from streamq.daemon.state import StateStore
from streamq.errors import ConfigError
from streamq.sinks.delivery import Delivery
from streamq.sinks.mqtt import MqttSink, MqttUnavailable
from streamq.sql.thread import SqlThread

ROOT = Path(__file__).resolve().parent.parent
SUB = shutil.which("mosquitto_sub")
PUB = shutil.which("mosquitto_pub")
pytestmark = pytest.mark.skipif(not (MOSQUITTO and SUB and PUB), reason="needs mosquitto, mosquitto_sub, mosquitto_pub")


def unique_host() -> str:
    return f"h{uuid.uuid4().hex[:10]}"


def own_broker(extra: str = "", port: int | None = None, workdir: str | None = None) -> Broker:
    """mosquitto with extra config lines (auth, TLS, persistence), killed by pid in Broker.stop()."""
    port = port or free_port()
    workdir = workdir or tempfile.mkdtemp(prefix="streamq-mqtt-sink-")
    conf = Path(workdir, "mosquitto.conf")
    # as root, mosquitto drops to user "mosquitto", who cannot read pytest's 0700 tmp dirs
    user = "user root\n" if os.geteuid() == 0 else ""
    conf.write_text(f"listener {port} 127.0.0.1\n{user}{extra}\n")
    with open(Path(workdir, "log"), "ab") as err:
        process = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=err, cwd=workdir)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return Broker("127.0.0.1", port, process, workdir)
        if process.poll() is not None:
            break
        time.sleep(0.02)
    process.kill()
    pytest.fail(f"mosquitto did not start: {Path(workdir, 'log').read_text(errors='replace')[-400:]}")


def stop_only(broker: Broker) -> None:
    """Stop the process but keep its workdir (persistence) for a restart."""
    os.kill(broker.process.pid, signal.SIGTERM)
    broker.process.wait(10)


class Subscriber:
    """mosquitto_sub on ``topic`` in the background; ``messages`` holds (topic, payload) pairs.

    Payloads are printed in hex, so one message is one output line even if it holds newlines."""

    def __init__(self, broker: Broker, topic: str, *args: str) -> None:
        self.broker = broker
        cmd = [SUB, "-h", broker.host, "-p", str(broker.port), "-t", topic, "-q", "1", "-F", "%t %x", *args]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.messages: list[tuple[str, bytes]] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            topic, _, payload = line.rstrip(b"\n").partition(b" ")
            self.messages.append((topic.decode(), bytes.fromhex(payload.decode())))

    def payloads(self, topic: str) -> list[bytes]:
        return [p for t, p in self.messages if t == topic]

    def wait_ready(self, probe_topic: str) -> None:
        """Publish a probe until it comes back: the subscription is then in place."""
        deadline = time.monotonic() + 10
        while not self.payloads(probe_topic):
            assert time.monotonic() < deadline, "subscriber never received the probe"
            subprocess.run([PUB, "-h", self.broker.host, "-p", str(self.broker.port), "-t", probe_topic, "-m", "p"])
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def retained(broker: Broker, topic: str, *args: str) -> bytes | None:
    cmd = [SUB, "-h", broker.host, "-p", str(broker.port), "-t", topic, "-C", "1", "-W", "2", *args]
    out = subprocess.run(cmd, capture_output=True, timeout=10).stdout
    return out.rstrip(b"\n") if out else None


@pytest.fixture(scope="module")
def mosquitto(request) -> Broker:
    """The shared test broker (tests/mqtt_broker.py) for this module's tests, each on its own topics."""
    holder: list[Broker] = []
    request.addfinalizer(lambda: [b.stop() for b in holder])
    holder.append(start_broker())
    return holder[0]


@pytest.fixture
def cleanup(request):
    """Register stop callables (brokers, subscribers) before starting them."""
    items: list = []
    request.addfinalizer(lambda: [item() for item in reversed(items)])
    return items


# -- options ---------------------------------------------------------------------------------


async def test_tls_files_need_mqtts():
    sink = MqttSink("m", {"url": "mqtt://127.0.0.1:1", "ca": "/nonexistent"}, host="h")
    with pytest.raises(ConfigError, match="mqtts"):
        await sink.start()
    sink = MqttSink("m", {"url": "mqtts://127.0.0.1:1", "ca": "/nonexistent/ca.pem"}, host="h")
    with pytest.raises(ConfigError, match="TLS"):
        await sink.start()


# -- delivery --------------------------------------------------------------------------------


async def test_lines_arrive_in_order_per_query(mosquitto, cleanup):
    host = unique_host()
    sub = Subscriber(mosquitto, f"streamq/{host}/#")
    cleanup.append(sub.stop)
    await asyncio.to_thread(sub.wait_ready, f"streamq/{host}/probe")
    sink = MqttSink("m", {"url": mosquitto.url, "batch_max": 40}, host=host)
    await sink.start()
    try:
        sent: dict[str, list[bytes]] = {"q1": [], "q2": []}
        for chunk in range(6):  # interleaved batches, bigger than the in-flight window
            for query in ("q1", "q2"):
                lines = [b'{"q":"%s","n":%d}' % (query.encode(), chunk * 100 + i) for i in range(100)]
                await sink.send(query, lines)  # returns only after every PUBACK
                sent[query] += lines

        def lines_of(topic: str) -> list[bytes]:
            # Batches over the window travel several lines a message (batching under load).
            return [line for payload in sub.payloads(topic) for line in payload.split(b"\n")]

        for query in ("q1", "q2"):
            topic = f"streamq/{host}/{query}"
            await until(lambda t=topic: len(lines_of(t)) >= 600)
            assert lines_of(topic) == sent[query]
            assert len(sub.payloads(topic)) < 600  # 100-line sends over a 40-message window were batched
        small = [b'{"q":"q3","n":%d}' % i for i in range(10)]
        await sink.send("q3", small)  # within the window: one line a message
        await until(lambda: len(sub.payloads(f"streamq/{host}/q3")) >= 10)
        assert sub.payloads(f"streamq/{host}/q3") == small
        assert sub.payloads(f"streamq/{host}/status") == [b"online"]
    finally:
        await sink.close()


async def test_lines_per_message_packs(mosquitto, cleanup):
    host = unique_host()
    sub = Subscriber(mosquitto, f"streamq/{host}/q")
    cleanup.append(sub.stop)
    await asyncio.to_thread(sub.wait_ready, f"streamq/{host}/q")
    sink = MqttSink("m", {"url": mosquitto.url, "lines_per_message": 3, "topic": "streamq/{host}/q"}, host=host)
    await sink.start()
    try:
        await sink.send("ignored", [b"1", b"2", b"3", b"4"])
        await until(lambda: len(sub.messages) >= 3)
        assert [p for t, p in sub.messages if p != b"p"] == [b"1\n2\n3", b"4"]
    finally:
        await sink.close()


async def test_status_online_then_offline(mosquitto):
    host = unique_host()
    status = f"streamq/{host}/status"
    sink = MqttSink("m", {"url": mosquitto.url}, host=host)
    await sink.start()
    try:
        await sink.send("q", [b"{}"])  # connected by now
        assert await asyncio.to_thread(retained, mosquitto, status) == b"online"
    finally:
        await sink.close()
    assert await asyncio.to_thread(retained, mosquitto, status) == b"offline"


_CRASHING_SINK = """
import asyncio, sys, time
from streamq.sinks.mqtt import MqttSink
async def main():
    sink = MqttSink("m", {"url": sys.argv[1], "keepalive": 5}, host=sys.argv[2])
    await sink.start()
    await sink.send("q", [b"{}"])
    print("ready", flush=True)
    await asyncio.sleep(60)
asyncio.run(main())
"""


def test_last_will_after_kill(mosquitto, cleanup):
    host = unique_host()
    status = f"streamq/{host}/status"
    child = subprocess.Popen(
        [sys.executable, "-c", _CRASHING_SINK, mosquitto.url, host], stdout=subprocess.PIPE, cwd=ROOT, text=True
    )
    cleanup.append(lambda: (child.kill(), child.wait()))
    assert child.stdout.readline().strip() == "ready"
    assert retained(mosquitto, status) == b"online"
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    deadline = time.monotonic() + 10
    while retained(mosquitto, status) != b"offline":  # the will: the socket closed without DISCONNECT
        assert time.monotonic() < deadline, "no retained 'offline' from the last will"
        time.sleep(0.1)


async def test_broker_outage_loses_nothing(tmp_path, cleanup):
    """200 rows flow through the outbox while the broker is away for 10 s; all arrive, in order."""
    workdir = str(tmp_path / "broker")
    os.makedirs(workdir)
    persist = f"persistence true\npersistence_location {workdir}/\nallow_anonymous true\n"
    broker = own_broker(persist, workdir=workdir)
    cleanup.append(broker.stop)
    host = unique_host()
    topic = f"streamq/{host}/q"
    # a persistent subscriber session: messages published while it reconnects wait for it
    sub = Subscriber(broker, topic, "-c", "-i", f"sub-{host}")
    cleanup.append(sub.stop)
    await asyncio.to_thread(sub.wait_ready, topic)
    store = StateStore(str(tmp_path / "state.db"))
    sql = SqlThread()
    sink = MqttSink("m", {"url": broker.url}, host=host)
    await sink.start()
    delivery = Delivery(sink, store, sql)
    task = asyncio.create_task(delivery.run())
    state = store.load("q", "select 1", 0)
    try:
        for i in range(200):
            await sql(store.commit, "q", state, [("m", 1, [b'{"n":%d}' % i])])
            delivery.wake.set()
            await asyncio.sleep(0.06)  # 200 rows over ~12 s: most of them while the broker is away
            if i == 20:
                await asyncio.to_thread(stop_only, broker)
                down = time.monotonic()
            if i == 185:  # 10 s later, on the same port and persistence directory
                await asyncio.sleep(max(0.0, 10.0 - (time.monotonic() - down)))
                broker = own_broker(persist, port=broker.port, workdir=workdir)
                cleanup.append(broker.stop)
        expected = [b'{"n":%d}' % i for i in range(200)]

        def first_seen() -> list[bytes]:
            return list(dict.fromkeys(p for p in sub.payloads(topic) if p != b"p"))

        await until(lambda: len(first_seen()) >= 200, timeout=30)  # backoff may wait ~8 s after 10 s down
        assert first_seen() == expected  # none lost; QoS 1 may repeat a cut batch, never reorder
        assert sink.stats.failed >= 1 and sink.stats.spooled >= 1, sink.stats
        assert "connect" in (sink.stats.last_error or "")
        assert await delivery.drain(5)
        assert await sql(store.backlog, "m") == (0, 0)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await sink.close()
        await sql(store.close)
        sql.close()


async def _deliver_one(tmp_path, sink: MqttSink) -> tuple[Delivery, asyncio.Task, StateStore, SqlThread]:
    store = StateStore(str(tmp_path / f"state-{uuid.uuid4().hex[:6]}.db"))
    sql = SqlThread()
    await sql(store.commit, "q", store.load("q", "select 1", 0), [(sink.name, 1, [b'{"n":1}'])])
    delivery = Delivery(sink, store, sql)
    return delivery, asyncio.create_task(delivery.run()), store, sql


async def _stop(task: asyncio.Task, sink: MqttSink, store: StateStore, sql: SqlThread) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await sink.close()
    await sql(store.close)
    sql.close()


async def test_broker_down_at_start_then_up(tmp_path, cleanup):
    port = free_port()
    sink = MqttSink("m", {"url": f"mqtt://127.0.0.1:{port}"}, host=unique_host())
    await sink.start()  # no broker: start() does not fail, delivery waits
    with pytest.raises(MqttUnavailable, match="cannot connect"):
        await sink.send("q", [b"{}"])
    _, task, store, sql = await _deliver_one(tmp_path, sink)
    try:
        assert await until(lambda: sink.stats.failed >= 2)  # retried
        assert f"cannot connect to mqtt://127.0.0.1:{port}" in sink.stats.last_error
        assert sink.stats.sent == 0 and await sql(store.backlog, "m") == (1, 1)
        broker = own_broker("allow_anonymous true", port=port)
        cleanup.append(broker.stop)
        assert await until(lambda: sink.stats.sent == 1, timeout=15), sink.stats
        assert await sql(store.backlog, "m") == (0, 0)
    finally:
        await _stop(task, sink, store, sql)


async def test_wrong_credentials(tmp_path, cleanup):
    passwd = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(passwd), "alice", "right"], check=True, capture_output=True)
    broker = own_broker(f"allow_anonymous false\npassword_file {passwd}")
    cleanup.append(broker.stop)
    host = unique_host()
    bad = MqttSink("m", {"url": broker.url, "username": "alice", "password": "wrong"}, host=host)
    await bad.start()
    _, task, store, sql = await _deliver_one(tmp_path, bad)
    try:
        assert await until(lambda: bad.stats.failed >= 2)
        assert "refused" in bad.stats.last_error and "authori" in bad.stats.last_error.lower(), bad.stats.last_error
        assert bad.stats.sent == 0
    finally:
        await _stop(task, bad, store, sql)
    good = MqttSink("m", {"url": f"mqtt://alice:right@127.0.0.1:{broker.port}"}, host=host)
    await good.start()
    try:
        await good.send("q", [b"{}"])
        status = await asyncio.to_thread(retained, broker, f"streamq/{host}/status", "-u", "alice", "-P", "right")
        assert status == b"online"
    finally:
        await good.close()


async def test_tls(tmp_path, cleanup):
    openssl = shutil.which("openssl")
    if not openssl:
        pytest.skip("openssl is not installed")
    key, cert = tmp_path / "server.key", tmp_path / "server.crt"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    broker = own_broker(f"allow_anonymous true\ncafile {cert}\ncertfile {cert}\nkeyfile {key}")
    cleanup.append(broker.stop)
    host = unique_host()
    sink = MqttSink("m", {"url": f"mqtts://127.0.0.1:{broker.port}", "ca": str(cert)}, host=host)
    await sink.start()
    try:
        await sink.send("q", [b"{}"])
        status = await asyncio.to_thread(retained, broker, f"streamq/{host}/status", "--cafile", str(cert))
        assert status == b"online"
    finally:
        await sink.close()
    # without the CA the certificate does not verify: a clear error, no connection
    untrusted = MqttSink("m", {"url": f"mqtts://127.0.0.1:{broker.port}"}, host=host)
    await untrusted.start()
    try:
        with pytest.raises(MqttUnavailable, match=r"CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
            await untrusted.send("q", [b"{}"])
    finally:
        await untrusted.close()
