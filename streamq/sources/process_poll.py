"""Polling fallbacks for when the kernel's event interfaces are out of reach."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from ..errors import ProcessGone
from ..host import procfs
from ..ring import EventRing


async def poll_processes(ring: EventRing, interval: float, details: Callable[[int], dict]) -> None:
    """process_events by diffing /proc every ``interval`` seconds.

    A process that starts and ends between two scans is never seen, and exit
    codes are unknown: that is why the proc connector is preferred.
    """
    known = {pid: _start_of(pid) for pid in procfs.pids()}
    while True:
        await asyncio.sleep(interval)
        current = {}
        for pid in procfs.pids():
            start = known.get(pid)
            if start is None:
                start = _start_of(pid)
                if start is None:
                    continue
                row = {"pid": pid, "action": "exec", "syscall": "poll"}
                row.update(details(pid))
                ring.append(row)
            current[pid] = start
        for pid in known.keys() - current.keys():
            ring.append({"pid": pid, "action": "exit", "syscall": "poll"})
        known = current


def _start_of(pid: int) -> int | None:
    # pid plus start time identifies a process; a reused pid is a new process.
    try:
        return procfs.stat_of(pid).starttime
    except ProcessGone:
        return None
