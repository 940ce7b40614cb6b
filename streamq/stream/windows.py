"""Window assignment, the watermark and closing: which rows make each window, and when it is done.

Rows are fed one at a time, in arrival order, and for each row the lateness check,
the assignment, the watermark's advance and the closing of windows happen before
the next row is looked at. Which windows exist and which rows each holds therefore
depend only on the sequence of rows, never on how that sequence was chunked.

* tumble: ``[k*size, (k+1)*size)``; hop: every ``slide``, ``size`` long; a row is in
  each window that contains its time. Bounds are whole milliseconds since the epoch.
* session: per key, the rows whose ``[time, time + gap)`` intervals touch form one
  window ``[first time, last time + gap)``; a row that bridges two sessions merges them.
* The watermark is the largest event time seen minus ``grace`` (event time), or the
  clock minus ``grace`` (arrival time, :meth:`Windows.advance`). A window closes when
  the watermark reaches its end; a row whose windows have all closed is late: counted,
  never added. (With a hop window, a row that missed one of its windows is counted
  late too, and still joins the ones still open.)
* A window holds at most ``max_rows`` rows; more are counted in ``dropped``.

With ``journal=True`` every change is also recorded in :attr:`Windows.journal` for the
daemon to persist in the same transaction as the results (see streamq.daemon.windowstate).
"""

from __future__ import annotations

import heapq
from collections.abc import Hashable, Iterable, Sequence
from typing import Any

import orjson

from .spec import Window

INF = float("inf")
Key = tuple


class Pane:
    """One window: ``[start, end)`` in ms, its key, and its rows in segments.

    A session that absorbed others keeps each one's rows as a segment named by that
    session's id, and reads them in id order, so a window's rows come out in the same
    order after a merge as after a restart (which reloads them by segment).
    """

    __slots__ = ("alive", "count", "end", "id", "key", "order", "segments", "start")

    def __init__(self, id: int, start: int, end: int, key: Key, order: bytes) -> None:
        self.id, self.start, self.end, self.key, self.order = id, start, end, key, order
        self.segments: dict[int, list] = {id: []}
        self.count = 0
        self.alive = True

    def rows(self) -> list:
        if len(self.segments) == 1:
            return next(iter(self.segments.values()))
        return [row for seg in sorted(self.segments) for row in self.segments[seg]]

    def sort_key(self) -> tuple:
        return (self.end, self.start, self.order, self.id)

    @property
    def bounds(self) -> tuple[int | float, int | float]:
        """(window_start, window_end) in unix seconds: whole seconds as ints."""
        return seconds(self.start), seconds(self.end)


def _ms(t: float) -> float:
    """Unix seconds as milliseconds. A time written with whole milliseconds (``42.337``) is not
    exactly a binary float; within a microsecond of a whole millisecond it is taken as that
    millisecond, so a row written at a window's end is never put in the window before it."""
    t_ms = t * 1000.0
    whole = round(t_ms)
    return whole if -0.001 < t_ms - whole < 0.001 else t_ms


def seconds(ms: int | float) -> int | float:
    whole, rest = divmod(ms, 1000)
    return int(whole) if rest == 0 else ms / 1000


def key_order(key: Key) -> bytes:
    return orjson.dumps(key, default=str) if key else b""


