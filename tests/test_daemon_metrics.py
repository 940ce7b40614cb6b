"""Prometheus metrics: scraped over HTTP, parsed by the client library's own text parser, and every
counter checked against the matching streamq_* row read through the control socket."""

from __future__ import annotations

import platform
import urllib.request

from mqtt_broker import free_port
from prometheus_client.parser import text_string_to_metric_families
from sink_harness import FeedDaemon

import streamq
from conftest import retry, run_cli
from streamq._version import __version__
from streamq.daemon.metrics import TABLES

EXTRA = """
[queries.numbers]
sql = "SELECT 1 AS one UNION ALL SELECT 2"
interval = "1h"
[queries.broken]
sql = "SELECT abs(-9223372036854775807 - 1) AS fails_when_run"
interval = "1h"
"""


def scrape(port: int) -> dict[tuple[str, tuple], float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def tables(path) -> dict[str, list[dict]]:
    with streamq.Client(str(path)) as client:
        out = {}
        for table in TABLES:
            names, rows = client.execute(f"SELECT * FROM {table}")
            out[table] = [dict(zip(names, row)) for row in rows]
        return out


def expected_samples(rows_by_table) -> dict[tuple[str, tuple], float]:
    expected = {}
    for table, (labels, metrics) in TABLES.items():
        for row in rows_by_table[table]:
            key = tuple(sorted((label, str(row[column] or "")) for column, label in labels))
            for metric in metrics:
                if metric.column in row:
                    name = metric.name if metric.kind == "gauge" else metric.name.removesuffix("_total") + "_total"
                    expected[(name, key)] = (row[metric.column] or 0) * metric.scale
    return expected


def test_every_metric_equals_its_table_row(tmp_path, request):
    port = free_port()
    daemon = FeedDaemon(tmp_path, 'type = "file"\npath = "out.jsonl"\n', extra=EXTRA, control="control.sock")
    request.addfinalizer(daemon.stop)
    daemon.start("--metrics", f"127.0.0.1:{port}")
    daemon.feed(0, 30)
    control = tmp_path / "control.sock"

    def settled():
        rows = tables(control)
        sinks, schedule = rows["streamq_sinks"], {r["name"]: r for r in rows["streamq_schedule"]}
        done = sinks and sinks[0]["sent"] >= 32 and schedule["broken"]["errors"] >= 1
        return rows if done and sinks[0]["queued"] == 0 else None

    assert retry(settled, timeout=20)

    def parity():
        before = tables(control)
        samples = scrape(port)
        after = tables(control)
        return (before, samples) if before == after else None  # nothing moved while we looked

    found = retry(parity, timeout=20)
    assert found, "the tables kept changing"
    rows, samples = found
    expected = expected_samples(rows)
    assert len(expected) >= 20
    mismatched = {key: (value, samples.get(key)) for key, value in expected.items() if samples.get(key) != value}
    assert not mismatched
    by_query = {r["name"]: r for r in rows["streamq_schedule"]}
    assert samples[("streamq_query_errors_total", (("query", "broken"),))] == by_query["broken"]["errors"] >= 1
    assert samples[("streamq_sink_delivered_rows_total", (("sink", "out"), ("type", "file")))] >= 32
    assert samples[("streamq_source_events_total", (("source", "jsonl"), ("table", "feed_events")))] == 30
    assert samples[("streamq_build_info", (("python", platform.python_version()), ("version", __version__)))] == 1
    assert samples[("process_resident_memory_bytes", ())] > 10_000_000
    assert ("process_cpu_seconds_total", ()) in samples


def test_metrics_off_unless_configured_and_bad_address(tmp_path):
    result = run_cli("run", "--check", "--metrics", "nonsense")
    assert result.returncode == 2 and "--metrics" in result.stderr and "address like" in result.stderr
    cfg = tmp_path / "m.toml"
    cfg.write_text('[metrics]\nlisten = "127.0.0.1:99999"\n[queries.q]\nsql = "SELECT 1"\ninterval = 60\n')
    result = run_cli("run", "--check", "-c", str(cfg))
    assert result.returncode == 2 and "metrics" in result.stderr and "listen" in result.stderr
