"""What every sink shares: its counters, the interface the delivery loop calls, and result ids."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

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


def result_id(item: Mapping[str, Any], index: int) -> str:
    """The stable id of one result line (streams.md): ``host:query:epoch:counter:row index``.

    A line that carries its own ``"id"`` field is taken at its word. Until the scheduler
    writes that field on every line, the same value is built here from the line's own
    fields and its index within its run; then the fallback below is the one line to drop.
    """
    found = item.get("id")
    if found is not None:
        return str(found)
    return f"{item.get('hostIdentifier')}:{item.get('name')}:{item.get('epoch')}:{item.get('counter')}:{index}"


def result_ids(items: Iterable[Mapping[str, Any]]) -> list[str]:
    """The ids of one send()'s parsed lines: a line's index counts within its run (same host,
    query, epoch and counter); a run's lines are contiguous in the outbox and never split.
    (result_id() for a whole batch, with one string prefix per run: this runs for every row.)"""
    ids: list[str] = []
    run: tuple | None = None
    index, prefix = 0, ""
    for item in items:
        found = item.get("id")
        if found is not None:
            ids.append(str(found))
            continue
        key = (item.get("hostIdentifier"), item.get("name"), item.get("epoch"), item.get("counter"))
        if key == run:
            index += 1
        else:
            run, index, prefix = key, 0, "{}:{}:{}:{}:".format(*key)
        ids.append(prefix + str(index))
    return ids


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
