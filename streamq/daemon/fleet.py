"""Fleet queries over MQTT v5: every daemon answers signed, read-only SQL sent to the fleet's topics.

The protocol is in docs/fleet.md. In short: a request is a JSON object published to
``streamq/fleet/query`` (every daemon) or ``streamq/{host}/query`` (one), with an MQTT v5
response topic and correlation data; each daemon that accepts it runs the SQL on its
read-only connection (streamq.sql.readonly, the control socket's guard and limits) and
publishes one reply to the response topic. Requests are authenticated with
HMAC-SHA256 over canonical JSON, carry a timestamp and a target, and are refused when
old, replayed, or sent to the wrong topic.

The daemon side is :class:`FleetResponder`; the client side (``streamq fleet``) is
:func:`query` and :func:`hosts`. aiomqtt is imported only when one of them runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from ..config.sections import FleetOptions
from ..errors import QueryError, StreamqError
from ..mqtt import parse_url
from ..sql.readonly import Limits, ReadOnlyConnection
from .fleet_protocol import (
    FLEET_TOPIC,
    MAX_INFLIGHT,
    OFFLINE,
    ONLINE,
    FleetError,
    Verifier,
    dumps,
    fleet_mqtt_client,
    host_topic,
    load_payload,
    reply_topic_allowed,
    topic_safe,
)
from .handle import DaemonServices

log = logging.getLogger("streamq.daemon.fleet")


async def start_fleet(daemon: DaemonServices) -> FleetResponder | None:
    """The daemon's fleet responder, connecting in the background; None without an enabled [fleet]."""
    options = daemon.config.fleet
    if options is None or not options.enabled:
        return None
    if not topic_safe(daemon.host):
        log.error("fleet disabled: host identifier %r cannot be an MQTT topic level", daemon.host)
        return None
    control = daemon.config.control  # same caps as the control socket
    responder = FleetResponder(daemon, options, Limits(control.max_rows, control.deadline, control.max_reply_bytes))
    await responder.start()
    return responder


