"""Prometheus metrics: the streamq_* tables on an HTTP endpoint, served by the official client library.

Off unless configured (``[metrics] listen`` or ``streamq run --metrics ADDR``), on
loopback by default. Every scrape reads the same rows as ``SELECT * FROM streamq_events``,
``streamq_schedule`` and ``streamq_sinks`` (run on the daemon's SQL thread, where those
tables live), so a counter always equals its table's value at that moment. Names follow
Prometheus' rules: the ``streamq_`` prefix, base units (seconds, bytes), ``_total``
counters, ``streamq_build_info``; the process's RSS and CPU come from the client's
standard ``process_*`` collector.
"""

from __future__ import annotations

import asyncio
import logging
import platform
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, ProcessCollector, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily

from .._version import __version__
from ..config.sections import parse_listen
from ..config.validation import Validator
from ..sql.connection import connect
from .handle import DaemonServices

log = logging.getLogger("streamq.daemon.metrics")
SCRAPE_TIMEOUT = 8.0  # seconds; Prometheus' default scrape timeout is 10


@dataclass(frozen=True)
class Metric:
    """One column of a streamq_* table as a metric family."""

    column: str
    name: str
    kind: str  # "counter" or "gauge"
    help: str
    scale: float = 1.0  # milliseconds in the table -> seconds here


# table -> (label columns as (column, label), metrics). A column a table lacks is skipped,
# so a column added to a table later needs one line here.
TABLES: dict[str, tuple[tuple[tuple[str, str], ...], tuple[Metric, ...]]] = {
    "streamq_events": (
        (("name", "table"), ("source", "source")),
        (
            Metric("events", "streamq_source_events_total", "counter", "Events appended to the table's ring."),
            Metric("dropped", "streamq_source_dropped_events_total", "counter", "Events pushed out of a full ring."),
            Metric("expired", "streamq_source_expired_events_total", "counter", "Events removed past max_age."),
            Metric("late", "streamq_source_late_events_total", "counter", "Events behind the watermark."),
            Metric("overflows", "streamq_source_overflows_total", "counter", "Kernel or library queue overflows."),
            Metric("errors", "streamq_source_errors_total", "counter", "Errors the source met."),
            Metric("skipped", "streamq_source_skipped_records_total", "counter", "Malformed or oversize input."),
            Metric("buffered", "streamq_ring_events", "gauge", "Events held in the ring now."),
            Metric("capacity", "streamq_ring_capacity_events", "gauge", "Ring capacity in events."),
        ),
    ),
    "streamq_schedule": (
        (("name", "query"),),
        (
            Metric("executions", "streamq_query_executions_total", "counter", "Completed runs."),
            Metric("errors", "streamq_query_errors_total", "counter", "Failed runs."),
            Metric("rows_out", "streamq_query_rows_total", "counter", "Result rows produced."),
            Metric("output_size", "streamq_query_output_bytes_total", "counter", "Bytes of result lines."),
            Metric("wall_time_ms", "streamq_query_wall_seconds_total", "counter", "Wall time.", 0.001),
            Metric("user_time", "streamq_query_user_cpu_seconds_total", "counter", "User CPU time.", 0.001),
            Metric("system_time", "streamq_query_system_cpu_seconds_total", "counter", "System CPU time.", 0.001),
            Metric("denylisted", "streamq_query_denylisted", "gauge", "1 while the query rests after overruns."),
        ),
    ),
    "streamq_sinks": (
        (("name", "sink"), ("type", "type")),
        (
            Metric("sent", "streamq_sink_delivered_rows_total", "counter", "Rows delivered."),
            Metric("failed", "streamq_sink_failed_attempts_total", "counter", "Delivery attempts that failed."),
            Metric("dropped", "streamq_sink_dropped_rows_total", "counter", "Rows dropped past max_backlog_rows."),
            Metric("rejected", "streamq_sink_rejected_rows_total", "counter", "Rows the receiver refused for good."),
            Metric("queued", "streamq_sink_queued_rows", "gauge", "Rows waiting in the outbox now."),
            Metric("spooled", "streamq_sink_spooled_rows", "gauge", "Most rows that waited while the sink failed."),
            Metric("oldest_age", "streamq_sink_oldest_undelivered_seconds", "gauge", "Age of the oldest waiting row."),
        ),
    ),
}


def families(tables: dict[str, list[dict[str, Any]]]) -> Iterator[Any]:
    """Metric families from the rows of each streamq_* table."""
    for table, (labels, metrics) in TABLES.items():
        rows = tables.get(table, [])
        present = set(rows[0]) if rows else set()
        for metric in metrics:
            if metric.column not in present:
                continue
            kind = CounterMetricFamily if metric.kind == "counter" else GaugeMetricFamily
            name = metric.name.removesuffix("_total") if metric.kind == "counter" else metric.name
            family = kind(name, metric.help, labels=[label for _, label in labels])
            for row in rows:
                value = row[metric.column] or 0
                family.add_metric([str(row[column] or "") for column, _ in labels], value * metric.scale)
            yield family


class TableCollector:
    """Reads the tables on the daemon's SQL thread at each scrape (called from the HTTP thread)."""

    def __init__(self, daemon: DaemonServices, conn: Any, loop: asyncio.AbstractEventLoop) -> None:
        self.daemon, self.conn, self.loop = daemon, conn, loop

    def _rows(self) -> dict[str, list[dict[str, Any]]]:
        return {table: self.conn.query(f"SELECT * FROM {table}") for table in TABLES}

    def collect(self) -> Iterator[Any]:
        info = InfoMetricFamily("streamq_build", "streamq's version and Python.")
        info.add_metric([], {"version": __version__, "python": platform.python_version()})
        yield info
        future = asyncio.run_coroutine_threadsafe(self.daemon.sql(self._rows), self.loop)
        try:
            tables = future.result(SCRAPE_TIMEOUT)
        except Exception as err:  # a stuck SQL thread: the scrape says so rather than hang
            future.cancel()
            log.warning("metrics: reading the streamq_* tables failed: %s", err)
            return
        yield from families(tables)


class MetricsServer:
    def __init__(self, server: Any, thread: Any, conn: Any, daemon: DaemonServices) -> None:
        self.server, self.thread, self.conn, self.daemon = server, thread, conn, daemon
        self.port = server.server_address[1]

    async def stop(self) -> None:
        await asyncio.to_thread(self.server.shutdown)
        self.server.server_close()
        await self.daemon.sql(self.conn.close)


async def start_metrics(daemon: DaemonServices, listen: str) -> MetricsServer:
    """Serve /metrics on ``listen``; an address in use (or refused) is a config error naming the key."""
    address, port = parse_listen(listen)
    conn = await daemon.sql(connect, tables=list(TABLES), rings=daemon.rings, daemon=daemon)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(TableCollector(daemon, conn, asyncio.get_running_loop()))
    ProcessCollector(registry=registry)
    try:
        server, thread = start_http_server(port, addr=address, registry=registry)
    except BaseException as err:
        await daemon.sql(conn.close)
        if isinstance(err, OSError):
            v = Validator(daemon.config.text, daemon.config.path or "<config>")
            raise v.fail(("metrics", "listen"), f"cannot listen on {listen}: {err.strerror or err}") from None
        raise
    log.info("metrics on http://%s:%d/metrics", address if ":" not in address else f"[{address}]", port)
    return MetricsServer(server, thread, conn, daemon)
