"""Rows from an MQTT subscription (aiomqtt): each message's JSON payload is a record.

A payload is one JSON object (one row), a JSON array of objects (a row each),
or, when it is not one JSON value, JSON lines (a row per line): publishers
that batch get the same rows as ones that do not. The topic a message came on
fills the table's ``topic`` column, since one filter (``sensors/#``) matches
many topics.

An unreachable broker raises ConnectionError with the address and the
reason; the supervisor puts that in streamq_events.last_error and retries
with backoff while the other sources keep running.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..config.options import REQUIRED, STRING, NamedSourceOptions, OptionError, one_of, option, positive_int
from ..errors import ConfigError
from ..mqtt import parse_url
from .base import Source
from .records import RecordDecoder, record_layout


@dataclass(frozen=True)
class MqttOptions(NamedSourceOptions):
    url: str = option(REQUIRED, STRING, doc="mqtt[s]://[user:password@]host[:port][/topic/filter]")
    topic: str = option(REQUIRED, STRING, doc="Topic filter, e.g. sensors/#.")
    qos: int = option(1, one_of(0, 1, 2))
    max_line_bytes: int = option(1_048_576, positive_int, doc="Longer payload lines are counted and skipped.")
    time: str | None = option(
        None, STRING, doc="The field holding each record's event time (unix seconds or RFC 3339)."
    )


class MqttSource(Source):
    """Subscribe to ``topic`` at ``url``; append one row per JSON record received."""

    name = "mqtt"
    kind = "mqtt"
    Options = MqttOptions

    @classmethod
    def validate(cls, options: MqttOptions) -> None:
        try:
            parse_url(options.url)
        except ConfigError as err:
            raise OptionError("url", str(err)) from None

    def __init__(self, table: str, options: MqttOptions, rings) -> None:
        super().__init__(table, options, rings)
        options = self.options
        self.broker, url_topic = parse_url(options.url)
        self.topic: str = options.topic or url_topic or "#"
        self.qos: int = options.qos
        columns, time_field = record_layout(table, options.columns, options.time)
        self.decoder = RecordDecoder(columns, self.status, max_bytes=options.max_line_bytes, time_field=time_field)
        self.connected = False

    async def deliver(self, rows: list[dict]) -> None:
        """Hand decoded rows on: into the ring here; `streamq tail` overrides it."""
        append = self.ring.append
        for row in rows:
            append(row)

    async def run(self) -> None:
        import aiomqtt  # imported here: `streamq query` without MQTT never pays for it

        from ..mqtt import client as mqtt_client

        broker = self.broker
        self.status.mode = f"connecting to {broker}"
        client = mqtt_client(broker, timeout=10)
        try:
            async with client:
                await client.subscribe(self.topic, qos=self.qos)
                self.connected = True
                self.status.mode = f"subscribed to {self.topic} at {broker}"
                async for message in client.messages:
                    await self._on_message(message.topic.value, message.payload)
        except aiomqtt.MqttError as err:
            verb = "lost the connection to" if self.connected else "cannot reach"
            raise ConnectionError(f"{verb} MQTT broker {broker} ({err})") from err
        finally:
            self.connected = False

    async def _on_message(self, topic: str, payload: Any) -> None:
        if not isinstance(payload, (bytes, bytearray)):
            payload = b"" if payload is None else str(payload).encode()
        rows = list(self.decoder.decode_payload(bytes(payload)))
        for row in rows:
            row["topic"] = topic
        if rows:
            await self.deliver(rows)
