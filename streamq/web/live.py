"""Live queries: a ``--follow`` query per browser tab, its new rows sent as Server-Sent Events.

A live query is `query --follow` with its options (window, window key, emit, grace,
dedup, limit): each row comes with its kind (``row``; a window's ``update`` or ``final``
result), and the page's Stop ends the input as Ctrl-C does, open windows emitted, final.

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
from collections.abc import Mapping
from typing import Any

from ..errors import StreamqError
from ..stream.spec import StreamSpec
from .backend import Backend, Batch, LiveFeed

log = logging.getLogger("streamq.web")
MAX_PENDING = 50_000  # rows held for one browser
BATCH_DELAY = 0.05  # seconds a wake-up waits for the rest of its burst
IDLE_WAKE = 1.0  # seconds between checks when no event comes
CONNECT_WITHIN = 15.0  # seconds a new stream waits for its browser
KEEPALIVE = 1.0  # seconds between SSE comments: a write to a gone browser fails and frees the stream


class LiveStream:
    def __init__(self, hub: LiveHub, sid: str, sql: str, feed: LiveFeed, spec: StreamSpec) -> None:
        self.hub = hub
        self.id = secrets.token_urlsafe(12)
        self.session_id = sid
        self.sql = sql
        self.feed = feed
        self.spec = spec
        self.columns = feed.columns
        self.tables = feed.tables
        self.created = time.monotonic()
        self.rows_read = 0
        self.dropped = 0  # rows its browser did not read in time (MAX_PENDING)
        self.engine = {"late": 0, "window_dropped": 0, "truncated_runs": 0}  # the streaming engine's counts
        self.connected = False
        self.end_message: str | None = None
        self._pending: deque[Batch] = deque()
        self._pending_rows = 0
        self._ready = asyncio.Event()
        self._ending = asyncio.Event()  # the page asked to end the input (Stop)
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._read(), name=f"web-live:{self.id}")

    async def _read(self) -> None:
        waiter = self.feed.waiter()
        try:
            while self.end_message is None:
                await self._pause(waiter)
                if self._ending.is_set():
                    self._push(await self.feed.finish())
                    self.close("ended: open windows were emitted, final" if self.spec.window else "stopped")
                    return
                if not self.connected and time.monotonic() - self.created > CONNECT_WITHIN:
                    self.close("no browser read this stream")
                    return
                await asyncio.sleep(BATCH_DELAY)
                self._push(await self.feed.step())
        except asyncio.CancelledError:
            raise
        except StreamqError as err:
            self.close(f"error: {err}")
        except Exception as err:  # a bug must end this stream, not the console
            log.exception("web: live stream failed")
            self.close(f"error: {type(err).__name__}: {err}")
        finally:
            waiter.close()

    async def _pause(self, waiter: Any) -> None:
        """Until new events (or IDLE_WAKE, for the clock's windows) or the page's Stop."""
        if self._ending.is_set():
            return
        waiting = {asyncio.ensure_future(waiter.wait(IDLE_WAKE)), asyncio.ensure_future(self._ending.wait())}
        try:
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in waiting:
                task.cancel()

    def end_input(self) -> None:
        """Stop as `query --follow` stops on Ctrl-C: open windows come out, final, then the end."""
        self._ending.set()

    def _push(self, batch: Batch) -> None:
        self.engine = {
            "late": batch.get("late", 0),
            "window_dropped": batch.get("dropped", 0),
            "truncated_runs": batch.get("truncated_runs", 0),
        }
        rows = batch["rows"]
        room = max(MAX_PENDING - self._pending_rows, 0)
        if room < len(rows):
            self.dropped += len(rows) - room
            batch = {**batch, "rows": rows[:room], "kinds": batch["kinds"][:room]}
            if "keys" in batch:
                batch["keys"] = batch["keys"][:room]
        if batch["rows"] or batch.get("suppressed"):
            self._pending.append(batch)
            self._pending_rows += len(batch["rows"])
            self.rows_read += len(batch["rows"])
        self._ready.set()

    async def next_batch(self, timeout: float) -> Batch | None:
        """Every row waiting now, with its kind (None after ``timeout`` with none, or once the stream ended)."""
        if not self._pending and self.end_message is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ready.wait(), timeout)
        self._ready.clear()
        if not self._pending:
            return None
        batches = list(self._pending)
        self._pending.clear()
        self._pending_rows = 0
        merged: Batch = {
            "rows": [row for b in batches for row in b["rows"]],
            "kinds": [kind for b in batches for kind in b["kinds"]],
            "suppressed": [s for b in batches for s in b.get("suppressed", ())],
            "steps": [len(b["rows"]) for b in batches],  # a window's result is whole within its step
        }
        if "keys" in batches[0]:
            merged["keys"] = [key for b in batches for key in b["keys"]]
        return merged

    def close(self, message: str) -> None:
        if self.end_message is None:
            self.end_message = message
            # Here, not in the reader's finally: a reader cancelled before it ran has none.
            self._closing = asyncio.ensure_future(self.feed.close())
        self._ready.set()
        if self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()
        self.hub.forget(self)

    def status(self) -> dict[str, Any]:
        return {"read": self.rows_read, "dropped": self.dropped, **self.engine}


class LiveHub:
    """Every live stream of the console, oldest first."""

    def __init__(self, backend: Backend, max_streams: int) -> None:
        self.backend = backend
        self.max_streams = max_streams
        self.streams: OrderedDict[str, LiveStream] = OrderedDict()

    async def open(self, sid: str, sql: str, spec: StreamSpec, options: Mapping[str, Any]) -> LiveStream:
        """Check ``sql`` and its streaming options as `query --follow` does and start reading from now on."""
        feed = await self.backend.open_live(sql, spec, options)
        stream = LiveStream(self, sid, sql, feed, spec)
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
