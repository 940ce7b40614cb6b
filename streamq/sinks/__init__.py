"""Sinks: where result lines go. Each knows only batches of lines, never SQL.

``SINKS`` maps a config ``type`` to the class; a sink's module declares its
options (a dataclass named ``Options`` on the class) and their checks next to
its code, and modules load only when a config names them. Adding a sink is one
module plus one entry here. Delivery from the outbox lives in ``delivery``.
"""

from __future__ import annotations

import importlib
from typing import Any

SINKS: dict[str, str] = {
    "file": "streamq.sinks.file:FileSink",
    "stdout": "streamq.sinks.stdout:StdoutSink",
    "mqtt": "streamq.sinks.mqtt:MqttSink",
    "nats": "streamq.sinks.nats:NatsSink",
    "postgres": "streamq.sinks.postgres:PostgresSink",
    "webhook": "streamq.sinks.webhook:WebhookSink",
    "syslog": "streamq.sinks.syslog:SyslogSink",
}


def sink_class(kind: str) -> Any:
    module, _, name = SINKS[kind].partition(":")
    return getattr(importlib.import_module(module), name)
