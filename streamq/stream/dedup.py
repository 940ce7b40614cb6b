"""First seen and rate limits: which result rows go out, and one line for what did not.

* :class:`Dedup`: a row whose key columns were already emitted within ``dedup_for``
  seconds (forever when None) is held back. A held-back duplicate does not renew the
  key: a thing that stays reported reminds once per ``dedup_for``.
* :class:`RateLimit`: at most ``rows`` rows per period (periods aligned to multiples
  of its length); the rest are counted, and when a period ends with rows held back,
  one ``suppressed`` row says how many, and for which period.

Both take a clock in unix seconds: the window end of a windowed result (so event time
decides, whatever the chunking) or the wall clock. With ``journal=True`` they record
what changed, for the daemon to persist with the run's results.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from .spec import Limit
from .windows import seconds

SUPPRESSED_NAMES = ["suppressed", "period_start", "period_end"]


def encode_key(values: Sequence[Any]) -> bytes:
    return orjson.dumps(list(values), default=str)


class Dedup:
    def __init__(self, columns: Sequence[str], dedup_for: float | None, *, journal: bool = False) -> None:
        self.columns = tuple(columns)
        self.dedup_for = dedup_for
        self.seen: dict[bytes, float] = {}
        self.journal: list[tuple[bytes, float]] | None = [] if journal else None
        self._at: list[int] | None = None
        self._names: list[str] | None = None

    def _positions(self, names: Sequence[str]) -> list[int]:
        if self._names != list(names):
            folded = [n.lower() for n in names]
            self._at = [folded.index(c.lower()) for c in self.columns]
            self._names = list(names)
        return self._at  # type: ignore[return-value]

    def first(self, names: Sequence[str], row: Sequence[Any], now: float) -> bool:
        """True (and remembered) when ``row``'s key was not emitted within ``dedup_for``."""
        key = encode_key([row[i] for i in self._positions(names)])
        last = self.seen.get(key)
        if last is not None and (self.dedup_for is None or now < last + self.dedup_for):
            return False
        self.seen[key] = now
        if self.journal is not None:
            self.journal.append((key, now))
        return True

    def expire(self, now: float) -> list[bytes]:
        """Forget keys older than ``dedup_for``; return them (the daemon deletes them too)."""
        if self.dedup_for is None:
            return []
        gone = [k for k, when in self.seen.items() if now >= when + self.dedup_for]
        for k in gone:
            del self.seen[k]
        return gone


@dataclass
class Suppressed:
    count: int
    start_ms: int
    end_ms: int

    def row(self) -> tuple:
        return (self.count, seconds(self.start_ms), seconds(self.end_ms))


class RateLimit:
    def __init__(self, limit: Limit) -> None:
        self.limit = limit
        self.period = -1  # index of the current period
        self.sent = 0
        self.suppressed = 0
        self.total_suppressed = 0

    def roll(self, now: float) -> Suppressed | None:
        """Move to the period holding ``now``; a report when the one that ended held rows back."""
        period = int(now * 1000 // self.limit.period_ms)
        if period <= self.period:
            return None
        report = self._report()
        self.period, self.sent, self.suppressed = period, 0, 0
        return report

    def admit(self, now: float) -> bool:
        """One row at ``now`` (after :meth:`roll`): may it go out?"""
        if self.sent < self.limit.rows:
            self.sent += 1
            return True
        self.suppressed += 1
        self.total_suppressed += 1
        return False

    def finish(self) -> Suppressed | None:
        """End of input: the current period's report, if it held rows back."""
        report = self._report()
        self.suppressed = 0
        return report

    def _report(self) -> Suppressed | None:
        if not self.suppressed:
            return None
        size = self.limit.period_ms
        return Suppressed(self.suppressed, self.period * size, (self.period + 1) * size)

    def state(self) -> list[int]:
        return [self.period, self.sent, self.suppressed, self.total_suppressed]

    def load(self, state: list[int]) -> None:
        self.period, self.sent, self.suppressed, self.total_suppressed = state
