"""Clock tables: time and uptime."""

from __future__ import annotations

import time as _time
from datetime import UTC, datetime

from ..host import procfs
from ..sql.schema import BIGINT, INTEGER, TEXT, Column, table


@table(
    "time",
    "The current date and time, in UTC and in the host's time zone.",
    [
        Column("weekday", TEXT, "Day of the week in UTC, e.g. Monday."),
        Column("year", INTEGER, "Year in UTC."),
        Column("month", INTEGER, "Month in UTC, 1-12."),
        Column("day", INTEGER, "Day of the month in UTC."),
        Column("hour", INTEGER, "Hour in UTC, 0-23."),
        Column("minutes", INTEGER, "Minutes in UTC."),
        Column("seconds", INTEGER, "Seconds in UTC."),
        Column("timezone", TEXT, "Time zone of the other columns: always UTC."),
        Column("local_timezone", TEXT, "The host's own time zone abbreviation."),
        Column("unix_time", INTEGER, "Seconds since the Unix epoch."),
        Column("timestamp", TEXT, "UTC time as an asctime-style string."),
        Column("datetime", TEXT, "UTC time as ISO 8601 with a Z suffix."),
        Column("iso_8601", TEXT, "UTC time as ISO 8601 with a Z suffix."),
    ],
    examples=("SELECT unix_time, datetime FROM time",),
    cost=1,
)
def gen_time(ctx):
    now = _time.time()
    utc = datetime.fromtimestamp(int(now), UTC)
    iso = utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    yield {
        "weekday": utc.strftime("%A"),
        "year": utc.year,
        "month": utc.month,
        "day": utc.day,
        "hour": utc.hour,
        "minutes": utc.minute,
        "seconds": utc.second,
        "timezone": "UTC",
        "local_timezone": _time.strftime("%Z", _time.localtime(now)),
        "unix_time": int(now),
        "timestamp": utc.strftime("%a %b %d %H:%M:%S %Y UTC"),
        "datetime": iso,
        "iso_8601": iso,
    }


@table(
    "uptime",
    "Time since the host booted.",
    [
        Column("days", INTEGER, "Whole days of uptime."),
        Column("hours", INTEGER, "Hours past the whole days."),
        Column("minutes", INTEGER, "Minutes past the whole hours."),
        Column("seconds", INTEGER, "Seconds past the whole minutes."),
        Column("total_seconds", BIGINT, "Uptime in seconds."),
    ],
    examples=("SELECT total_seconds FROM uptime",),
    cost=1,
)
def gen_uptime(ctx):
    total = int(procfs.uptime())
    yield {
        "days": total // 86400,
        "hours": total % 86400 // 3600,
        "minutes": total % 3600 // 60,
        "seconds": total % 60,
        "total_seconds": total,
    }
