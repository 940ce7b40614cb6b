"""One run of a continuous query, on the SQL thread: read, run the SQL, make result lines, commit.

A run computes its new state (counter, cursors, diff base, windows, first-seen keys,
limit counters) beside the old one and commits it with its result lines in one
transaction; only then does the query's memory take it. When anything fails (the
SQL, the disk), the query drops what it had in memory and reloads the last commit
on its next run, so nothing runs ahead of the disk: the rows wait in their ring.

A run reads at most ``max_rows_per_run`` new event rows (``more`` tells the
scheduler to run again at once), so a backlog goes through the outbox in pieces
that fit a small disk, while the sinks drain it.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..config.sections import ScheduleOptions
from ..sql.session import EventWindow
from ..stream.follow import WindowEntries
from ..stream.pipeline import FINAL, ROW, SUPPRESSED, UPDATE, Out, Pipeline
from . import results, streamstate
from .diff import diff
from .state import QueryState

log = logging.getLogger("streamq.daemon.scheduler")
ACTIONS = {ROW: "added", FINAL: "final", UPDATE: "update", SUPPRESSED: "suppressed"}


class StoreError(Exception):
    """The state store refused the run's commit (a full disk): nothing of the run happened."""


@dataclass
class RunResult:
    rows: int  # result rows written to the outbox
    more: bool = False  # event rows are still waiting past this run's bounded piece
    lines: int = 0  # lines written to the outbox (a `suppressed` line is one without a row)
    output_bytes: int = 0  # their size, newline included, as the sinks receive them


@dataclass
class _Work:
    """What a run produces before its commit."""

    lines: list[bytes]
    count: int
    cursors: dict[str, list]
    base: list[bytes] | None
    more: bool = False
    late: int = 0


