"""`tail --sql`: the user's SQL over the table ``stream``, through the streaming stages.

Columns are the keys of the first record plus every column the SQL names: the SQL
is prepared, and each column SQLite reports missing is added (at most 64), so
``SELECT user FROM stream`` works before any record was read.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence

import apsw
import orjson

from ..errors import ConfigError, QueryError
from ..stream.eventtime import parse_time
from ..stream.jsonlines import JsonLines
from ..stream.pipeline import WINDOW_NAMES, Out, Pipeline
from ..stream.spec import StreamSpec
from ..stream.sqlcheck import batch_dependence

TABLE = "stream"
_MAX_COLUMNS = 500
_MAX_DISCOVERED = 64
_MAX_WINDOW_ROWS = 1_000_000  # rows one window may hold in `tail` (there is no ring to size it by)
_NUMBERS = {int, float}
_MISSING_COLUMN = re.compile(r"^no such column: (.+)$|^cannot join using column (.+) - column not present")
_ALLOWED = {apsw.SQLITE_SELECT, apsw.SQLITE_READ, apsw.SQLITE_FUNCTION, apsw.SQLITE_RECURSIVE}


class TailQuery:
    """``sql`` (or None: records as they are) with ``spec``'s window, dedup and limit."""

    def __init__(
        self, sql: str | None, spec: StreamSpec, *, time_field: str | None = None, extras: Sequence[str] = ()
    ) -> None:
        if sql is None and (spec.window or spec.dedup):
            raise ConfigError("--window and --dedup need --sql (the query they apply to)")
        self.sql, self.spec, self.time_field = sql, spec, time_field
        self.extras = tuple(extras)
        self.skipped, self.last_skip, self.no_time = 0, None, 0
        self.columns: list[str] = []  # record keys and SQL-named columns; "raw" and extras come last
        self._folded: set[str] = {"raw", *self.extras, *(["time"] if time_field is not None else [])}
        self._adopted = sql is None
        self._full = False  # connected with every streamq table (only when the SQL joins one)
        self.conn = self._connect(full=False)
        if sql is not None:
            self._prepare()
            self._check(spec)
        else:
            self.table.define([])
        self.pipeline = Pipeline(spec, self._run_window, event_time=time_field is not None, max_rows=_MAX_WINDOW_ROWS)

    # -- the connection and the view ---------------------------------------------------------------

    def _connect(self, *, full: bool) -> apsw.Connection:
        if full:
            from ..sql.connection import connect

            conn = connect().apsw
        else:
            from ..sql import functions

            conn = apsw.Connection(":memory:")
            functions.register(conn)
        self.table = JsonLines(conn, table=TABLE, skip=self._skip, extras=self.extras, time_field=self.time_field)
        return conn

    def _skip(self, why: str) -> None:
        self.skipped += 1
        self.last_skip = why

    def _add(self, name: str) -> bool:
        if name.lower() in self._folded or len(self.columns) >= _MAX_COLUMNS:
            return False  # SQLite's names ignore case: "User" and "user" are one column
        self._folded.add(name.lower())
        self.columns.append(name)
        return True

    def _prepare(self) -> None:
        """Define ``stream`` with every column the SQL names; QueryError for SQL that cannot run."""
        for _ in range(_MAX_DISCOVERED):
            self.table.define(self.columns)
            read: set[str] = set()
            try:
                with _ReadOnly(self.conn, read):
                    for _row in self.conn.cursor().execute(self.sql, explain=1):
                        pass
            except apsw.SQLError as err:
                message = _message(err)
                missing = _MISSING_COLUMN.search(message)
                if missing and self._add((missing.group(1) or missing.group(2)).rsplit(".", 1)[-1]):
                    continue
                if message.startswith("cannot modify"):  # the view refuses before the authorizer can
                    raise QueryError("--sql can only read (SELECT), not change anything") from None
                if message.startswith("no such table") and not self._full:
                    self.conn.close()
                    self.conn, self._full = self._connect(full=True), True
                    continue
                raise QueryError(message) from None
            except apsw.AuthError:
                raise QueryError("--sql can only read (SELECT), not change anything") from None
            except apsw.Error as err:
                raise QueryError(_message(err)) from None
            if TABLE not in read:
                raise ConfigError(f"--sql must read the table {TABLE} (the records), e.g. SELECT * FROM {TABLE}")
            return
        raise QueryError(f"the SQL names more than {_MAX_DISCOVERED} columns that are not in the records")

    def _check(self, spec: StreamSpec) -> None:
        """Options that the SQL makes wrong: exit 2 before anything is read."""
        if spec.window is None:
            reason = batch_dependence(self.conn, self.sql, "jsonb_each", option="--window")
            if reason:
                raise ConfigError(reason)
        self.table.load([])
        names, _ = self._execute()
        try:
            spec.check_columns(names + (list(WINDOW_NAMES) if spec.window else []))
        except ValueError as err:
            raise ConfigError(f"--dedup: {err}") from None

    def _execute(self) -> tuple[list[str], list[tuple]]:
        names: list[str] = []

        def capture_names(cur: apsw.Cursor, statement: str, bindings: object) -> bool:
            names[:] = [d[0] for d in cur.get_description()]  # known only while prepared
            return True

        cursor = self.conn.cursor()
        cursor.exec_trace = capture_names
        try:
            with _ReadOnly(self.conn, set()):
                # Not from the statement cache: after the view gained columns a cached `SELECT *`
                # is re-prepared only as it steps, so its names (read before) would be the old ones.
                rows = list(cursor.execute(self.sql, can_cache=False))
        except apsw.Error as err:
            raise QueryError(_message(err)) from None
        return names, rows

    # -- batches ---------------------------------------------------------------------------------

    def process(self, lines: list[bytes], extras: dict[str, list] | None = None) -> list[Out]:
        """One batch of lines from the source: what it makes the query emit."""
        kept = self.table.load(lines, extras=extras)
        if not kept:
            return []
        if not self._adopted:
            self._adopted = True
            if [k for k in orjson.loads(kept[0]) if k != "raw" and self._add(k)]:
                self._prepare()
        times = None
        if self.time_field is not None:
            times = self._times()
        spec = self.spec
        if spec.window is None:
            if self.sql is None:
                return self.pipeline.rows(["raw"], [(line.strip(),) for line in self.table.lines])
            names, rows = self._execute()
            return self.pipeline.rows(names, rows)
        keys = self.table.keys(spec.window_key) if spec.window_key else None
        payloads = self.table.lines
        if self.extras:
            payloads = list(zip(payloads, zip(*(self.table.extra_values[e] for e in self.extras))))
        now = time.time()
        self.pipeline.feed(times or [now] * len(payloads), keys, payloads)
        outs = self.pipeline.tick(now) if times is None else []
        return outs + self.pipeline.emitted()

    def _times(self) -> list[float]:
        """Each loaded record's event time; records without one are counted and unloaded."""
        values = self.table.values(self.time_field)
        if set(map(type, values)) <= _NUMBERS:
            return values  # the common case: all numbers, no call per record
        values = [parse_time(v) for v in values]
        if None not in values:
            return values  # type: ignore[return-value]
        keep = [i for i, t in enumerate(values) if t is not None]
        self.no_time += len(values) - len(keep)
        table = self.table
        extras = {name: [vals[i] for i in keep] for name, vals in table.extra_values.items()}
        table.load([table.lines[i] for i in keep], trusted=True, extras=extras)
        return [values[i] for i in keep]  # type: ignore[misc]

    def _run_window(self, payloads: list) -> tuple[list[str], list[tuple]]:
        if self.extras:
            lines = [p[0] for p in payloads]
            extras = {name: [p[1][i] for p in payloads] for i, name in enumerate(self.extras)}
        else:
            lines, extras = payloads, None
        self.table.load(lines, trusted=True, extras=extras)
        return self._execute()

    def tick(self) -> list[Out]:
        return self.pipeline.tick() + self.pipeline.emitted()

    def finish(self) -> list[Out]:
        return self.pipeline.emitted() + self.pipeline.finish()

    def close(self) -> None:
        self.conn.close()


class _ReadOnly:
    """Only reads while the user's SQL runs: it cannot drop or fill ``stream`` behind our back."""

    def __init__(self, conn: apsw.Connection, read: set[str]) -> None:
        self.conn, self.read = conn, read

    def __enter__(self) -> None:
        def check(op: int, p1: str | None, p2: str | None, db: str | None, trigger: str | None) -> int:
            if op == apsw.SQLITE_READ and p1:
                self.read.add(p1)
            if trigger:  # the view being expanded: `SELECT count(*) FROM stream` reads no column of it
                self.read.add(trigger)
            return apsw.SQLITE_OK if op in _ALLOWED else apsw.SQLITE_DENY

        self.conn.authorizer = check

    def __exit__(self, *exc: object) -> None:
        self.conn.authorizer = None


def _message(err: apsw.Error) -> str:
    head, sep, rest = str(err).partition(": ")
    return rest if sep and head.endswith("Error") else str(err)
