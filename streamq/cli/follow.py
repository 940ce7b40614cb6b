"""`--follow`: run a query each time its event tables get new rows, printing only new results.

Each run reads one :class:`~streamq.sql.session.EventWindow` of the event
tables, so every event is read once even while more arrive during a run. SQL
runs on one worker thread that owns the APSW connection; the event loop stays
free for the sources.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable, Sequence

from ..config.sections import Config
from ..daemon.checks import learn_columns, naming
from ..errors import ConfigError, StreamqError
from ..ring import Rings, RingWaker
from ..sources import manager, table_sources
from ..sql.connection import Connection, connect
from ..sql.session import EventWindow
from ..sql.thread import SqlThread
from ..stream.follow import FollowedQuery
from ..stream.spec import StreamSpec
from .streaming import OutPrinter, RowSink, stop_on_signals, until


class Follower:
    """Owns the rings, the sources a query needs, and the SQL thread."""

    def __init__(self, config: Config, rings: Rings | None = None) -> None:
        self.config = config
        self.rings = rings or Rings(config.rings.capacity, config.rings.max_age)
        self._sql = SqlThread()
        self.conn: Connection | None = None
        self._tasks: list[asyncio.Task] = []

    async def open(self, sql: str | None = None, window_key: Sequence[str] = ()) -> None:
        sqls = naming(self.config, sql, window_key) if sql else []
        learned = await self._sql(learn_columns, self.config, sqls)
        manager.declare_stream_tables(self.config.sources, learned)
        self.conn = await self._sql(lambda: connect(rings=self.rings))

    async def event_tables(self, sql: str) -> list[str]:
        """The event tables ``sql`` reads (tables some source could fill)."""
        read = await self._sql(lambda: self.conn.tables_read(sql))
        fillable = table_sources(self.config.sources)
        return sorted(t for t in read if t in fillable)

    def start_sources(self, tables: Sequence[str]) -> None:
        self._tasks = manager.start(manager.build(self.config.sources, self.rings, tables))

    async def follow(
        self,
        sql: str,
        emit: RowSink,
        *,
        count: int | None = None,
        timeout: float | None = None,
        ready: Callable[[], None] | None = None,
        options: StreamSpec | None = None,
    ) -> int:
        """Print new result rows until ``count`` rows or ``timeout`` seconds; return rows emitted.

        The engine is streamq.stream.follow's, which the console and the control socket run too.
        With a window, the SQL runs once per window; open windows are
        emitted when following ends (``count``, ``timeout``, SIGINT/SIGTERM)."""
        options = options or StreamSpec()
        tables = await self.event_tables(sql)
        if not tables:
            fillable = ", ".join(sorted(table_sources(self.config.sources)))
            raise ConfigError(f"--follow needs a query over an event table ({fillable})")
        query = await self._sql(
            lambda: FollowedQuery(self.conn.apsw, self.rings, sql, tables, options, self._reader(sql))
        )
        self.start_sources(tables)
        waker = RingWaker(self.rings.ring(t) for t in tables)
        deadline = None if timeout is None else time.monotonic() + timeout
        printed = OutPrinter(emit, count, changes=options.emit == "changes")
        stop = asyncio.Event()
        if ready:
            ready()
        with stop_on_signals(stop):
            try:
                while not printed.full and not stop.is_set():
                    wait = until(deadline, query.next_wakeup())
                    if deadline is not None and wait is not None and wait <= 0 and time.monotonic() >= deadline:
                        break
                    waiter = asyncio.ensure_future(waker.wait())
                    stopper = asyncio.ensure_future(stop.wait())
                    done, _ = await asyncio.wait(
                        {waiter, stopper, *self._tasks}, timeout=wait, return_when=asyncio.FIRST_COMPLETED
                    )
                    stopper.cancel()
                    if waiter not in done:
                        waiter.cancel()
                        if stop.is_set() or (deadline is not None and time.monotonic() >= deadline):
                            break
                        if done:
                            self._check_sources(tables)
                            continue
                        printed(await self._sql(query.tick))  # a clock-driven close
                        continue
                    waker.clear()
                    printed(await self._sql(query.step))
                printed(await self._sql(query.finish))
            finally:
                waker.close()
        for note in self.notes(query, tables):
            print(f"streamq: {note}", file=sys.stderr)
        return printed.emitted

    def notes(self, query: FollowedQuery, tables: Sequence[str]) -> list[str]:
        """What stderr says at the end, as `tail` does: skipped records, late rows, dropped rows."""
        out = []
        for table in tables:
            status = self.rings.status.get(table)
            if status is not None and status.skipped:
                out.append(f"{table}: skipped {status.skipped} record(s); last: {status.last_error}")
        if query.missed:
            capacity = self.rings.capacity
            out.append(f"missed {query.missed} row(s): the ring ([rings] capacity = {capacity}) overwrote them unread")
        windows = query.pipe.windows
        if windows is not None and windows.late:
            out.append(f"{windows.late} late row(s): their windows were already emitted")
        if windows is not None and windows.dropped:
            out.append(f"dropped {windows.dropped} row(s): {windows.drop_note}")
        return out

    def _reader(self, sql: str):
        """How the engine runs ``sql`` over a window of events: this command's own connection, uncapped."""

        def read(window: EventWindow) -> tuple[list[str], list[tuple], bool]:
            with window.apply(self.conn.session):
                names, rows = self.conn.execute(sql)
                return names, list(rows), False

        return read

    def _check_sources(self, tables: Sequence[str]) -> None:
        """A source that ended (it cannot run here) leaves --follow waiting for nothing: say why."""
        running = [t for t in self._tasks if not t.done()]
        if running:
            self._tasks = running
            return
        reasons = [
            f"{self.rings.status[t].source}: {self.rings.status[t].last_error}"
            for t in tables
            if t in self.rings.status and self.rings.status[t].last_error
        ]
        raise StreamqError("no event source could run: " + ("; ".join(reasons) or "they all ended"))

    async def close(self) -> None:
        await manager.stop(self._tasks)
        self._tasks = []
        if self.conn is not None:
            conn, self.conn = self.conn, None
            await self._sql(conn.close)
        self._sql.close()
