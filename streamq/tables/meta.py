"""streamq's own state as tables: the event sources and their rings."""

from __future__ import annotations

import os
import time

from ..sql.schema import BIGINT, INTEGER, TEXT, Column, table
from ._common import daemon_of, lazy_module

sysinfo = lazy_module("streamq.host.sysinfo")


def _event_rows(ctx):
    session = ctx.session
    if session is None:
        return
    rings = session.rings
    for name in sorted(rings):
        ring = rings[name]
        ring.expire()  # count rows past max_age as expired, not as buffered
        status = rings.status.get(name)
        yield {
            "name": name,
            "source": status.source if status else None,
            "kind": status.kind if status else None,
            "mode": status.mode if status else None,
            "active": int(bool(status and status.active)),
            "events": ring.seen,
            "buffered": ring.buffered,
            "dropped": ring.dropped,
            "expired": ring.expired,
            "overflows": status.overflows if status else 0,
            "errors": status.errors if status else 0,
            "skipped": status.skipped if status else 0,
            "late": status.late if status else 0,
            "last_error": status.last_error if status else None,
            "last_event_time": int(ring.last_time) if ring.last_time else None,
            "capacity": ring.capacity,
        }


@table(
    "streamq_events",
    "Each event table's source and ring: what arrived, what is held, what was lost and why.",
    [
        Column("name", TEXT, "Event table name."),
        Column("source", TEXT, "Source filling it: its config key (process, file, socket, jsonl, ...)."),
        Column("kind", TEXT, "How the source learns of events: netlink, inotify, poll, stream, mqtt."),
        Column("mode", TEXT, "How the source is running now, e.g. a fallback and why."),
        Column("active", INTEGER, "1 while the source runs."),
        Column("events", BIGINT, "Events appended to the ring since start."),
        Column("buffered", BIGINT, "Events held in the ring now."),
        Column("dropped", BIGINT, "Events pushed out because the ring was full."),
        Column("expired", BIGINT, "Events removed for being older than the ring's max age."),
        Column("overflows", BIGINT, "Times the kernel or a library queue overflowed before us."),
        Column("errors", BIGINT, "Errors the source met (it restarts with backoff)."),
        Column("skipped", BIGINT, "Input rejected on purpose: malformed or oversize records, records without a time."),
        Column("late", BIGINT, "Rows that came after their window was emitted (counted, not added)."),
        Column("last_error", TEXT, "The most recent error message."),
        Column("last_event_time", BIGINT, "Time of the newest event, unix seconds."),
        Column("capacity", BIGINT, "Ring capacity in events."),
    ],
    examples=("SELECT name, events, dropped FROM streamq_events",),
    cost=10,
)
def gen_streamq_events(ctx):
    yield from _event_rows(ctx)


@table(
    "osquery_events",
    "The event publishers and subscribers, in osquery's columns (a view of streamq_events).",
    [
        Column("name", TEXT, "Event table (subscriber) or source (publisher) name."),
        Column("publisher", TEXT, "Source that publishes to the subscriber."),
        Column("type", TEXT, "publisher or subscriber."),
        Column("subscriptions", INTEGER, "Subscriptions of a publisher (1 per table here)."),
        Column("events", INTEGER, "Events seen."),
        Column("refreshes", INTEGER, "Source restarts; always 0 here."),
        Column("active", INTEGER, "1 while running."),
    ],
    examples=("SELECT name, type, events, active FROM osquery_events",),
    cost=10,
)
def gen_osquery_events(ctx):
    for row in _event_rows(ctx):
        publisher = row["source"] or row["name"]
        common = {"events": row["events"], "refreshes": 0, "active": row["active"]}
        yield {"name": publisher, "publisher": publisher, "type": "publisher", "subscriptions": 1, **common}
        yield {"name": row["name"], "publisher": publisher, "type": "subscriber", "subscriptions": 0, **common}


_INFO_COLUMNS = [
    Column("pid", INTEGER, "Process ID of this streamq."),
    Column("uuid", TEXT, "The host's UUID (DMI product uuid, else machine-id)."),
    Column("instance_id", TEXT, "UUID of this daemon's state file, stable across restarts."),
    Column("version", TEXT, "streamq version."),
    Column("config_hash", TEXT, "SHA-1 of the running configuration's text."),
    Column("config_valid", INTEGER, "1 when the running configuration is valid."),
    Column("extensions", TEXT, "Extension status; streamq loads plugins in-process: 'active'."),
    Column("build_platform", TEXT, "Platform streamq runs on: linux."),
    Column("build_distro", TEXT, "Python implementation and version."),
    Column("start_time", INTEGER, "When this process started, unix seconds."),
    Column("watcher", INTEGER, "Watcher process ID; streamq has none (-1), as osquery without a watcher."),
    Column("platform_mask", INTEGER, "osquery's platform bit mask: 9 (posix and linux)."),
]


