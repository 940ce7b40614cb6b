"""What every sink shares: its counters, the interface the delivery loop calls, and a line's id."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import orjson

from ..config.options import OptionError, SinkOptions, coerce


@dataclass
class SinkStats:
    """Counters in rows, shown by the streamq_sinks table."""

    queued: int = 0  # waiting in the outbox now
    sent: int = 0  # delivered (written, or acknowledged by the broker)
    spooled: int = 0  # rows that had to wait in the outbox because the sink was failing
    failed: int = 0  # delivery attempts that failed (each is retried; a retry is not a drop)
    dropped: int = 0  # rows discarded by the backlog policy
    rejected: int = 0  # rows the receiver refused for good (an HTTP 4xx): counted, logged, not retried
    oldest_created: float | None = None  # unix time the oldest undelivered row was queued; None: none waits
    last_error: str | None = None


class Rejected(Exception):
    """Raised by send() when the receiver refused ``rows`` of the lines for good (not worth a retry).

    The other lines were delivered; Delivery counts both and moves on to the next batch.
    """

    def __init__(self, rows: int, message: str) -> None:
        super().__init__(message)
        self.rows = rows


def reopen_all(sinks: Iterable[Sink]) -> None:
    """SIGUSR1: every sink reopens its files; one that cannot says so and keeps going."""
    for sink in sinks:
        try:
            sink.reopen()
        except OSError as err:
            logging.getLogger("streamq.sinks").error("sink %s: reopen failed: %s", sink.name, err)
    logging.getLogger("streamq.sinks").info("sinks reopened their files")


def line_id(line: bytes) -> str:
    """The stable id the daemon wrote into a result line (``host:query:epoch:counter:row index``,
    daemon/results.py): the same when the line is sent again, so receivers can drop resends."""
    found = orjson.loads(line).get("id")
    if found is None:
        raise ValueError('a result line without its "id" (not written by the daemon)')
    return str(found)


def require_module(module: str, package: str, sink: str) -> None:
    """Fail validation with the install command when a sink's client library is missing."""
    try:
        importlib.import_module(module)
    except ImportError:
        raise OptionError("type", f"the {sink} sink needs {package}: pip install 'streamq[{sink}]'") from None


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

    def reopen(self) -> None:
        """Reopen what an outside tool may have moved away (logrotate, on SIGUSR1)."""

    async def close(self) -> None:
        pass
