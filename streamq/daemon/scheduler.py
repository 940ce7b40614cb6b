"""Continuous queries: triggers, modes, the per-query deadline and the denylist.

A query runs on a timer (``interval``, splayed as osquery does) and/or when
its ``on`` event tables get new rows (debounced). Each run happens on the SQL
thread; its new state and its result lines are committed together to the
state store, whose outbox feeds the sinks (see streamq.daemon.state).

Modes: ``diff`` (added/removed rows against the previous result), ``snapshot``
(every row, each run) and ``stream`` (event rows newer than the query's cursor).
"""

from __future__ import annotations

import asyncio
import logging
import random
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..config.sections import ScheduleOptions
from ..errors import QueryError
from ..ring import RingWaker
from ..sql.session import EventWindow
from . import results
from .diff import diff
from .queries import QuerySpec
from .state import QueryState

log = logging.getLogger("streamq.daemon.scheduler")


@dataclass
class QueryStats:
    """What streamq_schedule (and osquery_schedule) show about a query."""

    executions: int = 0
    last_executed: int | None = None
    wall_ms_total: int = 0
    last_wall_ms: int = 0
    user_ms_total: int = 0
    last_user_ms: int = 0
    system_ms_total: int = 0
    last_system_ms: int = 0
    rows_out: int = 0
    output_bytes: int = 0
    errors: int = 0
    last_error: str | None = None
    overruns: int = 0  # consecutive runs past the deadline
    denylisted_until: float = 0.0


@dataclass
class QueryRuntime:
    spec: QuerySpec
    stats: QueryStats = field(default_factory=QueryStats)
    state: QueryState | None = None
    event_tables: tuple[str, ...] = ()
    task: asyncio.Task | None = None

    @property
    def denylisted(self) -> bool:
        return time.time() < self.stats.denylisted_until


