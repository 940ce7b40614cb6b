"""Sinks: where result lines go. Each knows only batches of lines, never SQL.

``SINKS`` maps a config ``type`` to the class; modules load only when used.
"""

from __future__ import annotations

SINKS: dict[str, tuple[str, str]] = {
    "file": ("streamq.sinks.file", "FileSink"),
    "stdout": ("streamq.sinks.stdout", "StdoutSink"),
    "mqtt": ("streamq.sinks.mqtt", "MqttSink"),
}
