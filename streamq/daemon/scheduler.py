"""Continuous queries: triggers, modes, the per-query deadline and the denylist.

A query runs on a timer (``interval``, splayed as osquery does) and/or when
its ``on`` event tables get new rows (debounced). Each run happens on the SQL
thread; its new state and its result lines are committed together to the
state store, whose outbox feeds the sinks (see streamq.daemon.state).

Modes: ``diff`` (added/removed rows against the previous result), ``snapshot``
(every row, each run) and ``stream`` (event rows newer than the query's cursor,
or, with a window, each window's result once; streamq.stream). One run is
streamq.daemon.runner; a backlog goes through in bounded pieces, run after run.
"""

from __future__ import annotations

import asyncio
import logging
import random
import resource
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ..config.sections import ScheduleOptions
from ..errors import QueryError
from ..ring import RingWaker
from ..stream.pipeline import Pipeline
from .queries import QuerySpec
from .runner import Runner, RunResult, StoreError
from .state import QueryState

log = logging.getLogger("streamq.daemon.scheduler")


async def _no_wait(sinks: tuple[str, ...], rows: int) -> None:
    await asyncio.sleep(0)


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
    state: QueryState | None = None  # the last committed state; None: load it from the store
    pipeline: Pipeline | None = None  # windows, first-seen keys, limit; None: rebuild from the store
    event_tables: tuple[str, ...] = ()
    task: asyncio.Task | None = None
    store_failing: bool = False
    reported_drops: int = 0  # window rows over capacity already logged

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
        on_store_error: Callable[[tuple[str, ...], str | None], None] | None = None,
        outbox_room: Callable[[tuple[str, ...], int], Awaitable[None]] | None = None,
    ) -> None:
        self.sql = sql
        self.conn = conn
        self.store = store
        self.options = options
        self.host = host
        self.notify_sinks = notify_sinks
        self.on_store_error = on_store_error or (lambda sinks, error: None)
        self.outbox_room = outbox_room or _no_wait
        self.runner = Runner(conn, store, options, host=host, decorations=decorations or dict)
        self.queries: dict[str, QueryRuntime] = {}
        self.stopping = False  # set at shutdown: a running query is interrupted, not waited for

    # -- adding and removing ------------------------------------------------------------------

    async def add(self, spec: QuerySpec) -> QueryRuntime:
        tables = await self.sql(self._event_tables, spec.sql)
        self.hold(spec, tables)
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

    def hold_all(self, specs: Iterable[QuerySpec], reads: dict[str, list[str]]) -> None:
        """:meth:`hold` for each of ``specs`` over the event tables ``reads`` names for it."""
        for spec in specs:
            self.hold(spec, reads.get(spec.name, ()))

    def hold(self, spec: QuerySpec, tables: Iterable[str]) -> None:
        """Before ``spec``'s sources start: a replaying source keeps what the query has not committed."""
        if spec.mode == "stream":
            for table in tables:
                self.conn.session.rings.ring(table).hold(spec.name, 0)

    async def remove(self, name: str) -> None:
        rt = self.queries.pop(name, None)
        if rt and rt.task:
            rt.task.cancel()
            await asyncio.gather(rt.task, return_exceptions=True)
        if rt:
            for table in rt.event_tables:
                self.conn.session.rings.ring(table).release(name)

    async def stop(self, *, flush_for: float = 2.0) -> None:
        """Stop every query; first, within ``flush_for`` seconds, flush the open windows (marked final)."""
        self.stopping = True  # read by the progress handler of a query running now
        for rt in self.queries.values():
            if rt.task:
                rt.task.cancel()
        await asyncio.gather(*(rt.task for rt in self.queries.values() if rt.task), return_exceptions=True)
        flushing = [rt for rt in self.queries.values() if rt.spec.stream.window is not None]
        deadline = time.monotonic() + flush_for
        for rt in flushing:
            while time.monotonic() < deadline:
                if not (await self.run_once(rt, final=True)).more:
                    break
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
                await self._catch_up(rt)  # a purely event-driven query still takes its baseline now
            while True:
                timeout = None if interval is None else max(0.0, next_run - time.monotonic())
                wakeup = rt.pipeline.next_wakeup() if rt.pipeline is not None else None
                if wakeup is not None:  # an arrival-time window ends, or a limit period
                    timeout = max(0.0, min(timeout if timeout is not None else wakeup, wakeup - time.time()))
                if rt.store_failing:
                    timeout = min(timeout if timeout is not None else 1.0, 1.0)  # retry while the disk is full
                if triggers:
                    try:
                        await asyncio.wait_for(waker.wait(), timeout)
                        await asyncio.sleep(spec.debounce)  # let a burst of events land in one run
                        waker.clear()
                    except TimeoutError:
                        pass
                else:
                    await asyncio.sleep(timeout or 0)
                await self._catch_up(rt)
                if interval is not None and time.monotonic() >= next_run:
                    next_run = time.monotonic() + interval * random.uniform(1 - splay, 1 + splay)
        finally:
            waker.close()

    async def _catch_up(self, rt: QueryRuntime) -> None:
        """Run until the query has read every waiting row, a bounded piece per run; between pieces
        the sinks take what the last one wrote, so a backlog never piles up in the outbox."""
        while (await self.run_once(rt)).more:
            await self.outbox_room(rt.spec.sinks, 2 * self.options.max_rows_per_run)

    # -- running ------------------------------------------------------------------------------

    async def run_once(self, rt: QueryRuntime, *, final: bool = False) -> RunResult:
        """Run the query once; the result says how many rows went to the outbox and if more wait."""
        if rt.denylisted:
            return RunResult(0)
        try:
            result = await self.sql(self._run, rt, final)
        except asyncio.CancelledError:
            raise
        except Exception as err:  # the query failed; the daemon and the other queries go on
            self._failed(rt, err)
            return RunResult(0)
        if rt.store_failing:
            rt.store_failing = False
            log.warning("query %s: the state store takes results again", rt.spec.name)
            self.on_store_error(rt.spec.sinks, None)
        if result.lines:
            self.notify_sinks(rt.spec.sinks)
        return result

    def _failed(self, rt: QueryRuntime, err: Exception) -> None:
        stats = rt.stats
        if self.stopping and not isinstance(err, StoreError):
            return  # interrupted by the shutdown, not by its deadline
        previous = stats.last_error
        stats.errors += 1
        stats.last_error = str(err) if isinstance(err, (QueryError, StoreError)) else f"{type(err).__name__}: {err}"
        if isinstance(err, StoreError):
            rt.store_failing = True
            self.on_store_error(rt.spec.sinks, stats.last_error)
        elif "interrupted" in stats.last_error:
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

    def _run(self, rt: QueryRuntime, final: bool) -> RunResult:
        started = time.monotonic()
        usage = resource.getrusage(resource.RUSAGE_THREAD)
        deadline = started + rt.spec.deadline
        self.conn.apsw.set_progress_handler(lambda: (self.stopping and not final) or time.monotonic() > deadline, 1000)
        try:
            result = self.runner.run(rt, final=final)
        finally:
            self.conn.apsw.set_progress_handler(None)
        self._account(rt, started, usage, result)
        return result

    def _account(self, rt: QueryRuntime, started: float, usage: Any, result: RunResult) -> None:
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
        stats.rows_out += result.rows
        stats.output_bytes += result.output_bytes
        stats.overruns = 0
