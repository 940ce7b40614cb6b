"""`streamq tail SOURCE`: JSON records from a file, stdin or an MQTT topic, optionally through SQL.

Records are rows of the table ``stream``: the keys of the first record plus every
column the SQL names (found by preparing the SQL and adding each column SQLite
reports missing), untyped as JSON gave them, plus ``raw``, the record itself.
Lines are parsed by SQLite's JSON code a batch at a time (streamq.stream.jsonlines).

The SQL runs through the same streaming stages as the daemon's queries
(streamq.stream.pipeline): with ``--window`` exactly once per window, over the rows
whose time lies in it; without one, once per batch, which is only allowed for SQL
whose result does not depend on the batches (filters and projections). The same
input therefore prints the same bytes whatever the chunking or speed.

This is a dedicated loop rather than :class:`streamq.cli.follow.Follower`: ``stream``
learns its columns from the data, the rows never enter a ring (they never become
Python objects at all, which is where tail's speed comes from), and a tail of stdin
ends when stdin does. The source hands batches of lines through a small bounded
queue, so a large file is never read faster than the SQL keeps up.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from ..errors import StreamqError
from ..stream.pipeline import FINAL, ROW, SUPPRESSED, UPDATE, Out
from ..stream.spec import StreamSpec
from .streaming import CountedOut, stop_on_signals, until
from .tail_query import TailQuery
from .tail_sources import END, open_source

_QUEUE_BATCHES = 4


@dataclass
class TailResult:
    emitted: int
    skipped: int
    last_skip: str | None
    late: int = 0
    no_time: int = 0  # records whose time field was missing or unparsable
    dropped: int = 0  # rows over a window's capacity
    drop_note: str | None = None

    def notes(self, time_field: str | None = None) -> list[str]:
        """What stderr says at the end: nothing is dropped or skipped silently."""
        out = []
        if self.skipped:
            out.append(f"skipped {self.skipped} record(s); last: {self.last_skip}")
        if self.no_time:
            out.append(f"skipped {self.no_time} record(s) without a usable time field {time_field!r}")
        if self.late:
            out.append(f"{self.late} late record(s): their windows were already emitted")
        if self.dropped:
            out.append(f"dropped {self.dropped} record(s): {self.drop_note}")
        return out


class _Emitter(CountedOut):
    """Out rows as JSON lines, up to ``count``; one ``emit`` call (a write and a flush) per batch."""

    def __init__(self, emit: Callable[[list[bytes]], Any], count: int | None, *, changes: bool) -> None:
        super().__init__(count, changes=changes)
        self.emit = emit

    def __call__(self, outs: list[Out]) -> None:
        outs = self.take(outs)
        if outs:
            self.emit([self._line(out) for out in outs])

    def _line(self, out: Out) -> bytes:
        if out.kind == ROW and out.names == ["raw"]:
            return out.row[0]
        fields = dict(zip(out.names, out.row))
        if self.changes and out.kind in (FINAL, UPDATE):
            fields["final"] = out.kind == FINAL
        if out.kind == SUPPRESSED:
            fields = {"action": "suppressed", **fields}
        return orjson.dumps(fields, default=_hex, option=orjson.OPT_NON_STR_KEYS)


def _hex(value: Any) -> str:
    if isinstance(value, bytes):
        return value.hex()
    raise TypeError


async def tail(
    spec: str,
    emit: Callable[[list[bytes]], Any],
    *,
    sql: str | None = None,
    count: int | None = None,
    timeout: float | None = None,
    from_start: bool = True,
    time_field: str | None = None,
    options: StreamSpec | None = None,
) -> TailResult:
    """Call ``emit(json_lines)`` per batch of records (or of SQL result rows) until the input ends,
    ``count`` lines were emitted or ``timeout`` seconds passed; then open windows are flushed."""
    options = options or StreamSpec()
    _reuse_big_buffers()
    queue: asyncio.Queue = asyncio.Queue(_QUEUE_BATCHES)
    source = open_source(spec, queue, from_start=from_start)
    # Bad SQL or options fail before anything is read.
    query = TailQuery(sql, options, time_field=time_field, extras=source.extras)
    out = _Emitter(emit, count, changes=options.emit == "changes")
    pump = asyncio.create_task(_pump(source, queue), name=f"tail:{spec}")
    stop = asyncio.Event()
    deadline = None if timeout is None else time.monotonic() + timeout
    with stop_on_signals(stop):
        try:
            await _loop(query, queue, out, stop, deadline)
            out(query.finish())
        finally:
            pump.cancel()
            await asyncio.gather(pump, return_exceptions=True)
            query.close()
    status = source.status
    return TailResult(
        out.emitted,
        status.skipped + query.skipped,
        query.last_skip or status.last_error,
        late=query.pipeline.late,
        no_time=query.no_time,
        dropped=query.pipeline.dropped,
        drop_note=query.pipeline.windows.drop_note if query.pipeline.windows else None,
    )


async def _loop(query: TailQuery, queue: asyncio.Queue, out: _Emitter, stop: asyncio.Event, deadline) -> None:
    stopped = asyncio.ensure_future(stop.wait())
    try:
        while not out.full:
            if deadline is not None and time.monotonic() >= deadline:
                break
            wait = until(deadline, query.pipeline.next_wakeup())
            getter = asyncio.ensure_future(queue.get())
            done, _ = await asyncio.wait({getter, stopped}, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
            if getter not in done:
                getter.cancel()
                if stopped in done or (deadline is not None and time.monotonic() >= deadline):
                    break
                out(query.tick())  # an arrival-time window or a limit period ended
                continue
            batch = getter.result()
            if batch is END:
                break
            if isinstance(batch, BaseException):
                if isinstance(batch, StreamqError):
                    raise batch
                raise StreamqError(str(batch)) from batch
            out(query.process(*batch))
    finally:
        stopped.cancel()


async def _pump(source: Any, queue: asyncio.Queue) -> None:
    try:
        await source.run()
    except asyncio.CancelledError:
        raise
    except Exception as err:  # handed to the loop, which reports it
        await queue.put(err)
        return
    await queue.put(END)


def _reuse_big_buffers() -> None:
    """Keep malloc's large blocks (a window's joined lines, its JSONB) in the heap for reuse.

    glibc maps each block over its (adaptive) threshold fresh and unmaps it on free; a
    windowed tail of 500,000 lines then spent a quarter of its time in page faults
    (131,000 of them; 18,000 with this). Not glibc: nothing to do.
    """
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        libc.mallopt(-3, 64 << 20)  # M_MMAP_THRESHOLD
        libc.mallopt(-1, 128 << 20)  # M_TRIM_THRESHOLD
    except (OSError, AttributeError):
        pass
