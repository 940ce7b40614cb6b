"""One thread that owns every APSW connection of a process's event loop.

APSW connections must not be shared across threads carelessly, and SQL over
/proc must not block the event loop (sources read the kernel there), so all
SQL runs here, one statement at a time.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


class SqlThread:
    def __init__(self, name: str = "streamq-sql") -> None:
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=name)

    async def __call__(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        call = functools.partial(fn, *args, **kwargs) if args or kwargs else fn
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    def close(self) -> None:
        self._executor.shutdown(wait=True)