def _info_row(ctx) -> dict:
    import platform

    from .._version import __version__

    daemon = daemon_of(ctx)
    return {
        "pid": os.getpid(),
        "uuid": sysinfo.host_uuid(),
        "instance_id": daemon.instance_id if daemon else None,
        "version": __version__,
        "config_hash": daemon.config_hash if daemon else None,
        "config_valid": 1 if daemon is not None else 0,
        "extensions": "active",
        "build_platform": "linux",
        "build_distro": f"{platform.python_implementation()} {platform.python_version()}",
        "start_time": daemon.started if daemon else _PROCESS_START,
        "watcher": -1,
        "platform_mask": 9,
        "host_identifier": daemon.host if daemon else None,
        "mode": "daemon" if daemon is not None else "query",
    }


_PROCESS_START = int(time.time())


@table(
    "streamq_info",
    "This streamq process: version, identity, configuration.",
    [
        *_INFO_COLUMNS,
        Column("host_identifier", TEXT, "hostIdentifier used in results (daemon only)."),
        Column("mode", TEXT, "daemon when run by `streamq run`, else query."),
    ],
    examples=("SELECT version, pid, mode FROM streamq_info",),
    cost=1,
)
def gen_streamq_info(ctx):
    yield _info_row(ctx)


@table(
    "osquery_info",
    "This streamq process in osquery's osquery_info columns.",
    list(_INFO_COLUMNS),
    examples=("SELECT version, pid FROM osquery_info",),
    cost=1,
)
def gen_osquery_info(ctx):
    yield _info_row(ctx)


def _schedule_rows(ctx):
    daemon = daemon_of(ctx)
    if daemon is None:
        return
    for name, rt in sorted(daemon.queries.items()):
        s, spec = rt.stats, rt.spec
        yield {
            "name": name,
            "query": spec.sql,
            "interval": int(spec.interval) if spec.interval else 0,
            "executions": s.executions,
            "last_executed": s.last_executed,
            "denylisted": int(rt.denylisted),
            "output_size": s.output_bytes,
            "wall_time": s.wall_ms_total // 1000,
            "wall_time_ms": s.wall_ms_total,
            "last_wall_time_ms": s.last_wall_ms,
            "user_time": s.user_ms_total,
            "last_user_time": s.last_user_ms,
            "system_time": s.system_ms_total,
            "last_system_time": s.last_system_ms,
            "average_memory": 0,
            "last_memory": 0,
            "mode": spec.mode,
            "trigger": ", ".join(filter(None, [f"every {spec.interval:g}s" if spec.interval else "", *spec.on])),
            "rows_out": s.rows_out,
            "errors": s.errors,
            "last_error": s.last_error,
            "denylisted_until": int(s.denylisted_until) if rt.denylisted else None,
            "sinks": ", ".join(spec.sinks),
        }


_SCHEDULE_COLUMNS = [
    Column("name", TEXT, "Query name."),
    Column("query", TEXT, "The SQL."),
    Column("interval", INTEGER, "Seconds between timed runs (0: event-triggered only)."),
    Column("executions", BIGINT, "Completed runs."),
    Column("last_executed", BIGINT, "When it last completed, unix seconds."),
    Column("denylisted", INTEGER, "1 while the query rests after overrunning its deadline."),
    Column("output_size", BIGINT, "Bytes of result lines produced."),
    Column("wall_time", BIGINT, "Total wall time, seconds."),
    Column("wall_time_ms", BIGINT, "Total wall time, milliseconds."),
    Column("last_wall_time_ms", BIGINT, "Wall time of the last run, milliseconds."),
    Column("user_time", BIGINT, "Total user CPU time, milliseconds."),
    Column("last_user_time", BIGINT, "User CPU time of the last run, milliseconds."),
    Column("system_time", BIGINT, "Total system CPU time, milliseconds."),
    Column("last_system_time", BIGINT, "System CPU time of the last run, milliseconds."),
    Column("average_memory", BIGINT, "Memory per run; not measured per query (0)."),
    Column("last_memory", BIGINT, "Memory of the last run; not measured per query (0)."),
]


@table(
    "streamq_schedule",
    "The daemon's continuous queries: runs, cost, output, errors and denylisting.",
    [
        *_SCHEDULE_COLUMNS,
        Column("mode", TEXT, "diff, snapshot or stream."),
        Column("trigger", TEXT, "What runs it: an interval and/or event tables."),
        Column("rows_out", BIGINT, "Result rows produced."),
        Column("errors", BIGINT, "Failed runs."),
        Column("last_error", TEXT, "Why the last failed run failed."),
        Column("denylisted_until", BIGINT, "When the rest ends, unix seconds."),
        Column("sinks", TEXT, "Sinks receiving its results."),
    ],
    examples=("SELECT name, executions, errors, denylisted FROM streamq_schedule",),
    cost=10,
)
def gen_streamq_schedule(ctx):
    yield from _schedule_rows(ctx)


