"""Live queries: a ``--follow`` query per browser tab, its new rows sent as Server-Sent Events.

Memory stays bounded whatever the browsers do:

- at most ``max_streams`` live at once; a new one past that closes the oldest, which
  is told so in its last event;
- each stream keeps at most ``MAX_PENDING`` rows that its browser has not read yet;
  past that new rows are dropped and counted (the page shows the count);
- a stream whose browser never connects, or disconnects, is closed within seconds.

Rows are read in bursts: after a wake-up the reader waits ``BATCH_DELAY`` so a burst
of events becomes one SQL run and one event, which is how the page keeps up with
thousands of events a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections import OrderedDict, deque
from typing import Any

from ..errors import StreamqError
from .backend import Backend, Floors

log = logging.getLogger("streamq.web")
MAX_PENDING = 50_000  # rows held for one browser
BATCH_DELAY = 0.05  # seconds a wake-up waits for the rest of its burst
IDLE_WAKE = 1.0  # seconds between checks when no event comes
CONNECT_WITHIN = 15.0  # seconds a new stream waits for its browser
KEEPALIVE = 1.0  # seconds between SSE comments: a write to a gone browser fails and frees the stream


class LiveStream:
    def __init__(self, hub: LiveHub, sid: str, sql: str, columns: list[str], floors: Floors) -> None:
        self.hub = hub
        self.id = secrets.token_urlsafe(12)
        self.session_id = sid
        self.sql = sql
        self.columns = columns
        self.tables = sorted(floors)
        self.floors = floors
        self.created = time.monotonic()
        self.rows_read = 0
        self.dropped = 0
        self.truncated_steps = 0
        self.connected = False
        self.end_message: str | None = None
        self._pending: deque[list] = deque()
        self._pending_rows = 0
        self._ready = asyncio.Event()
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._read(), name=f"web-live:{self.id}")

    async def _read(self) -> None:
        waiter = self.hub.backend.waiter(self.tables)
        try:
            while self.end_message is None:
                await waiter.wait(IDLE_WAKE)
                if not self.connected and time.monotonic() - self.created > CONNECT_WITHIN:
                    self.close("no browser read this stream")
                    return
                await asyncio.sleep(BATCH_DELAY)
                result, self.floors = await self.hub.backend.follow(self.sql, self.floors)
                if result.truncated:
                    self.truncated_steps += 1
                if result.rows:
                    self._push(result.rows)
        except asyncio.CancelledError:
            raise
        except StreamqError as err:
            self.close(f"error: {err}")
        except Exception as err:  # a bug must end this stream, not the console
            log.exception("web: live stream failed")
            self.close(f"error: {type(err).__name__}: {err}")
        finally:
            waiter.close()

    def _push(self, rows: list) -> None:
        room = MAX_PENDING - self._pending_rows
        if room < len(rows):
            self.dropped += len(rows) - max(room, 0)
            rows = rows[: max(room, 0)]
        if rows:
            self._pending.append(rows)
            self._pending_rows += len(rows)
            self.rows_read += len(rows)
        self._ready.set()

    async def next_batch(self, timeout: float) -> list[list] | None:
        """Every row waiting now (None after ``timeout`` with none, or once the stream ended)."""
        if not self._pending and self.end_message is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ready.wait(), timeout)
        self._ready.clear()
        if not self._pending:
            return None
        rows = [row for batch in self._pending for row in batch]
        self._pending.clear()
        self._pending_rows = 0
        return rows

    def close(self, message: str) -> None:
        if self.end_message is None:
            self.end_message = message
        self._ready.set()
        if self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()
        self.hub.forget(self)

    def status(self) -> dict[str, Any]:
        return {"read": self.rows_read, "dropped": self.dropped, "truncated_steps": self.truncated_steps}


class LiveHub:
    """Every live stream of the console, oldest first."""

    def __init__(self, backend: Backend, max_streams: int) -> None:
        self.backend = backend
        self.max_streams = max_streams
        self.streams: OrderedDict[str, LiveStream] = OrderedDict()

    async def open(self, sid: str, sql: str) -> LiveStream:
        """Check ``sql`` (it must read an event table) and start reading from now on."""
        first, floors = await self.backend.follow(sql, None)
        stream = LiveStream(self, sid, sql, first.columns, floors)
        self.streams[stream.id] = stream
        while len(self.streams) > self.max_streams:
            oldest = next(iter(self.streams.values()))
            oldest.close(f"closed: {self.max_streams} live streams at most, and this was the oldest")
        stream.start()
        return stream

    def get(self, stream_id: str, sid: str) -> LiveStream | None:
        stream = self.streams.get(stream_id)
        return stream if stream is not None and stream.session_id == sid else None

    def forget(self, stream: LiveStream) -> None:
        self.streams.pop(stream.id, None)

    def close_all(self) -> None:
        for stream in list(self.streams.values()):
            stream.close("the console is stopping")
