"""What the source tests share: a source running in the test's event loop once it is ready,
and the rows of its ring that match."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from conftest import until


@contextlib.asynccontextmanager
async def running(source, ready: Callable, timeout: float = 5.0):
    """``source`` running as a task, yielded once ``ready(source)``; a source that stops before
    raises what stopped it (SourceUnavailable says why). Cancelled at the end."""
    task = asyncio.create_task(source.run())
    try:
        assert await until(lambda: ready(source) or task.done(), timeout, interval=0.01), source.status
        if task.done():
            task.result()
        assert ready(source), source.status
        yield source
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def rows(source, **match) -> list[dict]:
    """The rows in ``source``'s ring whose columns have the values ``match`` gives."""
    return [r for _, _, r in source.ring.since(0) if all(r.get(k) == v for k, v in match.items())]
