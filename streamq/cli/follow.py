"""`--follow`: run a query each time its event tables get new rows, printing only new results.

Each run reads one :class:`~streamq.sql.session.EventWindow` of the event
tables, so every event is read once even while more arrive during a run. SQL
runs on one worker thread that owns the APSW connection; the event loop stays
free for the sources.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any

from ..config.sections import Config
from ..errors import ConfigError, StreamqError
from ..ring import Rings, RingWaker
from ..sources import manager, table_sources
from ..sql.connection import Connection, connect
from ..sql.session import EventWindow
from ..sql.thread import SqlThread

RowSink = Callable[[Sequence[str], Sequence[Any]], None]


class Follower:
    """Owns the rings, the sources a query needs, and the SQL thread."""

    def __init__(self, config: Config, rings: Rings | None = None) -> None:
        self.config = config
        self.rings = rings or Rings(config.rings.capacity, config.rings.max_age)
        self._sql = SqlThread()
        self.conn: Connection | None = None
        self._tasks: list[asyncio.Task] = []

    async def open(self) -> None:
        manager.declare_stream_tables(self.config.sources)
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
    ) -> int:
        """Print new result rows until ``count`` rows or ``timeout`` seconds; return rows emitted."""
        tables = await self.event_tables(sql)
        if not tables:
            fillable = ", ".join(sorted(table_sources(self.config.sources)))
            raise ConfigError(f"--follow needs a query over an event table ({fillable})")
        self.start_sources(tables)
        waker = RingWaker(self.rings.ring(t) for t in tables)
        floors = {t: self.rings.ring(t).last_eid for t in tables}
        deadline = None if timeout is None else time.monotonic() + timeout
        emitted = 0
        if ready:
            ready()
        try:
            while count is None or emitted < count:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    break
                waiter = asyncio.ensure_future(waker.wait())
                done, _ = await asyncio.wait(
                    {waiter, *self._tasks}, timeout=remaining, return_when=asyncio.FIRST_COMPLETED
                )
                if waiter not in done:
                    waiter.cancel()
                    if not done:
                        break  # the timeout
                    self._check_sources(tables)
                    continue
                waker.clear()
                window = EventWindow.after(self.rings, floors)
                if window.empty:
                    continue
                names, rows = await self._sql(lambda w=window: self._read(sql, w))
                floors = window.ceilings
                for row in rows:
                    emit(names, row)
                    emitted += 1
                    if count is not None and emitted >= count:
                        break
        finally:
            waker.close()
        return emitted

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

    def _read(self, sql: str, window: EventWindow) -> tuple[list[str], list[tuple]]:
        with window.apply(self.conn.session):
            names, rows = self.conn.execute(sql)
            return names, list(rows)

    async def close(self) -> None:
        await manager.stop(self._tasks)
        self._tasks = []
        if self.conn is not None:
            conn, self.conn = self.conn, None
            await self._sql(conn.close)
        self._sql.close()
