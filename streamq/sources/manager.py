"""Which source fills which event table, and starting the ones a query needs."""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Iterable

from ..config.loader import Config
from ..errors import ConfigError
from ..ring import Rings
from . import SOURCES
from .base import Source, supervise


def table_sources(config: Config) -> dict[str, tuple[str, dict]]:
    """event table -> (source config key, options) for every source this config can run."""
    out: dict[str, tuple[str, dict]] = {}
    for name, (_, _, tables) in SOURCES.items():
        if tables is None:
            continue
        options = config.sources.get(name, {})
        if options.get("enabled", True):
            for table in tables:
                out[table] = (name, options)
    for key, options in config.sources.items():
        kind = key.split(".", 1)[0]
        if SOURCES.get(kind, (None, None, ()))[2] is None:
            out[options["table"]] = (key, options)
    return out


def declare_stream_tables(config: Config) -> None:
    """Register the event tables that named sources (jsonl, mqtt) define in the config."""
    for key, options in config.sources.items():
        kind = key.split(".", 1)[0]
        if SOURCES.get(kind, (None, None, ()))[2] is None:
            from .records import declare_record_table

            declare_record_table(options["table"], options.get("columns", {}), source=key)


def build(config: Config, rings: Rings, tables: Iterable[str]) -> list[Source]:
    """Instantiate the sources that fill ``tables``; ConfigError if a table has none."""
    mapping = table_sources(config)
    sources = []
    for table in sorted(set(tables)):
        if table not in mapping:
            raise ConfigError(f"no source is configured to fill {table}")
        key, options = mapping[table]
        module_name, class_name, _ = SOURCES[key.split(".", 1)[0]]
        cls = getattr(importlib.import_module(module_name), class_name)
        sources.append(cls(table, options, rings))
    return sources


def start(sources: Iterable[Source]) -> list[asyncio.Task]:
    return [asyncio.create_task(supervise(s), name=f"source:{s.name}:{s.table}") for s in sources]


async def stop(tasks: Iterable[asyncio.Task]) -> None:
    tasks = list(tasks)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
