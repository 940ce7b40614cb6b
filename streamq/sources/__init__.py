"""Event sources: each owns one kernel handle (or file, or broker subscription) and only
appends rows to its ring. Nothing here runs SQL.

``SOURCES`` maps a config name (``[sources.<name>]``) to the module defining it; the
module is imported only when the source is wanted, so `streamq query` stays quick.
"""

from __future__ import annotations

# config name -> (module, class name, event tables it fills; None: named by its config)
SOURCES: dict[str, tuple[str, str, tuple[str, ...] | None]] = {
    "process": ("streamq.sources.process", "ProcessSource", ("process_events",)),
    "file": ("streamq.sources.file", "FileSource", ("file_events",)),
    "socket": ("streamq.sources.socket", "SocketSource", ("socket_events",)),
    "network": ("streamq.sources.network", "NetworkSource", ("network_events",)),
    "hardware": ("streamq.sources.hardware", "HardwareSource", ("hardware_events",)),
    "jsonl": ("streamq.sources.jsonl", "JsonLinesSource", None),
    "mqtt": ("streamq.sources.mqtt", "MqttSource", None),
}