@table(
    "osquery_schedule",
    "The daemon's continuous queries in osquery's osquery_schedule columns.",
    list(_SCHEDULE_COLUMNS),
    examples=("SELECT name, interval, executions FROM osquery_schedule",),
    cost=10,
)
def gen_osquery_schedule(ctx):
    yield from _schedule_rows(ctx)


@table(
    "streamq_sinks",
    "The daemon's sinks: rows queued, sent, spooled, failed and dropped.",
    [
        Column("name", TEXT, "Sink name from the config."),
        Column("type", TEXT, "Its type: file, stdout, mqtt, nats, postgres, webhook or syslog."),
        Column("queued", BIGINT, "Rows waiting in the outbox now."),
        Column("sent", BIGINT, "Rows delivered."),
        Column("spooled", BIGINT, "Most rows that waited in the outbox while the sink was failing."),
        Column("failed", BIGINT, "Delivery attempts that failed (each one is retried)."),
        Column("dropped", BIGINT, "Rows discarded because the backlog was over its bound."),
        Column("rejected", BIGINT, "Rows the receiver refused for good (e.g. an HTTP 4xx): logged, not retried."),
        Column("oldest_age", BIGINT, "Seconds the oldest undelivered row has waited; 0 when none waits."),
        Column("last_error", TEXT, "The most recent delivery error."),
    ],
    examples=("SELECT name, sent, queued, failed FROM streamq_sinks",),
    cost=10,
)
def gen_streamq_sinks(ctx):
    daemon = daemon_of(ctx)
    if daemon is None:
        return
    for name, sink in sorted(daemon.sinks.items()):
        s = sink.stats
        yield {
            "name": name,
            "type": sink.type,
            "queued": s.queued,
            "sent": s.sent,
            "spooled": s.spooled,
            "failed": s.failed,
            "dropped": s.dropped,
            "rejected": s.rejected,
            "oldest_age": int(time.time() - s.oldest_created) if s.oldest_created else 0,
            "last_error": s.last_error,
        }


@table(
    "streamq_fleet",
    "The daemon's fleet responder: requests answered and refused over MQTT (docs/fleet.md).",
    [
        Column("broker", TEXT, "The broker it listens on (mqtt://host:port)."),
        Column("client_id", TEXT, "Its MQTT client id."),
        Column("requests", BIGINT, "Requests received (signed or, when allowed, unsigned)."),
        Column(
            "refused",
            BIGINT,
            "Requests refused with a reply: malformed, bad or missing signature, stale, replayed, not read-only.",
        ),
        Column(
            "dropped",
            BIGINT,
            "Messages not answered: no response topic, or one outside streamq/fleet/reply/ (docs/fleet.md).",
        ),
    ],
    examples=("SELECT requests, refused FROM streamq_fleet",),
    cost=1,
)
def gen_streamq_fleet(ctx):
    daemon = daemon_of(ctx)
    fleet = daemon.fleet if daemon is not None else None
    if fleet is None:
        return
    yield {
        "broker": str(fleet.broker),
        "client_id": fleet.client_id,
        "requests": fleet.requests,
        "refused": fleet.refused,
        "dropped": fleet.dropped,
    }


@table(
    "streamq_control",
    "The daemon's control socket: requests, and clients refused or closed (docs/control-protocol.md).",
    [
        Column("path", TEXT, "The socket's path."),
        Column("clients", INTEGER, "Connections open now."),
        Column("requests", BIGINT, "Request lines answered."),
        Column("errors", BIGINT, "Requests answered with an error (refused SQL, malformed, over a cap)."),
        Column("refused", BIGINT, "Connections turned away: too many clients at once."),
        Column("idle_closed", BIGINT, "Connections closed for no complete request (or reply read) in idle_timeout."),
        Column("oversized", BIGINT, "Connections closed for a request line over 1 MiB."),
    ],
    examples=("SELECT requests, errors, refused, idle_closed FROM streamq_control",),
    cost=1,
)
def gen_streamq_control(ctx):
    daemon = daemon_of(ctx)
    control = daemon.control if daemon is not None else None
    if control is None:
        return
    yield {
        "path": control.path,
        "clients": control.clients,
        "requests": control.requests,
        "errors": control.errors,
        "refused": control.refused,
        "idle_closed": control.idle_closed,
        "oversized": control.oversized,
    }
