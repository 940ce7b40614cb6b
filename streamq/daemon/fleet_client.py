"""The client side of fleet queries (``streamq fleet query|hosts``): ask every daemon, gather replies."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..mqtt import Broker, parse_url
from .fleet_protocol import (
    FLEET_TOPIC,
    REPLY_PREFIX,
    STATUS_FILTER,
    FleetError,
    fleet_mqtt_client,
    host_topic,
    is_status_topic,
    make_request,
    topic_safe,
)


@dataclass
class HostReply:
    host: str
    columns: list[str] = field(default_factory=list)
    rows: list[list] = field(default_factory=list)
    truncated: bool = False
    error: str | None = None


@dataclass
class FleetResult:
    replies: dict[str, HostReply]  # by host, in order of arrival
    expected: set[str]  # the hosts named, or the hosts online when the request went out
    statuses: dict[str, str]  # every host the status topic knows, with its last status
    duplicates: set[str] = field(default_factory=set)  # hosts that answered twice

    @property
    def missing(self) -> list[str]:
        return sorted(self.expected - self.replies.keys())

    @property
    def awaited(self) -> set[str]:
        """Expected hosts that can still answer: not answered yet, and not known to be offline."""
        return {h for h in self.expected - self.replies.keys() if self.statuses.get(h) != "offline"}

    @property
    def complete(self) -> bool:
        return not self.missing and all(r.error is None for r in self.replies.values())


async def query(
    url: str,
    sql: str,
    *,
    hosts: list[str] | None = None,
    timeout: float = 5.0,
    key: bytes | None = None,
    max_rows: int | None = None,
    on_reply: Callable[[HostReply], None] | None = None,
) -> FleetResult:
    """Ask every daemon (or the ``hosts`` named); collect replies until all expected answered or ``timeout``.

    ``on_reply`` sees each host's reply as it arrives (the web console shows them so).
    """
    import aiomqtt
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    for host in hosts or ():
        if not topic_safe(host):
            raise FleetError(f"{host!r} cannot be an MQTT topic level")
    token = uuid.uuid4().hex
    reply_to = REPLY_PREFIX + token
    result = FleetResult({}, set(hosts or ()), {})
    async with _session(aiomqtt, parse_url(url)[0], timeout, [reply_to]) as (client, statuses, messages):
        result.statuses = statuses
        if not hosts:
            result.expected = {h for h, s in statuses.items() if s == "online"}
        props = Properties(PacketTypes.PUBLISH)
        props.ResponseTopic = reply_to
        props.CorrelationData = token.encode()
        for target in hosts or ["*"]:
            body = make_request(
                sql, target=target, reply_to=reply_to, key=key, deadline=timeout, max_rows=max_rows, rid=token
            )
            topic = FLEET_TOPIC if target == "*" else host_topic(target, "query")
            # QoS 0: without a persistent session QoS 1 queues nothing for an absent daemon, and the
            # broker's PUBACK would sit in front of the first reply (Nagle on mosquitto's side, ~40 ms).
            await client.publish(topic, json.dumps(body).encode(), qos=0, properties=props)
        # Wait only while some host can still answer: at once when none can (every known host
        # offline), and as soon as the last one that can has answered.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while result.awaited:
                    message = await anext(messages)
                    topic = message.topic.value
                    if topic == reply_to:
                        reply = _take_reply(result, message, token)
                        if reply is not None and on_reply is not None:
                            on_reply(reply)
                    elif is_status_topic(topic):
                        _note_status(statuses, topic, message.payload)
    return result


def _take_reply(result: FleetResult, message: Any, token: str) -> HostReply | None:
    """The reply in ``message``, recorded in ``result``; None for a stray or duplicate message."""
    if getattr(message.properties, "CorrelationData", None) != token.encode():
        return None
    try:
        body = json.loads(message.payload)
        host = body["host"]
    except (ValueError, TypeError, KeyError):
        return None
    if body.get("id") not in (token, None) or not isinstance(host, str):
        return None
    if host in result.replies:
        result.duplicates.add(host)
        return None
    if "error" in body:
        reply = HostReply(host, error=str(body["error"]))
    else:
        cols, rows = body.get("columns") or [], body.get("rows") or []
        reply = HostReply(host, cols, rows, bool(body.get("truncated")))
    result.replies[host] = reply
    return reply


async def hosts(url: str, *, timeout: float = 5.0) -> dict[str, str]:
    """Every host the retained ``streamq/+/status`` messages know, with its status ("online", "offline")."""
    import aiomqtt

    async with _session(aiomqtt, parse_url(url)[0], timeout, []) as (_, statuses, _messages):
        return dict(statuses)


@contextlib.asynccontextmanager
async def _session(aiomqtt: Any, broker: Broker, timeout: float, topics: list[str], note: Any = None):
    """A connected v5 client subscribed to the status filter and ``topics``, with the retained statuses read.

    The retained statuses have no end marker, so a message to a private topic, published
    after the subscription, marks it: the broker sends the retained ones before it.
    ``note(message)`` hears the other messages that come before that marker (retained ones
    of ``topics``).
    """
    token = uuid.uuid4().hex
    sync = f"{REPLY_PREFIX}{token}/sync"
    client = fleet_mqtt_client(aiomqtt, broker, identifier=f"streamq-cli-{token[:12]}", timeout=timeout)
    statuses: dict[str, str] = {}
    try:
        async with client:
            await client.subscribe([(STATUS_FILTER, 1), (sync, 1), *[(t, 1) for t in topics]])
            await client.publish(sync, b"", qos=1)  # QoS 1 like the retained statuses: it queues behind them
            messages = aiter(client.messages)
            async with asyncio.timeout(timeout):
                async for message in messages:
                    topic = message.topic.value
                    if topic == sync:
                        break
                    if is_status_topic(topic):
                        _note_status(statuses, topic, message.payload)
                    elif note is not None:
                        note(message)
            yield client, statuses, messages
    except TimeoutError:
        raise FleetError(f"MQTT broker {broker} did not answer within {timeout:g}s") from None
    except aiomqtt.MqttError as err:
        raise FleetError(f"cannot reach MQTT broker {broker} ({err})") from None


def _note_status(statuses: dict[str, str], topic: str, payload: Any) -> None:
    host = topic.split("/")[1]
    if payload:
        statuses[host] = _status(payload)
    else:  # an empty retained message clears the status: the host is forgotten
        statuses.pop(host, None)


def _status(payload: Any) -> str:
    """A status payload: "online"/"offline", or a JSON object with a "status" key."""
    text = bytes(payload or b"").decode("utf-8", "replace").strip()
    if text.startswith("{"):
        with contextlib.suppress(ValueError, AttributeError):
            return str(json.loads(text).get("status") or text)
    return text
