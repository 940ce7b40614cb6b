"""A query followed over the event rings from now on, through the streaming engine.

`query --follow` (streamq.cli.follow), the control socket's streaming follow
(streamq.daemon.controlstreams) and the web console's Live page (streamq.web) each
follow a query with a :class:`FollowedQuery`, so the same options give the same rows
and the same one-line errors everywhere. Only how the SQL runs differs, given as
``read``: the command's own connection, or the guarded read-only connection (its
authorizer, deadline and caps) for SQL that arrives from outside.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import apsw

from ..errors import ConfigError
from ..ring import Rings
from ..sql.connection import load_tables
from ..sql.readonly import ReadOnlyConnection
from ..sql.session import EventWindow
from ..tables.events import ARRIVAL, entry_getter
from .pipeline import SUPPRESSED, WINDOW_NAMES, Out, Pipeline
from .spec import StreamSpec
from .sqlcheck import batch_dependence, result_names

# How the SQL runs over a window of ring entries: (column names, rows, whether a cap cut the rows).
Read = Callable[[EventWindow], tuple[list[str], list[tuple], bool]]


def check_follow(db: apsw.Connection, sql: str, tables: Sequence[str], spec: StreamSpec) -> list[str]:
    """The columns of the rows ``sql`` will emit, followed with ``spec`` over ``tables`` (the event
    tables it reads); ConfigError, with `query --follow`'s message, when the options do not fit it."""
    if spec.window is not None:
        if len(tables) != 1:
            raise ConfigError(f"--window needs a query over one event table (it reads {', '.join(tables)})")
        _key_columns(tables[0], spec)
    else:
        reason = batch_dependence(db, sql, tables[0])
        if reason:
            raise ConfigError(reason)
    names = result_names(db, sql) + (list(WINDOW_NAMES) if spec.window else [])
    if spec.dedup:
        try:
            spec.check_columns(names)
        except ValueError as err:
            raise ConfigError(f"--dedup: {err}") from None
    return names


def _key_columns(table: str, spec: StreamSpec) -> list[str]:
    """The session key's columns as ``table`` spells them; ConfigError for one it does not have."""
    declared = load_tables().get(table)
    columns = [c.name for c in declared.columns] if declared is not None else []
    spelled = {c.lower(): c for c in columns}
    for column in spec.window_key:
        if column.lower() not in spelled:
            raise ConfigError(f"--window-key: {table} has no column {column!r} (it has {', '.join(columns)})")
    return [spelled[c.lower()] for c in spec.window_key]


@dataclass(frozen=True)
class WindowEntries:
    """How a window reads its event table's ring entries: each one's time (the record's own
    when the table has event time, else the arrival stamp) and its session key values.
    `--follow`, the console and the daemon's windowed queries all read entries this way."""

    event_time: bool
    when: Callable[[tuple], Any]
    getters: tuple[Callable[[tuple], Any], ...]  # one per window_key column, as the table spells it

    @classmethod
    def of(cls, table_name: str, spec: StreamSpec) -> WindowEntries:
        table = load_tables().get(table_name)
        event_time = table is not None and any(c.name == ARRIVAL for c in table.columns)
        when = entry_getter(table, "time") if event_time else (lambda entry: entry[1])
        getters = tuple(entry_getter(table, c) for c in _key_columns(table_name, spec)) if spec.window else ()
        return cls(event_time, when, getters)

    def times(self, entries: Sequence[tuple]) -> list:
        when = self.when
        return [when(e) for e in entries]

    def keys(self, entries: Sequence[tuple]) -> list[tuple] | None:
        getters = self.getters
        return [tuple(get(e) for get in getters) for e in entries] if getters else None


