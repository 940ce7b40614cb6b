"""What `query --follow` and `tail` share around the streaming engine: printing its rows,
ending on a signal like at the end of input, and how long to wait for the next wake-up."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from ..stream.pipeline import FINAL, SUPPRESSED, UPDATE, Out

RowSink = Callable[[Sequence[str], Sequence[Any]], None]


class CountedOut:
    """Where the engine's rows go, up to ``count`` (None: no limit); with ``changes`` a row
    says whether it is a window's final result. Subclasses print what :meth:`take` gives."""

    def __init__(self, count: int | None, *, changes: bool) -> None:
        self.count, self.changes = count, changes
        self.emitted = 0

    @property
    def full(self) -> bool:
        return self.count is not None and self.emitted >= self.count

    def take(self, outs: list[Out]) -> list[Out]:
        """``outs`` cut to what ``count`` still allows, counted as emitted."""
        if self.count is not None:
            outs = outs[: max(0, self.count - self.emitted)]
        self.emitted += len(outs)
        return outs


class OutPrinter(CountedOut):
    """The engine's rows to a row printer; with ``changes``, a ``final`` column."""

    def __init__(self, emit: RowSink, count: int | None, *, changes: bool) -> None:
        super().__init__(count, changes=changes)
        self.emit = emit

    def __call__(self, outs: list[Out]) -> None:
        for out in self.take(outs):
            names, row = out.names, out.row
            if self.changes and out.kind in (FINAL, UPDATE):
                names, row = [*names, "final"], (*row, out.kind == FINAL)
            elif out.kind == SUPPRESSED:  # as `tail` prints it: not one of the query's rows
                names, row = ["action", *names], ("suppressed", *row)
            self.emit(names, row)


def until(deadline: float | None, wakeup: float | None) -> float | None:
    """Seconds to wait: to ``deadline`` (time.monotonic) or ``wakeup`` (time.time), whichever is first."""
    waits = []
    if deadline is not None:
        waits.append(deadline - time.monotonic())
    if wakeup is not None:
        waits.append(wakeup - time.time())
    return max(0.0, min(waits)) if waits else None


@contextlib.contextmanager
def stop_on_signals(stop: asyncio.Event) -> Iterator[None]:
    """SIGINT/SIGTERM end the input like EOF does: open windows are emitted, then we exit."""
    loop = asyncio.get_running_loop()
    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
        except (RuntimeError, ValueError):  # not the main thread
            pass
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