class Windows:
    """The open windows of one query; see the module docstring."""

    def __init__(
        self,
        window: Window,
        *,
        grace: float = 0.0,
        event_time: bool = True,
        max_rows: int = 100_000,
        journal: bool = False,
    ) -> None:
        self.window = window
        self.grace_ms = round(grace * 1000)
        self.event_time = event_time
        self.max_rows = max_rows
        self.watermark: float = -INF  # ms
        self.late = 0
        self.dropped = 0
        self.drop_note: str | None = None
        self.journal: list[tuple] | None = [] if journal else None
        self._panes: dict[tuple[int, Hashable], Pane] = {}  # tumble/hop: (start, key) -> pane
        self._sessions: dict[Hashable, list[Pane]] = {}
        self._heap: list[tuple] = []
        self._closed: list[Pane] = []
        self._changed: dict[int, Pane] = {}
        self._next_id = 1

    # -- feeding ---------------------------------------------------------------------------------

    def add_many(self, times: Sequence[float], keys: Sequence[Key] | None, rows: Sequence[Any]) -> None:
        """Feed rows in order; ``times`` are unix seconds, ``keys`` None for unkeyed windows."""
        if keys is None and self.window.kind == "tumble":
            self._add_tumbling(times, rows)
            return
        add = self.add
        for t, key, row in zip(times, keys or [()] * len(rows), rows):
            add(t, key, row)

    def _add_tumbling(self, times: Sequence[float], rows: Sequence[Any]) -> None:
        """:meth:`add` for unkeyed tumbling windows with the current window at hand: the hot path.

        ``lo``/``hi`` bound the window at hand; the watermark lives in a local and is written
        back before anything reads it (closing, the end)."""
        size, grace, event_time, journal = self.window.size_ms, self.grace_ms, self.event_time, self.journal
        lo, hi, pane, held, append = INF, -INF, None, None, None
        mark = self.watermark
        for t, row in zip(times, rows):
            t_ms = t * 1000.0
            whole = round(t_ms)
            if t_ms != whole and -0.001 < t_ms - whole < 0.001:
                t_ms = whole  # see _ms
            if not lo <= t_ms < hi:
                if pane is not None:
                    pane.count = len(held)
                start = int(t_ms // size) * size
                if start + size <= mark:
                    self.late += 1
                    lo, hi, pane = INF, -INF, None
                    continue
                pane = self._panes.get((start, ()))
                if pane is None:
                    pane = self._panes[(start, ())] = self._open(start, start + size, ())
                lo, hi, held = start, start + size, pane.segments[pane.id]
                append = held.append
                self._changed[pane.id] = pane
            if len(held) >= self.max_rows:
                pane.count = len(held)
                self._put(pane, pane.id, row)  # counts the drop
            else:
                append(row)
                if journal is not None:
                    journal.append(("row", pane.id, pane.id, row))
            if event_time and t_ms - grace > mark:
                mark = t_ms - grace
                if self._heap[0][0] <= mark:
                    pane.count = len(held)
                    self.watermark = mark
                    self._close_due()
                    lo, hi, pane = INF, -INF, None  # the window at hand may have closed
        if pane is not None:
            pane.count = len(held)
        self.watermark = mark

    def add(self, t: float, key: Key, row: Any) -> None:
        t_ms = _ms(t)
        accepted = self._add_session(t_ms, key, row) if self.window.session else self._add_fixed(t_ms, key, row)
        if accepted and self.event_time and t_ms - self.grace_ms > self.watermark:
            self.watermark = t_ms - self.grace_ms
            if self._heap and self._heap[0][0] <= self.watermark:
                self._close_due()

    def advance(self, clock: float) -> None:
        """Arrival time: the watermark is the clock (unix seconds) minus grace."""
        mark = clock * 1000.0 - self.grace_ms
        if mark > self.watermark:
            self.watermark = mark
            self._close_due()

    def _add_fixed(self, t_ms: float, key: Key, row: Any) -> bool:
        size, slide = self.window.size_ms, self.window.slide_ms
        start = int(t_ms // slide) * slide
        if start + size <= self.watermark:
            self.late += 1
            return False
        missed = False
        while start + size > t_ms:
            if start + size <= self.watermark:
                missed = True  # this (earlier) window already closed; the later ones take the row
                break
            pane = self._panes.get((start, key))
            if pane is None:
                pane = self._open(start, start + size, key)
                self._panes[(start, key)] = pane
            self._put(pane, pane.id, row)
            start -= slide
        if missed:
            self.late += 1
        return True

    def _add_session(self, t_ms: float, key: Key, row: Any) -> bool:
        lo, hi = t_ms, t_ms + self.window.size_ms
        sessions = self._sessions.setdefault(key, [])
        hits = [p for p in sessions if p.start < hi and lo < p.end]
        if not hits and hi <= self.watermark:
            self.late += 1
            return False
        if not hits:
            pane = self._open(lo, hi, key)
            sessions.append(pane)
        else:
            pane = min(hits, key=lambda p: p.id)  # the oldest absorbs the rest
            for other in hits:
                if other is not pane:
                    self._merge(pane, other, sessions)
            start, end = min(pane.start, lo), max(pane.end, hi)
            for other in hits:
                start, end = min(start, other.start), max(end, other.end)
            if (start, end) != (pane.start, pane.end):
                pane.start, pane.end = start, end
                heapq.heappush(self._heap, (*pane.sort_key(), pane))
                self._log("bounds", pane)
        self._put(pane, pane.id, row)
        return True

    def _merge(self, into: Pane, other: Pane, sessions: list[Pane]) -> None:
        for seg, rows in other.segments.items():
            into.segments.setdefault(seg, []).extend(rows)
        into.count += other.count
        other.alive = False
        sessions.remove(other)
        self._changed.pop(other.id, None)
        self._log("merge", into.id, other.id)

    def _open(self, start: Any, end: Any, key: Key) -> Pane:
        pane = Pane(self._next_id, start, end, key, key_order(key))
        self._next_id += 1
        heapq.heappush(self._heap, (*pane.sort_key(), pane))
        self._log("open", pane)
        return pane

    def _put(self, pane: Pane, segment: int, row: Any) -> None:
        if pane.count >= self.max_rows:
            self.dropped += 1
            s, e = pane.bounds
            self.drop_note = f"window [{s}, {e}) is over its limit of {self.max_rows} rows; rows dropped"
            return
        pane.segments[segment].append(row)
        pane.count += 1
        self._changed[pane.id] = pane
        if self.journal is not None:
            self.journal.append(("row", pane.id, segment, row))

    def _log(self, *entry: Any) -> None:
        if self.journal is not None:
            self.journal.append(entry)

    # -- closing ---------------------------------------------------------------------------------

    def _close_due(self) -> None:
        heap, mark = self._heap, self.watermark
        while heap and heap[0][0] <= mark:
            end, start, _, _, pane = heapq.heappop(heap)
            if pane.alive and pane.end == end and pane.start == start:
                self._close(pane)

    def _close(self, pane: Pane) -> None:
        pane.alive = False
        if self.window.session:
            sessions = self._sessions[pane.key]
            sessions.remove(pane)
            if not sessions:
                del self._sessions[pane.key]
        else:
            del self._panes[(pane.start, pane.key)]
        self._changed.pop(pane.id, None)
        self._closed.append(pane)
        self._log("close", pane.id)

    def take(self) -> tuple[list[Pane], list[Pane]]:
        """(windows closed since the last call, in closing order; open windows that got rows)."""
        closed, self._closed = self._closed, []
        changed = sorted(self._changed.values(), key=Pane.sort_key)
        self._changed = {}
        return closed, changed

    def flush(self) -> list[Pane]:
        """Close every open window (end of input); return all closed windows not yet taken."""
        for pane in sorted(self.open_panes(), key=Pane.sort_key):
            self._close(pane)
        self._heap = []
        closed, self._closed = self._closed, []
        self._changed = {}
        return closed

    def open_panes(self) -> Iterable[Pane]:
        if self.window.session:
            return [p for sessions in self._sessions.values() for p in sessions]
        return list(self._panes.values())

    def next_close(self) -> float | None:
        """When (unix seconds) the earliest open window ends, for arrival-time timers."""
        heap = self._heap
        while heap and not (heap[0][4].alive and (heap[0][4].end, heap[0][4].start) == heap[0][:2]):
            heapq.heappop(heap)
        return heap[0][0] / 1000 + self.grace_ms / 1000 if heap else None

    # -- restoring (the daemon's state store) ----------------------------------------------------

    def restore(self, pane_id: int, start: Any, end: Any, key: Key, segments: dict[int, list]) -> None:
        """Re-create an open window as it was committed."""
        pane = Pane(pane_id, start, end, key, key_order(key))
        pane.segments = {seg: list(rows) for seg, rows in segments.items()} or {pane_id: []}
        pane.segments.setdefault(pane_id, [])
        pane.count = sum(len(rows) for rows in pane.segments.values())
        if self.window.session:
            self._sessions.setdefault(key, []).append(pane)
        else:
            self._panes[(start, key)] = pane
        heapq.heappush(self._heap, (*pane.sort_key(), pane))
        self._next_id = max(self._next_id, pane_id + 1, *(s + 1 for s in pane.segments))
