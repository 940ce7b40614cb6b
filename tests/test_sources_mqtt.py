"""The mqtt source and `streamq tail mqtt://...`, against a private mosquitto."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading

from mqtt_broker import free_port, mosquitto, start_broker, unique_topic

import streamq
from conftest import ROOT, follow_while, run_cli, until
from streamq.ring import Rings
from streamq.sources.base import supervise
from streamq.sources.mqtt import MqttSource
from streamq.sources.records import declare_record_table

__all__ = ["mosquitto"]  # the fixture, imported for pytest


def _source(url, topic, table, rings, columns=None):
    options = {"url": url, "topic": topic, "columns": columns or {"n": "INTEGER"}, "qos": 1, "max_line_bytes": 200}
    return MqttSource(table, options, rings)


def _publish_until(broker, topic, payloads, done, every=0.3):
    """Publish ``payloads`` every ``every`` seconds until ``done`` is set (nothing is retained)."""

    def loop():
        while not done.is_set():
            broker.publish(topic, *payloads)
            done.wait(every)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    return thread


async def test_messages_become_rows_with_their_topic(mosquitto):
    topic = unique_topic()
    rings = Rings(capacity=100, max_age=None)
    source = _source(mosquitto.url, f"{topic}/#", "t", rings)
    task = asyncio.create_task(supervise(source))
    try:
        assert await until(lambda: source.connected), source.status.last_error
        await asyncio.to_thread(
            mosquitto.publish,
            f"{topic}/a",
            '{"n": 1}',
            '[{"n": 2}, {"n": 3}, 7]',  # an array: a row per object; 7 is skipped
            '{"n": 4}\n{"n": 5}\nnot json',  # JSON lines in one payload
            b"\xff\xfe binary",
            '{"n": "' + "x" * 300 + '"}',  # over max_line_bytes
        )
        await asyncio.to_thread(mosquitto.publish, f"{topic}/b", '{"n": 6, "more": {"k": 1}}')
        ring = rings.ring("t")
        assert await until(lambda: len(ring) >= 6)
        rows = [row for _, _, row in ring]
        assert [r["n"] for r in rows] == [1, 2, 3, 4, 5, 6]
        assert [r["topic"] for r in rows] == [f"{topic}/a"] * 5 + [f"{topic}/b"]
        assert json.loads(rows[-1]["raw"])["more"] == {"k": 1}
        assert source.status.skipped == 4  # 7, not json, binary, oversize
        assert source.status.errors == 0 and source.status.active
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_broker_down_at_start_then_up(tmp_path):
    port = free_port()
    topic = unique_topic()
    declare_record_table("mqtt_late_events", {"n": "INTEGER"}, source="mqtt.late")
    rings = Rings(capacity=100, max_age=None)
    source = _source(f"mqtt://127.0.0.1:{port}", topic, "mqtt_late_events", rings)
    other = asyncio.create_task(asyncio.sleep(30))  # stands for the other sources: they keep running
    task = asyncio.create_task(supervise(source, first_delay=0.2, max_delay=1.0))
    broker = None
    try:
        assert await until(lambda: source.status.errors >= 1)
        with streamq.connect(rings=rings) as conn:
            row = conn.query("SELECT * FROM streamq_events WHERE name = 'mqtt_late_events'")[0]
        assert row["source"] == "mqtt" and row["kind"] == "mqtt" and row["errors"] >= 1
        assert f"cannot reach MQTT broker mqtt://127.0.0.1:{port}" in row["last_error"]
        assert "refused" in row["last_error"].lower()
        assert not task.done() and not other.done()  # retried with backoff, not given up
        broker = await asyncio.to_thread(start_broker, port)
        assert await until(lambda: source.connected), source.status.last_error
        await asyncio.to_thread(broker.publish, topic, '{"n": 42}')
        assert await until(lambda: len(rings.ring("mqtt_late_events")) == 1)
        with streamq.connect(rings=rings) as conn:
            assert conn.query("SELECT n, topic FROM mqtt_late_events") == [{"n": 42, "topic": topic}]
    finally:
        task.cancel()
        other.cancel()
        await asyncio.gather(task, other, return_exceptions=True)
        if broker is not None:
            broker.stop()


def test_follow_cli_with_an_mqtt_source(mosquitto, tmp_path):
    topic = unique_topic("sensors")
    cfg = tmp_path / "streamq.toml"
    cfg.write_text(
        f'[sources.mqtt.sensors]\nurl = "{mosquitto.url}"\ntopic = "{topic}/#"\n'
        '[sources.mqtt.sensors.columns]\ntemp = "DOUBLE"\nroom = "TEXT"\n'
    )

    def publish(done):
        _publish_until(mosquitto, f"{topic}/kitchen", ['{"temp": 21.5, "room": "kitchen"}'], done).join()

    sql = "SELECT room, temp, topic FROM sensors_events WHERE temp > 20"
    rows = follow_while(publish, cfg, sql, count=2, timeout=15)
    assert rows == [{"room": "kitchen", "temp": 21.5, "topic": f"{topic}/kitchen"}] * 2


def test_tail_an_mqtt_topic(mosquitto):
    topic = unique_topic("sensors")
    url = f"{mosquitto.url}/{topic}/#"
    done = threading.Event()
    payloads = ['{"id": 1, "temp": 19}', '{"id": 2, "temp": 30, "unit": "C"}']
    thread = _publish_until(mosquitto, f"{topic}/hall", payloads, done)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "streamq", "tail", url, "--sql", "SELECT id, unit, topic FROM stream WHERE temp > 25",
             "--count", "2", "--timeout", "15"],
            capture_output=True, text=True, timeout=30, cwd=ROOT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    finally:
        done.set()
        thread.join()
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert rows == [{"id": 2, "unit": "C", "topic": f"{topic}/hall"}] * 2


def test_tail_an_unreachable_broker_fails_with_a_clear_message():
    port = free_port()
    result = run_cli("tail", f"mqtt://127.0.0.1:{port}/x/#", "--timeout", "10")
    assert result.returncode == 1
    assert f"cannot reach MQTT broker mqtt://127.0.0.1:{port}" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


async def test_a_time_field_becomes_the_time_column_and_learned_columns_stay_untyped(mosquitto):
    topic = unique_topic()
    spec = declare_record_table(
        "mqtt_timed_events", {}, source="mqtt.timed", time_field="ts", learned=["reading", "where"]
    )
    assert [c.name for c in spec.columns][-4:] == ["raw", "time", "arrival_time", "eid"]
    rings = Rings(capacity=100, max_age=None)
    source = MqttSource("mqtt_timed_events", {"url": mosquitto.url, "topic": f"{topic}/#", "time": "ts"}, rings)
    task = asyncio.create_task(supervise(source))
    try:
        assert await until(lambda: source.connected), source.status.last_error
        await asyncio.to_thread(
            mosquitto.publish,
            f"{topic}/a",
            '{"ts": 1700000000.25, "reading": 1.5, "where": {"room": 2}}',
            '{"ts": "2023-11-14T22:13:21Z", "reading": "n/a"}',
            '{"reading": 3}',  # no time: counted and skipped
        )
        ring = rings.ring("mqtt_timed_events")
        assert await until(lambda: len(ring) >= 2)
        conn = streamq.connect(rings=rings)
        try:
            rows = conn.query(
                'SELECT reading, "where", topic, time, arrival_time > time AS later FROM mqtt_timed_events'
            )
        finally:
            conn.close()
        assert rows == [
            {"reading": 1.5, "where": '{"room":2}', "topic": f"{topic}/a", "time": 1700000000.25, "later": 1},
            {"reading": "n/a", "where": None, "topic": f"{topic}/a", "time": 1700000001.0, "later": 1},
        ]
        assert await until(lambda: source.status.skipped == 1) and "time" in source.status.last_error
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
