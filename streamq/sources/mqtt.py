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

import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from ..errors import ConfigError
from .base import Source
from .records import RecordDecoder


@dataclass(frozen=True)
class Broker:
    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = None

    def __str__(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


def parse_url(url: str) -> tuple[Broker, str | None]:
    """``mqtt[s]://[user[:password]@]host[:port][/topic/filter]`` -> (broker, topic or None).

    The topic is split off by hand: ``#`` is a wildcard here, not a URL fragment.
    """
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in ("mqtt", "mqtts"):
        raise ConfigError(f"{url!r}: expected mqtt://host:port or mqtts://host:port")
    netloc, slash, topic = rest.partition("/")
    userinfo, at, hostport = netloc.rpartition("@")
    username = password = None
    if at:
        user, colon, secret = userinfo.partition(":")
        username, password = unquote(user), unquote(secret) if colon else None
    if hostport.startswith("["):  # [v6]:port
        host, _, port_text = hostport[1:].partition("]")
        port_text = port_text.lstrip(":")
    else:
        host, _, port_text = hostport.partition(":")
    tls = scheme == "mqtts"
    try:
        port = int(port_text) if port_text else (8883 if tls else 1883)
    except ValueError:
        raise ConfigError(f"{url!r}: port {port_text!r} is not a number") from None
    if not host or not 0 < port < 65536:
        raise ConfigError(f"{url!r}: expected a host and a port between 1 and 65535")
    return Broker(host, port, tls, username, password), (unquote(topic) if slash and topic else None)


class MqttSource(Source):
    """Subscribe to ``topic`` at ``url``; append one row per JSON record received."""

    name = "mqtt"
    kind = "mqtt"

    def __init__(self, table: str, options: dict[str, Any], rings) -> None:
        super().__init__(table, options, rings)
        self.broker, url_topic = parse_url(options["url"])
        self.topic: str = options.get("topic") or url_topic or "#"
        self.qos: int = options.get("qos", 1)
        max_bytes = options.get("max_line_bytes", 1_048_576)
        self.decoder = RecordDecoder(options.get("columns", {}), self.status, max_bytes=max_bytes)
        self.connected = False

    async def deliver(self, rows: list[dict]) -> None:
        """Hand decoded rows on: into the ring here; `streamq tail` overrides it."""
        append = self.ring.append
        for row in rows:
            append(row)

    async def run(self) -> None:
        import aiomqtt  # imported here: `streamq query` without MQTT never pays for it

        broker = self.broker
        self.status.mode = f"connecting to {broker}"
        client = aiomqtt.Client(
            broker.host,
            broker.port,
            username=broker.username,
            password=broker.password,
            tls_context=ssl.create_default_context() if broker.tls else None,
            timeout=10,
        )
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