class Runner:
    def __init__(
        self, conn: Any, store: Any, options: ScheduleOptions, *, host: str, decorations: Callable[[], dict]
    ) -> None:
        self.conn = conn
        self.store = store
        self.options = options
        self.host = host
        self.decorations = decorations

    def run(self, rt: Any, *, final: bool = False) -> RunResult:
        """Run ``rt`` (a QueryRuntime) once; ``final``: the daemon stops, flush its open windows."""
        try:
            return self._run(rt, final)
        except BaseException:
            rt.state, rt.pipeline = None, None  # reload the last commit next time
            raise

    def _run(self, rt: Any, final: bool) -> RunResult:
        spec = rt.spec
        if rt.state is None:
            rt.state = self.store.load(spec.name, spec.sql, self.options.epoch)
        state: QueryState = rt.state
        if rt.pipeline is None:
            rt.pipeline = self._pipeline(rt, state)
        pipe: Pipeline = rt.pipeline
        now = time.time()
        header = results.Header(
            name=spec.name,
            host=self.host,
            epoch=self.options.epoch,
            counter=state.counter,
            numerics=spec.numerics,
            decorations=self.decorations(),
        )
        if spec.stream.window is not None:
            work = self._windowed(rt, state, pipe, header, now, final)
        elif spec.mode == "stream":
            work = self._stream(rt, state, pipe, header, now, final)
        else:
            work = self._whole(rt, state, pipe, header, now)
        new = dataclasses.replace(
            state,
            counter=state.counter + 1,
            cursors=work.cursors,
            base=work.base,
            stream=streamstate.summary(pipe),
            fresh=False,
        )
        try:
            self.store.commit(
                spec.name,
                new,
                [(sink, work.count, work.lines) for sink in spec.sinks],
                streamstate.changes(spec.name, pipe, now),
            )
        except Exception as err:
            raise StoreError(f"cannot write the state store ({err}); the rows wait in the event ring") from err
        rt.state = new
        streamstate.committed(pipe)
        self._after_commit(rt, new, work)
        size = sum(len(line) + 1 for line in work.lines)
        return RunResult(work.count if work.lines else 0, work.more, len(work.lines), size)

    def _after_commit(self, rt: Any, state: QueryState, work: _Work) -> None:
        rings = self.conn.session.rings
        for table, (origin, eid) in state.cursors.items():
            ring = rings.get(table)
            if ring is not None and ring.origin == origin:
                ring.hold(rt.spec.name, eid)  # a replaying source may checkpoint past it now
        if work.late and rt.event_tables:
            status = rings.status.get(rt.event_tables[0])
            if status is not None:
                status.late += work.late
        windows = rt.pipeline.windows if rt.pipeline is not None else None
        if windows is not None and windows.dropped > rt.reported_drops:
            # A window over the ring's capacity: counted, and said once per new count in the log
            # and in streamq_schedule.last_error (the rows themselves are gone).
            rt.stats.last_error = f"{windows.dropped} rows dropped so far: {windows.drop_note}"
            log.warning("query %s: %s", rt.spec.name, rt.stats.last_error)
            rt.reported_drops = windows.dropped

    # -- building the pipeline -------------------------------------------------------------------

    def _pipeline(self, rt: Any, state: QueryState) -> Pipeline:
        spec = rt.spec
        event_time = False
        if spec.stream.window is not None and rt.event_tables:
            event_time = WindowEntries.of(rt.event_tables[0], spec.stream).event_time
        capacity = self.conn.session.rings.capacity
        pipe = Pipeline(spec.stream, self._window_sql(rt), event_time=event_time, max_rows=capacity, journal=True)
        if not state.fresh:
            streamstate.restore(pipe, state.stream, *self.store.load_stream(spec.name))
        return pipe

    def _window_sql(self, rt: Any) -> Callable[[list], tuple[list[str], list[tuple]]]:
        def run(entries: list) -> tuple[list[str], list[tuple]]:
            return self._execute(rt.spec.sql, EventWindow.of_rows({rt.event_tables[0]: entries}))

        return run

    def _execute(self, sql: str, window: EventWindow) -> tuple[list[str], list[tuple]]:
        with window.apply(self.conn.session):
            names, rows = self.conn.execute(sql)
            return names, list(rows)

    # -- the three kinds of run ------------------------------------------------------------------

    def _floor(self, state: QueryState, table: str) -> int:
        """Where the query's cursor is in ``table``'s ring: valid only for the ring's eid sequence."""
        origin, eid = state.cursors.get(table, [None, 0])
        return eid if origin == self.conn.session.rings.ring(table).origin else 0

    def _windowed(
        self, rt: Any, state: QueryState, pipe: Pipeline, header: results.Header, now: float, final: bool
    ) -> _Work:
        table = rt.event_tables[0]
        ring = self.conn.session.rings.ring(table)
        floor = self._floor(state, table)
        entries = ring.since(floor, limit=self.options.max_rows_per_run)
        read = WindowEntries.of(table, rt.spec.stream)
        late = pipe.late
        pipe.feed(read.times(entries), read.keys(entries), entries)
        outs = pipe.tick(now) + pipe.emitted()
        more = bool(entries) and entries[-1][0] < ring.last_eid
        if final and not more:
            outs += pipe.finish()
        cursor = entries[-1][0] if entries else floor
        lines = _action_lines(header, outs)
        cursors = {**state.cursors, table: [ring.origin, cursor]}
        return _Work(lines, _rows(outs), cursors, state.base, more, pipe.late - late)

    def _stream(
        self, rt: Any, state: QueryState, pipe: Pipeline, header: results.Header, now: float, final: bool
    ) -> _Work:
        rings = self.conn.session.rings
        floors = {table: self._floor(state, table) for table in rt.event_tables}
        window = EventWindow.after(rings, floors, limit=self.options.max_rows_per_run)
        names, rows = self._execute(rt.spec.sql, window)
        outs = pipe.tick(now) + pipe.rows(names, rows, now)
        if final:
            outs += pipe.finish()
        more = any(ceiling < rings.ring(t).last_eid for t, ceiling in window.ceilings.items())
        cursors = {**state.cursors, **{t: [rings.ring(t).origin, eid] for t, eid in window.ceilings.items()}}
        lines = _batch(header, outs) if rt.spec.format == "batch" else _action_lines(header, outs)
        return _Work(lines, _rows(outs), cursors, state.base, more)

    def _whole(self, rt: Any, state: QueryState, pipe: Pipeline, header: results.Header, now: float) -> _Work:
        """diff and snapshot: the whole result each run."""
        spec = rt.spec
        names, rows = self._execute(spec.sql, EventWindow({}, {}))
        ticked = pipe.tick(now)
        if spec.mode == "snapshot":
            outs = ticked + pipe.rows(names, rows, now)
            kept = [dict(zip(o.names, o.row)) for o in outs if o.kind == ROW]
            lines = [results.snapshot_line(header, kept), *_other_lines(header, outs, start=1)]
            return _Work(lines, len(kept), state.cursors, state.base)
        current = [dict(zip(names, row)) for row in rows]
        added, removed, base = diff(state.base or [], current)
        if not spec.removed:
            removed = []
        # First seen applies to added rows; the limit to all. osquery writes removed rows first.
        gone = ticked + pipe.rows(names, [tuple(r.values()) for r in removed], now, dedup=False)
        new = pipe.rows(names, [tuple(r.values()) for r in added], now)
        pairs = [("removed" if o.kind == ROW else ACTIONS[o.kind], dict(zip(o.names, o.row))) for o in gone]
        pairs += [(ACTIONS[o.kind], dict(zip(o.names, o.row))) for o in new]
        if not pairs:
            return _Work([], 0, state.cursors, base)
        count = sum(1 for action, _ in pairs if action != "suppressed")
        if spec.format == "batch":
            added_rows = [row for action, row in pairs if action == "added"]
            removed_rows = [row for action, row in pairs if action == "removed"]
            lines = [results.batch_line(header, added_rows, removed_rows)]
            lines += results.action_lines(header, [p for p in pairs if p[0] == "suppressed"], start=1)
            return _Work(lines, count, state.cursors, base)
        return _Work(results.action_lines(header, pairs), count, state.cursors, base)


def _rows(outs: list[Out]) -> int:
    return sum(1 for o in outs if o.kind != SUPPRESSED)


def _batch(header: results.Header, outs: list[Out]) -> list[bytes]:
    rows = [dict(zip(o.names, o.row)) for o in outs if o.kind == ROW]
    lines = [results.batch_line(header, rows, [])] if rows else []
    return lines + _other_lines(header, outs, start=len(lines))


def _other_lines(header: results.Header, outs: list[Out], start: int) -> list[bytes]:
    """Event lines for what is not a plain row (``suppressed``), after a batch or snapshot line."""
    return _action_lines(header, [o for o in outs if o.kind != ROW], start)


def _action_lines(header: results.Header, outs: list[Out], start: int = 0) -> list[bytes]:
    """One event line per row out, its action named by its kind."""
    return results.action_lines(header, [(ACTIONS[o.kind], dict(zip(o.names, o.row))) for o in outs], start)
