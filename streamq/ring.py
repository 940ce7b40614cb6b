"""EventRing: the bounded, eid-ordered buffer between one source and one event table.

Every appended row gets an ``eid`` (1, 2, 3... never reused) and a ``time``
(unix seconds, never going backwards within a ring). Because eids are
contiguous, the row with eid ``e`` sits in slot ``e % capacity``: reading
"everything after eid X" is a slice, O(new rows), whatever the ring holds.

A full ring overwrites its oldest row and counts it in ``dropped``; rows
older than ``max_age`` are expired on the next append or read and counted in
``expired``. So at every moment ``seen == buffered + dropped + expired``.
Appends never block on readers: a source is never slowed by a query.
"""

from __future__ import annotations

import bisect
import itertools
import threading
import time as _time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

Entry = tuple[int, int, Any]  # (eid, time, row)


class EventRing:
    """Bounded buffer of (eid, time, row) entries; see the module docstring.

    Appends take no lock: ``next()`` on an ``itertools.count`` and a list slot
    store are each atomic under the GIL, which makes append twice as fast as
    with a lock (1.5 M/s against 0.8 M/s here). Readers check every slot's eid,
    so a row whose eid is claimed but not yet stored is read on the next pass.
    """

    def __init__(self, capacity: int = 100_000, max_age: float | None = None, *, name: str = "") -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.name = name
        self.capacity = capacity
        self.max_age = max_age
        self._slots: list[Entry | None] = [None] * capacity
        self._counter = itertools.count(1)
        self._next = 1  # one past the newest stored eid
        self._expired_below = 1  # eids below this left by max_age
        self._last_time = 0.0
        self._read_lock = threading.Lock()
        self.expired = 0
        self.resized_away = 0
        self._listeners: list[Callable[[], None]] = []
        # The identity of this ring's eid sequence: a reader's saved eid means something only
        # for the same origin. A source that can replay (a jsonl file with a checkpoint) keeps
        # its origin and eids across restarts (resume), so readers skip what they already had.
        self.origin = uuid.uuid4().hex
        self._base = 0  # eids up to this came before a resume: not seen by this process
        self._holds: dict[str, int] = {}

    # -- writing ----------------------------------------------------------------------------

    def append(self, row: Any, when: float | None = None) -> int:
        """Store ``row``; return its eid. O(1), never blocks, never waits for readers."""
        now = _time.time() if when is None else when
        if now < self._last_time:
            now = self._last_time  # time never goes backwards in a ring: time >= T stays a bisect
        self._last_time = now
        eid = next(self._counter)
        self._slots[eid % self.capacity] = (eid, now, row)
        if eid >= self._next:
            self._next = eid + 1
        if self._listeners:
            for notify in self._listeners:
                notify()
        return eid

    def resume(self, origin: str, last_eid: int) -> None:
        """Continue the eid sequence ``origin`` after ``last_eid`` (an empty ring only)."""
        if self._next != 1:
            raise RuntimeError(f"ring {self.name}: resume() after rows were appended")
        self.origin = origin
        self._counter = itertools.count(last_eid + 1)
        self._next = self._expired_below = last_eid + 1
        self._base = last_eid

    def hold(self, reader: str, eid: int) -> None:
        """``reader`` has durably consumed eids up to ``eid``; it needs the ones after (see :meth:`held`)."""
        self._holds[reader] = eid

    def release(self, reader: str) -> None:
        self._holds.pop(reader, None)

    def held(self) -> int | None:
        """The eid every holding reader has durably consumed (None: no reader holds): a source that
        can replay keeps its checkpoint at or before it, so a restart loses nothing they need."""
        holds = list(self._holds.values())  # one C call: readers update holds from another thread
        return min(holds) if holds else None

    def subscribe(self, notify: Callable[[], None]) -> Callable[[], None]:
        """Call ``notify()`` (in the appending thread) after each append; returns an unsubscribe."""
        self._listeners.append(notify)

        def unsubscribe() -> None:
            if notify in self._listeners:
                self._listeners.remove(notify)

        return unsubscribe

    def resize(self, capacity: int) -> int:
        """Change capacity keeping the newest rows (the daemon's memory budget); return rows lost."""
        with self._read_lock:
            entries = self._entries(self.first_eid, self._next)
            keep = entries[-capacity:] if capacity < len(entries) else entries
            lost = len(entries) - len(keep)
            slots: list[Entry | None] = [None] * capacity
            for entry in keep:
                slots[entry[0] % capacity] = entry
            self._slots, self.capacity = slots, capacity
            self._expired_below = keep[0][0] if keep else self._next
            self.resized_away += lost
            return lost

    # -- reading ----------------------------------------------------------------------------

    @property
    def first_eid(self) -> int:
        """Eid of the oldest row still held."""
        return max(self._expired_below, self._next - self.capacity, 1)

    @property
    def last_eid(self) -> int:
        """Eid of the newest row (0 before the first append)."""
        return self._next - 1

    @property
    def seen(self) -> int:
        return self._next - 1 - self._base

    @property
    def buffered(self) -> int:
        return self._next - self.first_eid

    @property
    def dropped(self) -> int:
        """Rows pushed out because the ring was full (or shrunk), before anyone could expire them."""
        return self.seen - self.buffered - self.expired

    @property
    def last_time(self) -> float | None:
        return self._last_time or None

    def _entries(self, start: int, stop: int) -> list[Entry]:
        cap, slots, out = self.capacity, self._slots, []
        for e in range(start, stop):
            entry = slots[e % cap]
            if entry is None or entry[0] < e:
                break  # claimed by a writer but not stored yet: next read gets it
            if entry[0] == e:
                out.append(entry)
        return out

    def _expire(self) -> None:
        horizon = _time.time() - self.max_age
        cap, slots = self.capacity, self._slots
        e = self.first_eid
        while e < self._next:
            entry = slots[e % cap]
            if entry is None or entry[0] != e or entry[1] >= horizon:
                break
            e += 1
        if e > self.first_eid:
            self.expired += e - self.first_eid
            self._expired_below = e

    def expire(self) -> None:
        """Drop rows older than ``max_age`` now (reads do it too), so the counts are current."""
        if self.max_age is not None:
            with self._read_lock:
                self._expire()

    def since(self, after_eid: int = 0, *, min_time: float | None = None, limit: int | None = None) -> list[Entry]:
        """Rows with eid > ``after_eid`` (and time >= ``min_time``), oldest first."""
        with self._read_lock:
            if self.max_age is not None:
                self._expire()
            start = max(after_eid + 1, self.first_eid)
            stop = self._next
            if min_time is not None and start < stop:
                start += bisect.bisect_left(_EidTimes(self._slots, self.capacity, start, stop), min_time)
            if limit is not None:
                stop = min(stop, start + limit)
            return self._entries(start, stop)

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.since(0))

    def __len__(self) -> int:
        return self.buffered

    def stats(self) -> dict[str, int]:
        return {"seen": self.seen, "buffered": self.buffered, "dropped": self.dropped, "expired": self.expired}


