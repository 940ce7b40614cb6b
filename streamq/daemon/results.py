"""osquery's result log format, so existing osquery log consumers read streamq's lines.

Three forms, as osquery writes them:

* event (the default): one line per row, ``{"name", "hostIdentifier",
  "calendarTime", "unixTime", "epoch", "counter", "numerics", "decorations",
  "columns", "action"}``, removed rows before added ones;
* batch: one line per run with ``"diffResults": {"added": [...], "removed": [...]}``;
* snapshot: one line per run with ``"snapshot": [...]`` and ``"action": "snapshot"``.

Every line also carries ``"id"``: ``"{hostIdentifier}:{name}:{epoch}:{counter}:{row index}"``
(the row's index within its run; 0 for a batch or snapshot line), the same when a line
is sent again after a crash. Windowed queries write event lines whose action is
``final`` (a window's result), ``update`` (``emit = "changes"``) or ``suppressed``
(the rate limit held rows back; its columns say how many and in which period).

``numerics = true`` (our default) keeps values typed; ``false`` writes every value
as a string and NULL as "", which is osquery's own output byte for byte.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

Row = dict[str, Any]


@dataclass(frozen=True)
class Header:
    """The fields every line of one query run shares."""

    name: str
    host: str
    epoch: int = 0
    counter: int = 0
    numerics: bool = True
    decorations: dict[str, Any] = field(default_factory=dict)
    unix_time: int = field(default_factory=lambda: int(time.time()))

    def fields(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "hostIdentifier": self.host,
            "calendarTime": calendar_time(self.unix_time),
            "unixTime": self.unix_time,
            "epoch": self.epoch,
            "counter": self.counter,
            "numerics": self.numerics,
            "decorations": self.decorations,
        }

    def id_prefix(self) -> str:
        """A line's stable id is this plus its row index in the run: the same line resent after
        a crash has the same id, so a consumer can drop the resend (MQTT is at-least-once)."""
        return f"{self.host}:{self.name}:{self.epoch}:{self.counter}:"


def calendar_time(unix_time: int) -> str:
    """osquery's calendarTime: asctime in UTC with a ' UTC' suffix (a day below 10 is
    space-padded, "Wed Sep  2 ...", exactly as osquery's asctime output)."""
    return time.asctime(time.gmtime(unix_time)) + " UTC"


def as_osquery_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def _columns(row: Row, numerics: bool) -> Row:
    if numerics:
        return row
    return {k: as_osquery_text(v) for k, v in row.items()}


def _dump(obj: dict) -> bytes:
    return orjson.dumps(obj, option=orjson.OPT_PASSTHROUGH_SUBCLASS)


def event_lines(header: Header, added: Sequence[Row], removed: Sequence[Row]) -> list[bytes]:
    return action_lines(header, [("removed", row) for row in removed] + [("added", row) for row in added])


def action_lines(header: Header, rows: Sequence[tuple[str, Row]], start: int = 0) -> list[bytes]:
    """One event line per (action, row), each with its own id (its index in the run, from ``start``)."""
    base = header.fields()
    prefix = header.id_prefix()
    return [
        _dump({**base, "columns": _columns(row, header.numerics), "action": action, "id": f"{prefix}{index}"})
        for index, (action, row) in enumerate(rows, start)
    ]


def batch_line(header: Header, added: Sequence[Row], removed: Sequence[Row]) -> bytes:
    results = {
        "added": [_columns(r, header.numerics) for r in added],
        "removed": [_columns(r, header.numerics) for r in removed],
    }
    return _dump({"diffResults": results, **header.fields(), "id": f"{header.id_prefix()}0"})


def snapshot_line(header: Header, rows: Sequence[Row]) -> bytes:
    fields = {"snapshot": [_columns(r, header.numerics) for r in rows], "action": "snapshot", **header.fields()}
    return _dump({**fields, "id": f"{header.id_prefix()}0"})
