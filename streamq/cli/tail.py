"""`streamq tail SOURCE`: JSON records from a file, stdin or an MQTT topic, optionally through SQL.

Records are rows of the table ``stream``. Its columns are the keys of the
first record plus every column the SQL names (found by preparing the SQL and
adding each column SQLite reports missing), untyped so values stay as JSON
gave them (objects and arrays as JSON text), plus ``raw``, the record itself.
Keys that only later records have are read with ``json_extract(raw, '$.k')``.

This is a dedicated loop rather than :class:`streamq.cli.follow.Follower`: a
Follower's event tables are declared from a config before anything is read,
while ``stream`` learns its columns from the data, and a tail of stdin must end
when stdin does. The jsonl/mqtt source hands decoded batches through a small
bounded queue, so a large file is never read faster than the SQL keeps up and
nothing is dropped; the SQL runs once per batch over a temp table (aggregates
are therefore per batch, as in ``query --follow``).
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import apsw

from ..errors import ConfigError, QueryError, StreamqError
from ..ring import Rings, SourceStatus
from ..sources.jsonl import JsonlSource
from ..sources.mqtt import MqttSource
from ..sources.records import dumps, sql_value

TABLE = "stream"
_QUEUE_BATCHES = 4
_MAX_COLUMNS = 500
_MAX_DISCOVERED = 64
_END = object()
_MISSING_COLUMN = re.compile(r"^no such column: (.+)$|^cannot join using column (.+) - column not present")
_ALLOWED = {apsw.SQLITE_SELECT, apsw.SQLITE_READ, apsw.SQLITE_FUNCTION, apsw.SQLITE_RECURSIVE}


@dataclass
class TailResult:
    emitted: int
    skipped: int
    last_skip: str | None


class StreamQuery:
    """The user's SQL over ``stream``, run once per batch of records."""

    def __init__(self, sql: str) -> None:
        self.sql = sql
        self.columns: list[str] = []  # record keys and SQL-named columns; "raw" is added last
        self._folded: set[str] = {"raw"}
        self._adopted = False
        self._full = False  # connected with every streamq table (only when the SQL joins one)
        self.conn = self._connect(full=False)
        self._prepare()

    def _connect(self, *, full: bool) -> apsw.Connection:
        if full:
            from ..sql.connection import connect

            return connect().apsw
        from ..sql import functions

        conn = apsw.Connection(":memory:")
        functions.register(conn)
        return conn

    def _add(self, name: str) -> bool:
        if name.lower() in self._folded or len(self.columns) >= _MAX_COLUMNS:
            return False  # SQLite's names ignore case: "User" and "user" are one column
        self._folded.add(name.lower())
        self.columns.append(name)
        return True

    def _create(self) -> None:
        cols = ", ".join(_quote(c) for c in [*self.columns, "raw"])
        self.conn.execute(f"DROP TABLE IF EXISTS temp.{TABLE}; CREATE TEMP TABLE {TABLE} ({cols})")
        marks = ", ".join("?" * (len(self.columns) + 1))
        self._insert = f"INSERT INTO temp.{TABLE} VALUES ({marks})"

    def _prepare(self) -> None:
        """Create ``stream`` with every column the SQL names; QueryError for SQL that cannot run."""
        for _ in range(_MAX_DISCOVERED):
            self._create()
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

    def run(self, records: list[dict]) -> Iterator[tuple[list[str], tuple]]:
        if not self._adopted:
            self._adopted = True
            added = [k for k in records[0] if k != "raw" and self._add(k)]
            if added:
                self._prepare()
        keys = [*self.columns, "raw"]
        conn = self.conn
        conn.executemany(self._insert, [tuple(sql_value(r.get(k)) for k in keys) for r in records])
        try:
            names: list[str] = []

            def capture_names(cur: apsw.Cursor, statement: str, bindings: object) -> bool:
                names[:] = [d[0] for d in cur.get_description()]  # known only while prepared
                return True

            cursor = conn.cursor()
            cursor.exec_trace = capture_names
            with _ReadOnly(conn, set()):
                rows = list(cursor.execute(self.sql))
        except apsw.Error as err:
            raise QueryError(_message(err)) from None
        finally:
            conn.execute(f"DELETE FROM temp.{TABLE}")
        for row in rows:
            yield names, row

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
            return apsw.SQLITE_OK if op in _ALLOWED else apsw.SQLITE_DENY

        self.conn.authorizer = check

    def __exit__(self, *exc: object) -> None:
        self.conn.authorizer = None


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _message(err: apsw.Error) -> str:
    head, sep, rest = str(err).partition(": ")
    return rest if sep and head.endswith("Error") else str(err)