class FollowedQuery:
    """One followed query: its floors in the rings and its streaming stages. Use it on the thread
    that owns the connection ``read`` runs on."""

    def __init__(
        self, db: apsw.Connection, rings: Rings, sql: str, tables: Sequence[str], spec: StreamSpec, read: Read
    ) -> None:
        self.columns = check_follow(db, sql, tables, spec)
        self.rings, self.tables, self.spec, self.read = rings, list(tables), spec, read
        self.truncated = 0  # runs a cap cut short (a read-only connection's row cap)
        self.missed = 0  # with a window: rows that left the ring (full) before a step read them
        self._entries = WindowEntries.of(self.tables[0], spec)
        self.pipe = Pipeline(spec, self._run_window, event_time=self._entries.event_time, max_rows=rings.capacity)
        self.floors = {t: rings.ring(t).last_eid for t in self.tables}  # from now on

    @classmethod
    def readonly(cls, ro: ReadOnlyConnection, sql: str, spec: StreamSpec) -> FollowedQuery:
        """``sql`` followed on the guarded connection: refused as the control socket refuses it, capped
        as it caps (a window's run past the byte cap fails the step)."""
        _, floors = ro.follow(sql, None)  # the guard, and the event tables it reads; reads no event

        def read(window: EventWindow) -> tuple[list[str], list[tuple], bool]:
            result = ro.over(sql, window)
            return result.columns, result.rows, result.truncated

        return cls(ro.conn.apsw, ro.conn.session.rings, sql, sorted(floors), spec, read)

    def _run(self, window: EventWindow) -> tuple[list[str], list[tuple]]:
        names, rows, truncated = self.read(window)
        self.truncated += truncated
        return names, rows

    def _run_window(self, entries: list) -> tuple[list[str], list[tuple]]:
        return self._run(EventWindow.of_rows({self.tables[0]: entries}))

    def step(self) -> list[Out]:
        """What the events since the last step make the query emit, with what the clock closed."""
        pipe = self.pipe
        if pipe.windows is None:
            window = EventWindow.after(self.rings, self.floors)
            if window.empty:
                return pipe.tick()
            names, rows = self._run(window)
            self.floors = window.ceilings
            return pipe.tick() + pipe.rows(names, rows)
        table = self.tables[0]
        ring, floor = self.rings.ring(table), self.floors[table]
        entries = ring.since(floor)
        if entries:
            self.missed += entries[-1][0] - floor - len(entries)  # overwritten before this read got them
            pipe.feed(self._entries.times(entries), self._entries.keys(entries), entries)
            self.floors = {table: entries[-1][0]}
        elif ring.first_eid > floor + 1:
            self.missed += ring.first_eid - floor - 1
            self.floors = {table: ring.first_eid - 1}
        return pipe.tick() + pipe.emitted()

    def tick(self) -> list[Out]:
        """The clock moved with no new event: arrival-time windows and limit periods that ended."""
        return self.pipe.tick() + self.pipe.emitted()

    def finish(self) -> list[Out]:
        """The end of input: every open window, final (and the limit's last count)."""
        return self.pipe.emitted() + self.pipe.finish()

    def next_wakeup(self) -> float | None:
        return self.pipe.next_wakeup()


def batch(query: FollowedQuery, outs: list[Out]) -> dict[str, Any]:
    """Rows out as one JSON-ready batch: the control socket's streaming reply and the Live page's event.

    ``rows`` share ``query.columns``; ``kinds`` says what each row is (``row``, or a window's
    ``final`` result or ``update``); ``keys`` (session windows) the key of each row's window;
    ``suppressed`` the rate limit's counts, which have columns of their own; ``late``, ``dropped``
    and ``truncated_runs`` are the totals so far (late rows, rows over a window's capacity, runs
    the row cap cut)."""
    rows, kinds, keys, suppressed = [], [], [], []
    for out in outs:
        if out.kind == SUPPRESSED:
            suppressed.append(dict(zip(out.names, out.row)))
            continue
        rows.append(out.row)
        kinds.append(out.kind)
        keys.append(list(out.key))
    reply: dict[str, Any] = {"columns": query.columns, "rows": rows, "kinds": kinds}
    if query.spec.window is not None and query.spec.window.session:
        reply["keys"] = keys
    reply.update(
        suppressed=suppressed, late=query.pipe.late, dropped=query.pipe.dropped, truncated_runs=query.truncated
    )
    return reply