class _EidTimes(Sequence):
    """The times of eids lo..hi as a sequence, for bisect without copying."""

    def __init__(self, slots: list, cap: int, lo: int, hi: int) -> None:
        self.slots, self.cap, self.lo, self.hi = slots, cap, lo, hi

    def __len__(self) -> int:
        return self.hi - self.lo

    def __getitem__(self, i):  # type: ignore[override]
        entry = self.slots[(self.lo + i) % self.cap]
        return entry[1] if entry is not None else float("inf")


@dataclass
class ReadResult:
    rows: list[Entry]
    missed: int  # rows that were dropped or expired before this reader got to them


class RingCursor:
    """A reader's position in a ring: each row is returned by :meth:`read` once.

    ``position`` is the last eid handed out; save it and pass it back to resume.
    ``missed`` counts rows that left the ring before this reader saw them.
    """

    def __init__(self, ring: EventRing, position: int | None = None) -> None:
        self.ring = ring
        self.position = ring.last_eid if position is None else position
        self.missed = 0

    def read(self, limit: int | None = None) -> ReadResult:
        rows = self.ring.since(self.position, limit=limit)
        lost = 0
        if rows:
            # Every eid up to the last row read was either returned or lost, including rows a
            # writer overwrote while this read walked the ring (gaps inside ``rows``).
            lost = max(0, rows[-1][0] - self.position - len(rows))
            self.position = rows[-1][0]
        elif self.ring.first_eid > self.position + 1:
            lost = self.ring.first_eid - self.position - 1
            self.position = self.ring.first_eid - 1
        self.missed += lost
        return ReadResult(rows, lost)

    def pending(self) -> int:
        return max(0, self.ring.last_eid - self.position)


@dataclass
class SourceStatus:
    """What a source reports about itself, shown by the streamq_events table."""

    source: str  # the source's config key, e.g. "process"
    kind: str  # how it learns of events: netlink, inotify, poll, stream, mqtt
    active: bool = False
    mode: str = ""  # e.g. "netlink" or "polling /proc (no CAP_NET_ADMIN)"
    overflows: int = 0  # kernel or library queues that overflowed (events lost before us)
    errors: int = 0
    skipped: int = 0  # input rejected on purpose: malformed lines, oversize lines
    late: int = 0  # rows that came after their window was emitted (counted by windowed readers)
    last_error: str | None = None

    def error(self, message: str) -> None:
        self.errors += 1
        self.last_error = message


class Rings(dict):
    """Event table name -> EventRing, plus the status of the source filling each."""

    def __init__(self, capacity: int = 100_000, max_age: float | None = 3600.0) -> None:
        super().__init__()
        self.capacity = capacity
        self.max_age = max_age
        self.status: dict[str, SourceStatus] = {}

    def ring(self, table: str) -> EventRing:
        """The ring for ``table``, created on first use with the set's defaults."""
        found = self.get(table)
        if found is None:
            found = self[table] = EventRing(self.capacity, self.max_age, name=table)
        return found


class RingWaker:
    """Wakes an asyncio task when any of ``rings`` gets a row: once per burst, not per row.

    Appends may come from a source's own thread, so the event is set through
    ``call_soon_threadsafe``; a flag keeps that to one call until the reader
    :meth:`clear`\\ s it. Create it inside the event loop; :meth:`close` unsubscribes.
    """

    def __init__(self, rings: Iterable[EventRing]) -> None:
        import asyncio  # here, not at module top: `streamq query` never needs asyncio

        self._loop = asyncio.get_running_loop()
        self.event = asyncio.Event()
        self._pending = False
        self._unsubscribe = [ring.subscribe(self._notify) for ring in rings]

    def _notify(self) -> None:
        if not self._pending:
            self._pending = True
            self._loop.call_soon_threadsafe(self.event.set)

    async def wait(self) -> None:
        await self.event.wait()

    def clear(self) -> None:
        self.event.clear()
        self._pending = False

    def close(self) -> None:
        for undo in self._unsubscribe:
            undo()
        self._unsubscribe = []