class FleetResponder:
    def __init__(self, daemon: DaemonServices, options: FleetOptions, limits: Limits) -> None:
        self.daemon = daemon
        self.host: str = daemon.host
        self.broker, _ = parse_url(options.url)
        self.client_id = options.client_id or f"streamq-fleet-{self.host}"
        self.status_topic = host_topic(self.host, "status") if options.status else None
        self.verifier = Verifier(
            self.host, options.key_bytes, allow_unsigned=options.allow_unsigned, max_age=options.max_age
        )
        self.limits = limits
        self.requests = self.refused = self.dropped = 0
        self._ro: ReadOnlyConnection | None = None
        self._client: Any = None
        self._task: asyncio.Task | None = None
        self._inflight: set[asyncio.Task] = set()

    async def start(self) -> None:
        d = self.daemon
        self._ro = await d.sql(ReadOnlyConnection.open, rings=d.rings, daemon=d, limits=self.limits)
        self._task = asyncio.create_task(self._run(), name="fleet")

    async def stop(self) -> None:
        """Say offline, stop answering, disconnect; a running request is interrupted."""
        if self._ro is not None:
            self._ro.interrupt()
        client = self._client
        if client is not None and self.status_topic:
            with contextlib.suppress(Exception):  # the will covers a broker we cannot reach now
                await asyncio.wait_for(client.publish(self.status_topic, OFFLINE, qos=1, retain=True), 1.0)
        tasks = [*self._inflight, *filter(None, [self._task])]
        for task in tasks:
            task.cancel()
        if tasks:  # bounded: a broker that hangs must not hold up the daemon's 5 s shutdown
            await asyncio.wait(tasks, timeout=2.0)
        if self._ro is not None:
            # Queued, not awaited, as the control socket does: the daemon closes the SQL thread later.
            self._closing = asyncio.ensure_future(self.daemon.sql(self._ro.close))
            self._ro = None

    async def _run(self) -> None:
        import aiomqtt

        backoff = 1.0
        while True:
            try:
                await self._session(aiomqtt)
            except aiomqtt.MqttError as err:
                log.warning("fleet: MQTT broker %s: %s; retrying in %gs", self.broker, err, backoff)
            else:
                backoff = 1.0
            self._client = None
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 30.0)

    async def _session(self, aiomqtt: Any) -> None:
        will = aiomqtt.Will(self.status_topic, OFFLINE, qos=1, retain=True) if self.status_topic else None
        client = fleet_mqtt_client(aiomqtt, self.broker, identifier=self.client_id, will=will, timeout=10)
        async with client:
            if self.status_topic:
                await client.publish(self.status_topic, ONLINE, qos=1, retain=True)
            await client.subscribe([(FLEET_TOPIC, 1), (host_topic(self.host, "query"), 1)])
            self._client = client
            log.info("fleet: answering on %s and %s at %s", FLEET_TOPIC, host_topic(self.host, "query"), self.broker)
            config = self.daemon.fleet_config  # signed config fragments share this connection
            if config is not None:
                await config.connected(client)
            try:
                async for message in client.messages:
                    if config is not None and config.owns(message.topic.value):
                        config.receive(message.topic.value, message.payload)
                        continue
                    task = asyncio.create_task(self._answer(client, message), name="fleet-request")
                    self._inflight.add(task)
                    task.add_done_callback(self._inflight.discard)
            finally:
                if config is not None:
                    config.disconnected()

    async def _answer(self, client: Any, message: Any) -> None:
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        props = message.properties
        response_topic = getattr(props, "ResponseTopic", None)
        if not isinstance(response_topic, str) or not reply_topic_allowed(response_topic):
            # Nowhere to answer (a v3 client, a stray message), or a topic that is not a reply
            # topic: answering there would let anyone make this daemon publish on, say, a
            # host's status topic.
            self.dropped += 1
            return
        reply = await self._reply(message.topic.value, message.payload, response_topic)
        out = Properties(PacketTypes.PUBLISH)
        correlation = getattr(props, "CorrelationData", None)
        if correlation is not None:
            out.CorrelationData = correlation
        try:
            await client.publish(response_topic, reply, qos=1, properties=out)
        except Exception as err:  # the connection went; the session loop reconnects
            log.warning("fleet: reply to %s lost: %s", response_topic, err)

    async def _reply(self, topic: str, payload: Any, response_topic: str) -> bytes:

        self.requests += 1
        rid = None
        try:
            body = load_payload(payload, "a request")
            if isinstance(body, dict) and isinstance(body.get("id"), str):
                rid = body["id"]
            self.verifier.check(body, topic, response_topic)
            if len(self._inflight) > MAX_INFLIGHT:
                raise FleetError(f"busy: {MAX_INFLIGHT} requests are waiting already")
            deadline = body["deadline_ms"] / 1000 if "deadline_ms" in body else None
            return await self.daemon.sql(self._run_sql, rid, body["sql"], deadline, body.get("max_rows"))
        except StreamqError as err:
            message = str(err)
        except Exception as err:  # a request we did not foresee: refused and counted, never a crash
            log.warning("fleet: malformed request refused: %s: %s", type(err).__name__, err)
            message = f"malformed request ({type(err).__name__})"
        self.refused += 1
        return dumps({"host": self.host, "id": rid, "error": " ".join(message.split())})

    def _run_sql(self, rid: str, sql: str, deadline: float | None, max_rows: int | None) -> bytes:
        """On the SQL thread: run, and encode there too, so the event loop never waits on a big reply."""
        ro = self._ro  # once: stop() clears it from the event loop's thread
        if ro is None:
            raise QueryError("the daemon is stopping")
        result = ro.run(sql, deadline=deadline, max_rows=max_rows)
        reply = {"host": self.host, "id": rid, "columns": result.columns, "rows": result.rows}
        return dumps(reply | {"truncated": result.truncated})
