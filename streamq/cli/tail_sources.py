"""The sources `streamq tail` reads: they hand batches of complete JSON lines to its loop.

A file or stdin is read by the jsonl source (rotation, truncation, partial lines);
an MQTT subscription by the mqtt source, whose messages may each hold one record,
an array of records or JSON lines. Each batch is ``(lines, extras)``: extras holds
the values of columns that come with a line rather than from it (MQTT's topic).
"""

from __future__ import annotations

import asyncio
import os

from ..errors import ConfigError, StreamqError
from ..ring import Rings
from ..sources.jsonl import JsonlSource
from ..sources.mqtt import MqttSource

TABLE = "stream"
END = object()  # the input ended


class TailLines(JsonlSource):
    extras: tuple[str, ...] = ()

    def __init__(self, path: str, queue: asyncio.Queue, *, from_start: bool) -> None:
        options = JsonlSource.Options(path=path, columns=None, from_start=from_start)
        super().__init__(TABLE, options, Rings(capacity=1, max_age=None))
        self.queue = queue

    async def deliver_lines(self, lines: list[bytes]) -> None:
        await self.queue.put((lines, None))  # waits while the SQL is behind: backpressure, not drops


class TailMqtt(MqttSource):
    extras = ("topic",)

    def __init__(self, url: str, queue: asyncio.Queue) -> None:
        super().__init__(TABLE, MqttSource.Options(url=url, columns=None), Rings(capacity=1, max_age=None))
        self.queue = queue

    async def deliver(self, rows: list[dict]) -> None:
        lines = [row["raw"].encode() for row in rows]
        await self.queue.put((lines, {"topic": [row["topic"] for row in rows]}))


def open_source(spec: str, queue: asyncio.Queue, *, from_start: bool = True) -> TailLines | TailMqtt:
    """The source ``spec`` names: ``-``, a file path, or ``mqtt[s]://host:port/topic/filter``."""
    if spec.startswith(("mqtt://", "mqtts://")):
        source = TailMqtt(spec, queue)
        if source.topic == "#" and not spec.rstrip("/").endswith("#"):
            raise ConfigError(f"{spec}: name a topic filter after the port, e.g. mqtt://host:1883/sensors/#")
        return source
    if spec != "-":
        try:
            os.stat(spec)
        except OSError as err:
            raise StreamqError(f"cannot open {spec}: {err.strerror}") from None
        if os.path.isdir(spec):
            raise StreamqError(f"cannot tail {spec}: it is a directory")
    return TailLines(spec, queue, from_start=from_start)
