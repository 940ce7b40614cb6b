"""JSON records (JSON lines, MQTT payloads) as event-table rows.

A record table has the columns the config declares plus ``raw``, the whole
record as JSON, so every key stays reachable (``json_extract(raw, '$.k')``).
Malformed and oversize records are counted in the source's status and skipped.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from ..errors import ConfigError
from ..ring import SourceStatus
from ..sql.schema import BIGINT, DOUBLE, INTEGER, TEXT, UNTYPED, Column, Table
from ..stream.eventtime import parse_time

_TYPES = {"TEXT": TEXT, "INTEGER": INTEGER, "BIGINT": BIGINT, "DOUBLE": DOUBLE, "REAL": DOUBLE, "": UNTYPED}
# Filled by the ring (time, eid) or by the source (raw, and topic for MQTT): a record's own
# key of that name is still in raw.
RESERVED = ("raw", "time", "eid")
_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1
# JSON values already right for a column type; ints are not, as they may pass 64 bits (orjson
# reads up to 2**64 - 1), so they go through _coerce's range check.
_NATIVE = {TEXT: str, DOUBLE: float, INTEGER: None, BIGINT: None, UNTYPED: None}

try:  # orjson parses 3-5x faster; plain json is the fallback
    from orjson import OPT_NON_STR_KEYS
    from orjson import dumps as _dumps_bytes
    from orjson import loads as _loads

    def dumps(value: Any) -> str:
        return _dumps_bytes(value, option=OPT_NON_STR_KEYS).decode()

except ImportError:  # pragma: no cover
    _loads = json.loads

    def dumps(value: Any) -> str:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


_declared: dict[str, tuple] = {}
_layouts: dict[str, tuple[dict[str, str], str | None]] = {}


def filled_columns(source: str, time_field: str | None, *, topic: bool | None = None) -> tuple[str, ...]:
    """The columns streamq fills in a jsonl/mqtt source's table (lowercase), not the record:
    raw, time, eid; topic for MQTT; arrival_time when ``time`` is the record's own."""
    from ..tables.events import ARRIVAL

    if topic is None:
        topic = source.split(".", 1)[0] == "mqtt"
    reserved = (*RESERVED, "topic") if topic else RESERVED
    return (*reserved, ARRIVAL) if time_field is not None else reserved


def declare_record_table(
    table: str,
    columns: Mapping[str, str],
    *,
    source: str,
    topic: bool | None = None,
    time_field: str | None = None,
    learned: Iterable[str] = (),
) -> Table:
    """Register the event table of a jsonl/mqtt source; ConfigError if the name is taken.

    MQTT tables (``source`` "mqtt.NAME", or ``topic=True``) get a ``topic``
    column: the topic each message arrived on, since a filter like
    ``sensors/#`` matches many. With ``time_field``, ``time`` is each record's
    own time (that field, as unix seconds) and the receive time is the hidden
    ``arrival_time``. ``learned`` columns (named by the daemon's queries, not
    declared) are untyped: values stay as JSON gave them.
    """
    from ..sql.connection import load_tables
    from ..tables.events import ARRIVAL, make_event_table

    reserved = filled_columns(source, time_field, topic=topic)
    topic = "topic" in reserved
    for name in columns:
        if name.lower() in reserved:
            raise ConfigError(
                f"{source}: column {name!r} is filled by streamq; read the record's own "
                f"with json_extract(raw, '$.{name}')"
            )
    folded = {n.lower() for n in columns} | set(reserved)
    layout = dict(columns)
    for name in learned:
        if name.lower() not in folded:
            folded.add(name.lower())
            layout[name] = ""
    signature = (tuple((n.lower(), t.upper()) for n, t in layout.items()), topic, time_field)
    existing = load_tables().get(table)
    if existing is not None:
        if table not in _declared:
            raise ConfigError(f"{source}: table {table!r} is a built-in table; choose another name")
        if _declared[table] != signature:
            raise ConfigError(f"{source}: table {table!r} is already declared with other columns")
        return existing
    cols = [
        Column(name, _TYPES[kind.upper()], f"The record's {name} field{'' if kind else ', as JSON gave it'}.")
        for name, kind in layout.items()
    ]
    if topic:
        cols.append(Column("topic", TEXT, "The MQTT topic the message was published on."))
    cols.append(Column("raw", TEXT, "The whole record as JSON; json_extract(raw, '$.key') reads any field."))
    if time_field is not None:
        cols.append(Column("time", DOUBLE, f"The record's own time (its {time_field!r} field), unix seconds."))
    spec = make_event_table(
        table,
        f"Records from the {source} source.",
        cols,
        examples=(f"SELECT * FROM {table}",),
        stamp=ARRIVAL if time_field is not None else "time",
    )
    _declared[table] = signature
    _layouts[table] = (layout, time_field)
    return spec


def declared_layout(table: str) -> dict[str, str] | None:
    """The columns ``table`` was declared with (learned ones untyped: ""), or None."""
    found = _layouts.get(table)
    return dict(found[0]) if found is not None else None


def record_layout(table: str, columns: Mapping[str, str] | None, time_field: str | None) -> tuple:
    """(columns, time field) of ``table`` as declared (learned columns included), else as given."""
    return _layouts.get(table, (columns, time_field))


def _coerce(value: Any, kind: str) -> Any:
    if value is None:
        return None
    if kind == UNTYPED:
        return sql_value(value)
    try:
        if kind in (INTEGER, BIGINT):
            number = int(value) if isinstance(value, (int, float)) else int(str(value).strip())
            return number if _INT_MIN <= number <= _INT_MAX else None  # SQLite integers are 64-bit
        if kind == DOUBLE:
            return float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    if isinstance(value, str):
        return value
    return dumps(value)  # numbers, booleans, objects and arrays as their JSON text


