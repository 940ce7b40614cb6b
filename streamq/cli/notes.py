"""Notes on stderr when an answer is incomplete: not root, or a source on its fallback."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Iterable

from ..ring import Rings
from ..tables.privileges import FALLBACK_COST, WITHOUT_ROOT


def incomplete_tables(tables: Iterable[str], *, euid: int | None = None) -> str | None:
    """One note naming the tables read whose rows are incomplete for a non-root user; None if none."""
    if (os.geteuid() if euid is None else euid) == 0:
        return None
    found = sorted(t for t in set(tables) if t in WITHOUT_ROOT)
    if not found:
        return None
    parts = "; ".join(f"{t}: {WITHOUT_ROOT[t]}" for t in found)
    return f"streamq: note: not running as root, so some rows are incomplete ({parts})"


def print_incomplete(tables: Iterable[str]) -> None:
    note = incomplete_tables(tables)
    if note:
        print(note, file=sys.stderr)


async def watch_fallbacks(rings: Rings, *, timeout: float = 5.0) -> None:
    """Once each started source says how it runs, note the ones polling instead of listening."""
    noted: set[str] = set()
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while loop.time() < end:
        for table, status in list(rings.status.items()):
            if table in noted or not status.mode:
                continue
            noted.add(table)
            if status.mode.startswith("polling"):
                cost = FALLBACK_COST.get(table, "events between two polls are missed")
                print(f"streamq: note: {table}: {status.mode}: {cost}", file=sys.stderr, flush=True)
        if noted and noted >= rings.status.keys():
            return
        await asyncio.sleep(0.05)
