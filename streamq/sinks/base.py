"""What every sink shares: its counters and the interface the delivery loop calls."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from ..config.options import SinkOptions, coerce


@dataclass
class SinkStats:
    """Counters in rows, shown by the streamq_sinks table."""

    queued: int = 0  # waiting in the outbox now
    sent: int = 0  # delivered (written, or acknowledged by the broker)
    spooled: int = 0  # rows that had to wait in the outbox because the sink was failing
    failed: int = 0  # delivery attempts that failed (each is retried; a retry is not a drop)
    dropped: int = 0  # rows discarded by the backlog policy
    last_error: str | None = None


class Sink:
    """Subclasses implement :meth:`send`; it returns once the lines are delivered, or raises."""

    type: ClassVar[str] = "sink"
    Options: ClassVar[type[SinkOptions]] = SinkOptions
    # Whether consecutive outbox batches of one query may go out in one send(): it
    # lets a sink batch under load (MQTT); the file sink keeps batches apart so its
    # after-crash check compares exactly one batch.
    coalesce: ClassVar[bool] = False

    def __init__(self, name: str, options: SinkOptions | Mapping[str, Any], *, host: str) -> None:
        self.name = name
        self.options = coerce(self.Options, options)
        self.host = host
        self.stats = SinkStats()

    @classmethod
    def validate(cls, options: SinkOptions) -> None:
        """Checks across options, run by the config loader (so `run --check` sees them);
        raise streamq.config.options.OptionError naming the key."""

    @classmethod
    def preflight(cls, options: SinkOptions) -> list[tuple[str, str]]:
        """What start() would fail on here, found without starting: (option key, problem) pairs.

        Run by `run --check` and at start; unlike validate() it may look at the host."""
        return []

    async def start(self) -> None:
        pass

    async def send(self, query: str, lines: list[bytes]) -> None:
        raise NotImplementedError

    async def flush(self) -> None:
        pass

    async def close(self) -> None:
        pass
