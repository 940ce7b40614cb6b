"""Delivery: moves each sink's outbox rows to the sink, in order, retrying while it fails."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from .base import Rejected, Sink

log = logging.getLogger("streamq.sinks")


@dataclass
class Batch:
    id: int
    sink: str
    query: str
    rows: int
    lines: list[bytes]
    ids: list[int] = field(default_factory=list)  # outbox ids this batch stands for (several when coalesced)
    created: float = 0.0  # unix time the (oldest) run was queued

    def __post_init__(self) -> None:
        if not self.ids:
            self.ids = [self.id]


Call = Callable[..., Awaitable[Any]]
_MAX_GROUP_LINES = 10_000


class Delivery:
    """Moves one sink's outbox to the sink, oldest first, retrying with jittered backoff.

    ``sql`` runs a function on the daemon's SQL thread (which owns the state store).
    The outbox is bounded by ``max_backlog_rows``; past it the oldest rows are
    dropped and counted, so a long outage costs old results, never memory.
    """

    def __init__(self, sink: Sink, store: Any, sql: Call, *, max_backlog_rows: int = 1_000_000) -> None:
        self.sink = sink
        self.store = store
        self.sql = sql
        self.max_backlog_rows = max_backlog_rows
        self.wake = asyncio.Event()
        self.idle = asyncio.Event()
        self._failing = False
        # Outbox ids sent but not yet deleted (the delete failed: a full disk): never sent twice.
        self._sent: set[int] = set()

    async def refresh_backlog(self) -> None:
        dropped = await self.sql(self.store.drop_oldest, self.sink.name, self.max_backlog_rows)
        if dropped:
            self.sink.stats.dropped += dropped
            log.warning(
                "sink %s: backlog over %d rows, dropped the oldest %d", self.sink.name, self.max_backlog_rows, dropped
            )
        _, rows = await self.sql(self.store.backlog, self.sink.name)
        self.sink.stats.queued = rows

    async def run(self) -> None:
        delay = 0.2
        stats = self.sink.stats
        while True:
            await self._forget_sent()
            batches = await self.sql(self.store.pending, self.sink.name, 200)
            batches = [b for b in batches if b.id not in self._sent]
            if not batches:
                stats.queued = 0
                stats.oldest_created = None
                self.idle.set()
                await self.wake.wait()
                self.wake.clear()
                self.idle.clear()
                await self.refresh_backlog()
                continue
            for batch in self._groups(batches):
                stats.oldest_created = batch.created or None
                try:
                    await self.sink.send(batch.query, batch.lines)
                except asyncio.CancelledError:
                    raise
                except Rejected as err:  # refused for good: counted and logged, never retried
                    stats.rejected += err.rows
                    stats.last_error = str(err)
                    log.warning("sink %s: %d rows refused, not retried: %s", self.sink.name, err.rows, err)
                    self._delivered(batch, batch.rows - err.rows)
                    self._sent.update(batch.ids)
                    await self._forget_sent()
                except Exception as err:
                    stats.failed += 1
                    stats.last_error = f"{type(err).__name__}: {err}"
                    if not self._failing:
                        log.warning("sink %s: %s; results wait in the outbox", self.sink.name, stats.last_error)
                    self._failing = True
                    await self.refresh_backlog()
                    stats.spooled = max(stats.spooled, stats.queued)
                    await asyncio.sleep(delay * random.uniform(0.8, 1.2))
                    delay = min(delay * 2, 30.0)
                    break
                else:
                    delay = 0.2
                    self._delivered(batch, batch.rows)
                    self._sent.update(batch.ids)
                    await self._forget_sent()

    async def room(self, rows: int, deadline: float) -> None:
        """Wait until at most ``rows`` rows wait in the outbox (or the sink fails, or ``deadline``,
        time.monotonic()): a query catching up writes its next piece when this one is taken."""
        self.wake.set()
        while not self._failing and time.monotonic() < deadline:
            _, queued = await self.sql(self.store.backlog, self.sink.name)
            if queued <= rows:
                return
            await asyncio.sleep(0.02)

    async def _forget_sent(self) -> None:
        """Delete what was sent from the outbox; if the disk refuses, keep the ids and try again later."""
        if not self._sent:
            return
        ids = sorted(self._sent)
        try:
            await self.sql(self.store.delivered, ids)
        except Exception as err:  # the outbox keeps them; we remember they went out
            self.sink.stats.last_error = f"outbox: cannot delete delivered rows ({err})"
            if self.idle.is_set() or not self._failing:
                await asyncio.sleep(0.5)
            return
        self._sent.difference_update(ids)

    def _delivered(self, batch: Batch, sent: int) -> None:
        stats = self.sink.stats
        if self._failing:
            log.warning("sink %s: delivering again", self.sink.name)
        self._failing = False
        stats.sent += sent
        stats.queued = max(0, stats.queued - batch.rows)

    def _groups(self, batches: list[Batch]) -> list[Batch]:
        """Consecutive batches of one query joined (for a coalescing sink), in order."""
        groups: list[Batch] = []
        for batch in batches:
            last = groups[-1] if groups else None
            if (
                self.sink.coalesce
                and last is not None
                and last.query == batch.query
                and len(last.lines) + len(batch.lines) <= _MAX_GROUP_LINES
            ):
                last.lines = last.lines + batch.lines
                last.rows += batch.rows
                last.ids.append(batch.id)
            else:
                groups.append(
                    Batch(batch.id, batch.sink, batch.query, batch.rows, batch.lines, [batch.id], batch.created)
                )
        return groups

    async def drain(self, timeout: float) -> bool:
        """Wait until the outbox is empty (True) or ``timeout`` passes (False)."""
        self.idle.clear()
        self.wake.set()
        try:
            await asyncio.wait_for(self.idle.wait(), timeout)
        except TimeoutError:
            return False
        return True
