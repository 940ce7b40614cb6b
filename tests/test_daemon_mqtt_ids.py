"""MQTT is at-least-once across a kill -9; each result line's stable id lets a consumer drop the
resends, so a subscriber that does sees every row exactly once."""

from __future__ import annotations

import json
import shutil

import pytest
from daemon_process import SINK
from mqtt_broker import mosquitto, unique_topic  # noqa: F401  (the fixture)
from test_sinks_mqtt import Subscriber

from conftest import retry

N = 20_000

pytestmark = pytest.mark.skipif(shutil.which("mosquitto_sub") is None, reason="mosquitto_sub is not installed")


def test_a_subscriber_dropping_seen_ids_gets_each_row_once_across_kill_9(tmp_path, daemon, mosquitto):  # noqa: F811
    prefix = unique_topic()
    sub = Subscriber(mosquitto, f"{prefix}/#")
    try:
        sub.wait_ready(f"{prefix}/probe")
        log = tmp_path / "app.jsonl"
        log.write_text("".join(json.dumps({"i": i}) + "\n" for i in range(N)))
        d = daemon(
            SINK.replace('[sinks.out]\ntype = "file"\npath = "out.jsonl"\n', "")
            + f"""
[host]
identifier = "ids-host"
[sinks.broker]
type = "mqtt"
url = "{mosquitto.url}"
topic = "{prefix}/{{host}}/{{query}}"
# 100 lines a message: mosquitto queues at most 1,000 QoS 1 messages for a slow subscriber,
# then drops (max_queued_messages); the test's subscriber must not be the one losing lines.
lines_per_message = 100
[sources.jsonl.app]
path = "{log}"
from_start = true
checkpoint = "app.ckpt"
[queries.rows]
sql = "SELECT i FROM app_events"
mode = "stream"
"""
        )
        topic = f"{prefix}/ids-host/rows"

        def lines() -> list[dict]:
            return [json.loads(line) for payload in sub.payloads(topic) for line in payload.split(b"\n")]

        d.start()
        assert retry(lambda: len(lines()) > N // 4, timeout=60), d.stderr()
        d.kill()  # mid-delivery: some sent lines are still in the outbox
        d.start()
        assert retry(lambda: len({line["id"] for line in lines()}) >= N, timeout=90), (len(lines()), d.stderr())
        assert d.stop()[0] == 0
        received = lines()
        seen: set[str] = set()
        rows = []
        for line in received:  # the consumer: drop a line whose id it has had
            if line["id"] not in seen:
                seen.add(line["id"])
                rows.append(line["columns"]["i"])
        print(f"mqtt kill -9: {len(received)} lines received, {len(received) - len(rows)} resends dropped by id")
        counters = sorted({int(line["id"].split(":")[3]) for line in received})
        assert sorted(rows) == list(range(N)), (counters, (tmp_path / "app.ckpt").read_text())
        by_id = {}
        for line in received:  # a resend is the same line: same id, same row
            assert by_id.setdefault(line["id"], line["columns"]) == line["columns"]
    finally:
        sub.stop()
