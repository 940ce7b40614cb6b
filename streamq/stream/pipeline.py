"""A query's streaming stages in one place: windows -> the SQL per window -> dedup -> limit.

The daemon's scheduler, ``query --follow`` and ``tail`` each give a :class:`Pipeline`
their rows and a function that runs the query's SQL over one window's rows; what
comes out is a list of :class:`Out` rows, the same for the same input whatever the
chunking. Only how rows reach SQL differs: the event tables read a window's ring
entries (streamq.sql.session.EventWindow), ``tail`` reads JSON lines through SQLite's
own JSON parser (streamq.stream.jsonlines).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from .dedup import SUPPRESSED_NAMES, Dedup, RateLimit, Suppressed
from .spec import StreamSpec
from .windows import Pane, Windows

WINDOW_NAMES = ("window_start", "window_end")
RunSql = Callable[[list], tuple[list[str], list[tuple]]]

ROW = "row"  # a row of a query without a window
FINAL = "final"  # a window's result, emitted once when it closed (or at the end of input)
UPDATE = "update"  # emit = "changes": the current result of a window still open
SUPPRESSED = "suppressed"  # the rate limit held rows back in a period that ended


class Out(NamedTuple):
    """One row the engine emits. A tuple: the plain path of --follow and tail makes one per row."""

    names: list[str]
    row: tuple
    kind: str
    key: tuple = ()  # a session window's key values: which window an update replaces


_new_out = tuple.__new__  # builds an Out from its four fields without a Python-level __init__


class Pipeline:
    def __init__(
        self,
        spec: StreamSpec,
        run_sql: RunSql | None = None,
        *,
        event_time: bool = True,
        max_rows: int = 100_000,
        journal: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.spec = spec
        self.run_sql = run_sql
        self.clock = clock
        self.windows = (
            Windows(spec.window, grace=spec.grace, event_time=event_time, max_rows=max_rows, journal=journal)
            if spec.window
            else None
        )
        self.dedup = Dedup(spec.dedup, spec.dedup_for, journal=journal) if spec.dedup else None
        self.limit = RateLimit(spec.limit) if spec.limit else None
        self.event_time = event_time

    # -- input -----------------------------------------------------------------------------------

    def feed(self, times: Sequence[float], keys: Sequence[tuple] | None, rows: Sequence[Any]) -> None:
        """Rows for the windows, in arrival order (``keys``: the session key of each row)."""
        assert self.windows is not None
        self.windows.add_many(times, keys, rows)

    def tick(self, now: float | None = None) -> list[Out]:
        """The clock moved: arrival-time windows close; a rate-limit period may end."""
        now = self.clock() if now is None else now
        if self.windows is not None and not self.event_time:
            self.windows.advance(now)
        if self.limit is not None and (self.windows is None or not self.event_time):
            report = self.limit.roll(now)
            if report is not None:
                return [_suppressed(report)]
        return []

    # -- output ----------------------------------------------------------------------------------

    def emitted(self) -> list[Out]:
        """The windows that closed (and, emitting changes, those that changed) since the last call."""
        if self.windows is None:
            return []
        closed, changed = self.windows.take()
        outs = self._panes(closed, FINAL)
        if self.spec.emit == "changes":
            outs += self._panes(changed, UPDATE)
        return outs

    def rows(
        self, names: list[str], rows: Sequence[tuple], now: float | None = None, *, dedup: bool = True
    ) -> list[Out]:
        """A query without a window: its result rows through dedup (unless ``dedup`` is false) and the limit."""
        now = self.clock() if now is None else now
        outs: list[Out] = []
        self._post(outs, names, rows, now, ROW, first_seen=dedup)
        return outs

    def finish(self) -> list[Out]:
        """End of input: every open window is emitted, final; the limit's last report."""
        outs = self._panes(self.windows.flush(), FINAL) if self.windows is not None else []
        if self.limit is not None:
            report = self.limit.finish()
            if report is not None:
                outs.append(_suppressed(report))
        return outs

    def next_wakeup(self) -> float | None:
        """When (unix seconds) :meth:`tick` has something to do with no new rows: arrival time only."""
        due = []
        if self.windows is not None and not self.event_time:
            due.append(self.windows.next_close())
        if self.limit is not None and self.limit.suppressed and (self.windows is None or not self.event_time):
            due.append((self.limit.period + 1) * self.limit.limit.period_ms / 1000)
        due = [d for d in due if d is not None]
        return min(due) if due else None

    def _panes(self, panes: list[Pane], kind: str) -> list[Out]:
        outs: list[Out] = []
        for pane in panes:
            names, rows = self.run_sql(pane.rows())
            start, end = pane.bounds
            names = [*names, *WINDOW_NAMES]
            self._post(outs, names, [(*row, start, end) for row in rows], end, kind, key=pane.key)
        return outs

    def _post(
        self,
        outs: list[Out],
        names: list[str],
        rows: Sequence[tuple],
        now: float,
        kind: str,
        *,
        first_seen: bool = True,
        key: tuple = (),
    ) -> None:
        """Dedup (not for updates: a window's final result must not be held back by its updates), then the limit."""
        dedup, limit = self.dedup if first_seen and kind != UPDATE else None, self.limit
        if dedup is None and limit is None:  # the common case, on the hot path of --follow and tail
            outs.extend([_new_out(Out, (names, row, kind, key)) for row in rows])
            return
        if limit is not None:
            report = limit.roll(now)
            if report is not None:
                outs.append(_suppressed(report))
        for row in rows:
            if dedup is not None and not dedup.first(names, row, now):
                continue
            if limit is not None and not limit.admit(now):
                continue
            outs.append(Out(names, row, kind, key))

    # -- what a summary or streamq_events shows --------------------------------------------------

    @property
    def late(self) -> int:
        return self.windows.late if self.windows is not None else 0

    @property
    def dropped(self) -> int:
        return self.windows.dropped if self.windows is not None else 0


def _suppressed(report: Suppressed) -> Out:
    return Out(SUPPRESSED_NAMES, report.row(), SUPPRESSED)