def sql_value(value: Any) -> Any:
    """A JSON value as SQLite can hold it: objects/arrays as JSON text, over-64-bit ints as text."""
    kind = type(value)
    if kind is str or kind is float or value is None:
        return value
    if kind is int:
        return value if _INT_MIN <= value <= _INT_MAX else str(value)
    if kind is bool:
        return int(value)
    return dumps(value)


class RecordDecoder:
    """Bytes of one record -> a row dict, or None (counted in ``status.skipped``).

    With ``columns`` the row holds those columns, typed; with ``columns=None``
    the row is the whole record (untyped, as JSON gives it). Either way
    ``raw`` is the record's JSON text.
    """

    def __init__(
        self,
        columns: Mapping[str, str] | None,
        status: SourceStatus,
        *,
        max_bytes: int = 1_048_576,
        tuples: bool = False,
        time_field: str | None = None,
    ) -> None:
        self.columns = None if columns is None else {name: _TYPES[kind.upper()] for name, kind in columns.items()}
        self.status = status
        self.time_field = time_field  # the record's own time: the row's last value (``time``)
        self.max_bytes = max_bytes
        # (name, the JSON type that needs no conversion, SQL type) per column, for decode_lines
        self._plan = [(n, _NATIVE[k], k) for n, k in (self.columns or {}).items()]
        self.tuples = tuples and columns is not None

    def decode_lines(self, lines: list[bytes]) -> list[dict] | list[tuple]:
        """:meth:`decode` over many lines (blank ones ignored), inlined: this is the hot loop.

        With ``tuples`` a row is ``(*columns, raw)`` (then ``time`` with a time field), the
        data columns of the table :func:`declare_record_table` makes from the same mapping,
        in its order: a ring of tuples is read a third faster than one of dicts.
        """
        if self.columns is None:
            return [row for row in map(self.decode, lines) if row is not None]
        loads, plan, max_bytes, coerce, tuples = _loads, self._plan, self.max_bytes, _coerce, self.tuples
        time_field = self.time_field
        rows = []
        for data in lines:
            if len(data) > max_bytes or not data:
                if data:
                    self.skip(f"record of {len(data)} bytes is over the {max_bytes}-byte limit")
                continue
            try:
                record = loads(data)  # JSON allows the blanks around a value: no strip() copy needed
            except ValueError as err:
                if data.strip():
                    self.skip(f"malformed JSON: {err}")
                continue
            if type(record) is not dict:
                self.skip("a record must be a JSON object")
                continue
            when = None
            if time_field is not None:
                when = parse_time(record.get(time_field))
                if when is None:
                    self.skip_untimed()
                    continue
            if tuples:
                values = []
                for name, native, kind in plan:
                    value = record.get(name)
                    values.append(value if type(value) is native or value is None else coerce(value, kind))
                values.append(data.decode().strip())
                if time_field is not None:
                    values.append(when)
                rows.append(tuple(values))
            else:
                row = {}
                for name, native, kind in plan:
                    value = record.get(name)
                    row[name] = value if type(value) is native or value is None else coerce(value, kind)
                row["raw"] = data.decode().strip()
                if time_field is not None:
                    row["time"] = when
                rows.append(row)
        return rows

    def skip_untimed(self) -> None:
        self.skip(f"no usable time in field {self.time_field!r} (unix seconds or RFC 3339)")

    def decode(self, data: bytes | str) -> dict | None:
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogateescape")
        if len(data) > self.max_bytes:
            self.skip(f"record of {len(data)} bytes is over the {self.max_bytes}-byte limit")
            return None
        data = data.strip()
        if not data:
            return None
        try:
            record = _loads(data)
        except ValueError as err:
            self.skip(f"malformed JSON: {err}")
            return None
        if type(record) is not dict:
            self.skip("a record must be a JSON object")
            return None
        return self._row(record, data.decode())  # orjson accepted it: valid UTF-8

    def decode_payload(self, data: bytes) -> Iterator[dict]:
        """Rows of one message: a JSON object, an array of objects, or JSON lines."""
        if len(data) > self.max_bytes:
            self.skip(f"record of {len(data)} bytes is over the {self.max_bytes}-byte limit")
            return
        data = data.strip()
        if not data:
            return
        try:
            record = _loads(data)
        except ValueError as err:
            if b"\n" not in data:
                self.skip(f"malformed JSON: {err}")
                return
            for line in data.split(b"\n"):  # not one JSON value: JSON lines, one record each
                row = self.decode(line)
                if row is not None:
                    yield row
            return
        if type(record) is dict:
            row = self._row(record, data.decode())
            if row is not None:
                yield row
        elif type(record) is list:
            for item in record:
                if type(item) is dict:
                    row = self._row(item, dumps(item))
                    if row is not None:
                        yield row
                else:
                    self.skip("an array element is not a JSON object")
        else:
            self.skip("a record must be a JSON object")

    def _row(self, record: dict, raw: str) -> dict | None:
        when = None
        if self.time_field is not None:
            when = parse_time(record.get(self.time_field))
            if when is None:
                self.skip_untimed()
                return None
        if self.columns is None:
            record["raw"] = raw  # the record's own "raw" key stays in raw itself
            if when is not None:
                record["time"] = when
            return record
        row = {}
        for name, kind in self.columns.items():
            value = record.get(name)
            if kind == TEXT and type(value) is str:
                row[name] = value  # the common case, without a call
            else:
                row[name] = _coerce(value, kind)
        row["raw"] = raw
        if when is not None:
            row["time"] = when
        return row

    def skip(self, why: str) -> None:
        self.status.skipped += 1
        self.status.last_error = why
