"""Event sources: each owns one kernel handle (or file, or broker subscription) and only
appends rows to its ring. Nothing here runs SQL.

``SOURCES`` maps a config key (``[sources.<key>]``) to the class that implements it
and the event tables it fills. A source's module declares its options (a dataclass
named ``Options`` on the class) next to its code; modules are imported only when a
config names the source or a query reads its table, so ``streamq query`` stays quick.
Adding a source is one module plus one entry here.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SourceEntry:
    target: str  # "module:Class"
    # The event tables it fills; None: configured per instance ([sources.jsonl.NAME]),
    # filling the table its options name.
    tables: tuple[str, ...] | None

    def load(self) -> Any:
        module, _, name = self.target.partition(":")
        return getattr(importlib.import_module(module), name)


SOURCES: dict[str, SourceEntry] = {
    "process": SourceEntry("streamq.sources.process:ProcessSource", ("process_events",)),
    "file": SourceEntry("streamq.sources.file:FileSource", ("file_events",)),
    "yara": SourceEntry("streamq.sources.yara:YaraSource", ("yara_events",)),
    "socket": SourceEntry("streamq.sources.socket:SocketSource", ("socket_events",)),
    "network": SourceEntry("streamq.sources.network:NetworkSource", ("network_events",)),
    "hardware": SourceEntry("streamq.sources.hardware:HardwareSource", ("hardware_events",)),
    "audit": SourceEntry(
        "streamq.sources.audit:AuditSource",
        ("user_events", "process_file_events", "selinux_events", "apparmor_events", "seccomp_events"),
    ),
    "syslog": SourceEntry("streamq.sources.syslog:SyslogSource", ("syslog_events",)),
    "jsonl": SourceEntry("streamq.sources.jsonl:JsonlSource", None),
    "mqtt": SourceEntry("streamq.sources.mqtt:MqttSource", None),
}


def declare_tables() -> None:
    """Import each source whose event tables no table module declared: a source may declare
    its table next to its code (make_event_table in its module), and ``streamq query``,
    ``tables``, ``--follow`` and a config that does not name the source still see it. The
    built-in sources' tables are declared in tables/, so this imports nothing for them."""
    from ..sql.schema import REGISTRY

    for entry in SOURCES.values():
        if entry.tables is not None and not all(table in REGISTRY for table in entry.tables):
            entry.load()


def kind_of(key: str) -> str:
    """The registry key of a configured source: ``"jsonl.app"`` -> ``"jsonl"``."""
    return key.split(".", 1)[0]


def table_sources(sources: dict[str, Any]) -> dict[str, tuple[str, Any]]:
    """event table -> (source config key, options) for every source that can run.

    ``sources`` is a config's validated sources; a fixed-table source that the
    config does not mention runs on its defaults.
    """
    out: dict[str, tuple[str, Any]] = {}
    for kind, entry in SOURCES.items():
        if entry.tables is None:
            continue
        options = sources.get(kind)
        if options is None or options.enabled:
            for table in entry.tables:
                out[table] = (kind, options)
    for key, options in sources.items():
        if SOURCES[kind_of(key)].tables is None and options.enabled:
            out[options.table] = (key, options)
    return out
