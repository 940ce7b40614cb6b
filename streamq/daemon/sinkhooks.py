"""What a query's runs tell the sinks they write to, through the daemon's current sinks.

New lines wake a sink's delivery; a commit the state store refused shows in the sink's
``last_error`` (streamq_sinks); a query catching up on a backlog waits, between pieces,
until its sinks have taken the last one. The daemon's sinks are looked up at each call:
a reload replaces them.
"""

from __future__ import annotations

import time

from .handle import DaemonServices


class SinkHooks:
    def __init__(self, daemon: DaemonServices) -> None:
        self.daemon = daemon  # its .sinks and .deliveries, looked up at each call

    def wake(self, names: tuple[str, ...]) -> None:
        for delivery in filter(None, map(self.daemon.deliveries.get, names)):
            delivery.wake.set()

    def store_error(self, names: tuple[str, ...], error: str | None) -> None:
        """The outbox cannot be written (a full disk): the query's sinks show it in streamq_sinks."""
        for sink in filter(None, map(self.daemon.sinks.get, names if error is not None else ())):
            sink.stats.last_error = f"outbox: {error}"

    async def room(self, names: tuple[str, ...], rows: int, patience: float = 2.0) -> None:
        """Wait (up to ``patience`` s) until working sinks hold at most ``rows`` rows in the outbox."""
        deadline = time.monotonic() + patience
        for delivery in filter(None, map(self.daemon.deliveries.get, names)):
            await delivery.room(rows, deadline)