def _json_line(names: list[str], row: tuple) -> str:
    return dumps({n: (v.hex() if isinstance(v, bytes) else v) for n, v in zip(names, row)})


# -- sources that hand batches to the tail loop instead of a ring ---------------------------------


class _TailLines(JsonlSource):
    def __init__(self, path: str, queue: asyncio.Queue, *, from_start: bool) -> None:
        options = JsonlSource.Options(path=path, columns=None, from_start=from_start)
        super().__init__(TABLE, options, Rings(capacity=1, max_age=None))
        self.queue = queue

    async def deliver(self, rows: list[dict]) -> None:
        await self.queue.put(rows)  # waits while the SQL is behind: backpressure, not drops


class _TailMqtt(MqttSource):
    def __init__(self, url: str, queue: asyncio.Queue) -> None:
        super().__init__(TABLE, MqttSource.Options(url=url, columns=None), Rings(capacity=1, max_age=None))
        self.queue = queue

    async def deliver(self, rows: list[dict]) -> None:
        await self.queue.put(rows)


def open_source(spec: str, queue: asyncio.Queue, *, from_start: bool = True) -> JsonlSource | MqttSource:
    """The source ``spec`` names: ``-``, a file path, or ``mqtt[s]://host:port/topic/filter``."""
    if spec.startswith(("mqtt://", "mqtts://")):
        source = _TailMqtt(spec, queue)
        if source.topic == "#" and not spec.rstrip("/").endswith("#"):
            raise ConfigError(f"{spec}: name a topic filter after the port, e.g. mqtt://host:1883/sensors/#")
        return source
    if spec != "-":
        try:
            os.stat(spec)
        except OSError as err:
            raise StreamqError(f"cannot open {spec}: {err.strerror}") from None
        if os.path.isdir(spec):
            raise StreamqError(f"cannot tail {spec}: it is a directory")
    return _TailLines(spec, queue, from_start=from_start)


async def _pump(source: JsonlSource | MqttSource, queue: asyncio.Queue) -> None:
    try:
        await source.run()
    except asyncio.CancelledError:
        raise
    except Exception as err:  # handed to the loop, which reports it
        await queue.put(err)
        return
    await queue.put(_END)


async def tail(
    spec: str,
    emit: Callable[[str], Any],
    *,
    sql: str | None = None,
    count: int | None = None,
    timeout: float | None = None,
    from_start: bool = True,
) -> TailResult:
    """Call ``emit(json_line)`` per record (or per SQL result row) until the input ends,
    ``count`` lines were emitted or ``timeout`` seconds passed."""
    query = StreamQuery(sql) if sql else None  # bad SQL fails before anything is read
    queue: asyncio.Queue = asyncio.Queue(_QUEUE_BATCHES)
    source = open_source(spec, queue, from_start=from_start)
    pump = asyncio.create_task(_pump(source, queue), name=f"tail:{spec}")
    deadline = None if timeout is None else time.monotonic() + timeout
    emitted = 0
    try:
        while count is None or emitted < count:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                break
            try:
                batch = await asyncio.wait_for(queue.get(), remaining)
            except TimeoutError:
                break
            if batch is _END:
                break
            if isinstance(batch, BaseException):
                if isinstance(batch, StreamqError):
                    raise batch
                raise StreamqError(str(batch)) from batch
            lines = (r["raw"] for r in batch) if query is None else (_json_line(*x) for x in query.run(batch))
            for line in lines:
                emit(line)
                emitted += 1
                if count is not None and emitted >= count:
                    break
    finally:
        pump.cancel()
        await asyncio.gather(pump, return_exceptions=True)
        if query is not None:
            query.close()
    return TailResult(emitted, source.status.skipped, _skip_reason(source.status))


def _skip_reason(status: SourceStatus) -> str | None:
    return status.last_error if status.skipped else None
