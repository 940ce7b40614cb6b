"""Starting the sources a config or a query needs, and declaring the tables named sources fill."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from ..errors import ConfigError
from ..ring import Rings
from . import SOURCES, kind_of, table_sources
from .base import Source, supervise


def declare_stream_tables(sources: dict[str, Any], learned: dict[str, list[str]] | None = None) -> None:
    """Register the event tables that named sources (jsonl, mqtt) define in the config.

    ``learned``: per table, the undeclared columns the daemon's queries name (untyped)."""
    from .records import declare_record_table

    for key, options in sources.items():
        if SOURCES[kind_of(key)].tables is None:
            declare_record_table(
                options.table,
                options.columns,
                source=key,
                time_field=getattr(options, "time", None),
                learned=(learned or {}).get(options.table, ()),
            )


def build(sources: dict[str, Any], rings: Rings, tables: Iterable[str]) -> list[Source]:
    """Instantiate the sources that fill ``tables``; ConfigError if a table has none."""
    mapping = table_sources(sources)
    built = []
    for table in sorted(set(tables)):
        if table not in mapping:
            raise ConfigError(f"no source is configured to fill {table}")
        key, options = mapping[table]
        cls = SOURCES[kind_of(key)].load()
        built.append(cls(table, options, rings))
    return built


def start(sources: Iterable[Source]) -> list[asyncio.Task]:
    return [asyncio.create_task(supervise(s), name=f"source:{s.name}:{s.table}") for s in sources]


async def stop(tasks: Iterable[asyncio.Task]) -> None:
    tasks = list(tasks)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