class Scheduler:
    """Owns the query runtimes; ``sql`` runs a function on the SQL thread."""

    def __init__(
        self,
        sql: Callable[..., Any],
        conn: Any,
        store: Any,
        options: ScheduleOptions,
        *,
        host: str,
        notify_sinks: Callable[[tuple[str, ...]], None],
        decorations: Callable[[], dict] | None = None,
    ) -> None:
        self.sql = sql
        self.conn = conn
        self.store = store
        self.options = options
        self.host = host
        self.notify_sinks = notify_sinks
        self.decorations = decorations or dict
        self.queries: dict[str, QueryRuntime] = {}
        self.generation = ""  # the rings' identity: cursors from another daemon run mean nothing
        self.stopping = False  # set at shutdown: a running query is interrupted, not waited for

    # -- adding and removing ------------------------------------------------------------------

    async def add(self, spec: QuerySpec) -> QueryRuntime:
        tables = await self.sql(self._event_tables, spec.sql)
        rt = QueryRuntime(spec, event_tables=tables)
        self.queries[spec.name] = rt
        rt.task = asyncio.create_task(self._loop(rt), name=f"query:{spec.name}")
        return rt

    def _event_tables(self, sql: str) -> tuple[str, ...]:
        try:
            read = self.conn.tables_read(sql)
        except QueryError:
            return ()  # the run reports the error; the query stays scheduled
        return tuple(sorted(t for t in read if t in self.conn.session.rings))

    async def remove(self, name: str) -> None:
        rt = self.queries.pop(name, None)
        if rt and rt.task:
            rt.task.cancel()
            await asyncio.gather(rt.task, return_exceptions=True)

    async def stop(self) -> None:
        self.stopping = True  # read by the progress handler of a query running now
        for name in list(self.queries):
            await self.remove(name)

    # -- triggering ---------------------------------------------------------------------------

    async def _loop(self, rt: QueryRuntime) -> None:
        spec = rt.spec
        rings = self.conn.session.rings
        # A stream query without `on` wakes on the event tables it reads.
        triggers = spec.on or (rt.event_tables if spec.mode == "stream" else ())
        interval = spec.interval
        if interval is None and not triggers:
            interval = 60.0  # nothing would ever wake it: run it on a timer rather than spin
        waker = RingWaker(rings.ring(t) for t in triggers)
        splay = self.options.splay_percent / 100.0
        # The first run comes soon (within a second, splayed) so a fresh daemon has its baselines.
        next_run = time.monotonic() + (random.uniform(0, min(interval * splay, 1.0)) if interval else 0)
        try:
            if not interval:
                await self.run_once(rt)  # a purely event-driven query still takes its baseline now
            while True:
                timeout = None if interval is None else max(0.0, next_run - time.monotonic())
                if triggers:
                    try:
                        await asyncio.wait_for(waker.wait(), timeout)
                        await asyncio.sleep(spec.debounce)  # let a burst of events land in one run
                        waker.clear()
                    except TimeoutError:
                        pass
                else:
                    await asyncio.sleep(timeout or 0)
                await self.run_once(rt)
                if interval is not None and time.monotonic() >= next_run:
                    next_run = time.monotonic() + interval * random.uniform(1 - splay, 1 + splay)
        finally:
            waker.close()

    # -- running ------------------------------------------------------------------------------

    async def run_once(self, rt: QueryRuntime) -> int:
        """Run the query once; return the number of result rows written to the outbox."""
        if rt.denylisted:
            return 0
        try:
            written = await self.sql(self._run, rt)
        except asyncio.CancelledError:
            raise
        except Exception as err:  # the query failed; the daemon and the other queries go on
            self._failed(rt, err)
            return 0
        if written:
            self.notify_sinks(rt.spec.sinks)
        return written

    def _failed(self, rt: QueryRuntime, err: Exception) -> None:
        stats = rt.stats
        if self.stopping:
            return  # interrupted by the shutdown, not by its deadline
        previous = stats.last_error
        stats.errors += 1
        stats.last_error = str(err) if isinstance(err, QueryError) else f"{type(err).__name__}: {err}"
        if "interrupted" in stats.last_error:
            stats.overruns += 1
            stats.last_error = f"ran past its {rt.spec.deadline:g}s deadline"
            if stats.overruns >= self.options.denylist_after:
                stats.denylisted_until = time.time() + self.options.denylist_for
                stats.overruns = 0
                log.warning(
                    "query %s: over its deadline %d times in a row, denylisted for %gs",
                    rt.spec.name,
                    self.options.denylist_after,
                    self.options.denylist_for,
                )
                return
        if stats.last_error != previous:  # a query failing the same way every second logs it once
            log.warning("query %s failed: %s", rt.spec.name, stats.last_error)

    def _run(self, rt: QueryRuntime) -> int:
        spec = rt.spec
        if rt.state is None:
            rt.state = self.store.load(spec.name, spec.sql, self.options.epoch)
        state = rt.state
        session = self.conn.session
        window = self._window(rt) if spec.mode == "stream" else EventWindow({}, {})
        started = time.monotonic()
        usage = resource.getrusage(resource.RUSAGE_THREAD)
        deadline = started + spec.deadline
        self.conn.apsw.set_progress_handler(lambda: self.stopping or time.monotonic() > deadline, 1000)
        try:
            with window.apply(session):
                names, rows = self.conn.execute(spec.sql)
                current = [dict(zip(names, row)) for row in rows]
        finally:
            self.conn.apsw.set_progress_handler(None)
        header = results.Header(
            name=spec.name,
            host=self.host,
            epoch=self.options.epoch,
            counter=state.counter,
            numerics=spec.numerics,
            decorations=self.decorations(),
        )
        lines, count = self._lines(rt, header, current)
        state.counter += 1
        if window.ceilings:
            state.cursors.update({t: [self.generation, eid] for t, eid in window.ceilings.items()})
        self.store.commit(spec.name, state, [(sink, count, lines) for sink in spec.sinks])
        self._account(rt, started, usage, count, lines)
        return count if lines else 0

    def _window(self, rt: QueryRuntime) -> EventWindow:
        """From the query's saved cursors (valid only for this daemon run's rings) to now."""
        floors = {}
        for table in rt.event_tables:
            generation, eid = rt.state.cursors.get(table, [None, 0])
            floors[table] = eid if generation == self.generation else 0
        return EventWindow.after(self.conn.session.rings, floors)

    def _lines(self, rt: QueryRuntime, header: results.Header, current: list[dict]) -> tuple[list[bytes], int]:
        spec, state = rt.spec, rt.state
        if spec.mode == "snapshot":
            return [results.snapshot_line(header, current)], len(current)
        if spec.mode == "stream":
            if not current:
                return [], 0
            if spec.format == "batch":
                return [results.batch_line(header, current, [])], len(current)
            return results.event_lines(header, current, []), len(current)
        added, removed, state.base = diff(state.base or [], current)
        if not spec.removed:
            removed = []
        if not added and not removed:
            return [], 0
        if spec.format == "batch":
            return [results.batch_line(header, added, removed)], len(added) + len(removed)
        return results.event_lines(header, added, removed), len(added) + len(removed)

    def _account(self, rt: QueryRuntime, started: float, usage: Any, count: int, lines: list[bytes]) -> None:
        stats = rt.stats
        after = resource.getrusage(resource.RUSAGE_THREAD)
        wall = int((time.monotonic() - started) * 1000)
        user = int((after.ru_utime - usage.ru_utime) * 1000)
        system = int((after.ru_stime - usage.ru_stime) * 1000)
        stats.executions += 1
        stats.last_executed = int(time.time())
        stats.last_wall_ms, stats.last_user_ms, stats.last_system_ms = wall, user, system
        stats.wall_ms_total += wall
        stats.user_ms_total += user
        stats.system_ms_total += system
        stats.rows_out += count
        stats.output_bytes += sum(len(line) + 1 for line in lines)
        stats.overruns = 0
