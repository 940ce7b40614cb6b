"""streamq's own state as tables: the event sources and their rings."""

from __future__ import annotations

from ..schema import BIGINT, INTEGER, TEXT, Column, table


def _event_rows(ctx):
    session = ctx.session
    if session is None:
        return
    rings = session.rings
    for name in sorted(rings):
        ring = rings[name]
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
            "last_error": status.last_error if status else None,
            "last_event_time": int(ring.last_time) if ring.last_time else None,
            "capacity": ring.capacity,
        }


@table(
    "streamq_events",
    "Each event table's source and ring: what arrived, what is held, what was lost and why.",
    [
        Column("name", TEXT, "Event table name."),
        Column("source", TEXT, "Source filling it (proc_connector, inotify, sock_diag, ...)."),
        Column("kind", TEXT, "How the source learns of events: netlink, inotify, poll, stream, mqtt."),
        Column("mode", TEXT, "How the source is running now, e.g. a fallback and why."),
        Column("active", INTEGER, "1 while the source runs."),
        Column("events", BIGINT, "Events appended to the ring since start."),
        Column("buffered", BIGINT, "Events held in the ring now."),
        Column("dropped", BIGINT, "Events pushed out because the ring was full."),
        Column("expired", BIGINT, "Events removed for being older than the ring's max age."),
        Column("overflows", BIGINT, "Times the kernel or a library queue overflowed before us."),
        Column("errors", BIGINT, "Errors the source met (it restarts with backoff)."),
        Column("skipped", BIGINT, "Input rejected on purpose: malformed or oversize records."),
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
