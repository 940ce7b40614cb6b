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
import hashlib
import hmac
import json
import logging
import socket
import ssl
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from ..errors import QueryError, StreamqError
from ..sources.mqtt import Broker, parse_url
from ..sql.readonly import Limits, ReadOnlyConnection

log = logging.getLogger("streamq.daemon.fleet")
VERSION = 1
FLEET_TOPIC = "streamq/fleet/query"
STATUS_FILTER = "streamq/+/status"
REPLY_PREFIX = "streamq/fleet/reply/"
ONLINE, OFFLINE = b"online", b"offline"
MAX_INFLIGHT = 16  # requests waiting for the SQL thread; past that a request gets "busy"
MAX_REQUEST = 1024 * 1024
_FIELDS = {"v": int, "id": str, "sql": str, "target": str, "ts": int, "deadline_ms": int, "max_rows": int}
_FIELDS |= {"reply_to": str, "sig": str}
_TOPIC_CHARS = frozenset("/+#\0")


class FleetError(StreamqError):
    """A fleet request was refused, or the broker could not be reached."""


def host_topic(host: str, leaf: str) -> str:
    return f"streamq/{host}/{leaf}"


def topic_safe(host: str) -> bool:
    """Whether ``host`` can be one level of a topic: no '/', '+', '#', NUL; not empty, not "fleet"."""
    return bool(host) and host != "fleet" and not _TOPIC_CHARS.intersection(host)


# -- requests and their signature ----------------------------------------------------------------


def canonical(body: dict[str, Any]) -> bytes:
    """The signed bytes: the request without "sig", keys sorted, no spaces, UTF-8 (docs/fleet.md)."""
    rest = {k: v for k, v in body.items() if k != "sig"}
    return json.dumps(rest, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def signature(body: dict[str, Any], key: bytes) -> str:
    return hmac.new(key, canonical(body), hashlib.sha256).hexdigest()


def make_request(
    sql: str,
    *,
    target: str,
    reply_to: str,
    key: bytes | None,
    deadline: float | None = None,
    max_rows: int | None = None,
    rid: str | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """A request body for ``target`` ("*" or one host), signed when ``key`` is given."""
    body: dict[str, Any] = {
        "v": VERSION,
        "id": rid or uuid.uuid4().hex,
        "sql": sql,
        "target": target,
        "ts": int(time.time() if now is None else now),
        "reply_to": reply_to,
    }
    if deadline is not None:
        body["deadline_ms"] = max(1, int(deadline * 1000))
    if max_rows is not None:
        body["max_rows"] = max_rows
    if key is not None:
        body["sig"] = signature(body, key)
    return body


class Verifier:
    """Decides whether one daemon accepts a request: fields, target, signature, age, replay."""

    def __init__(self, host: str, key: bytes | None, *, allow_unsigned: bool = False, max_age: float = 30.0) -> None:
        self.host = host
        self.key = key
        self.allow_unsigned = allow_unsigned
        self.max_age = max_age
        self._seen: dict[str, float] = {}  # request id -> when it may be forgotten

    def check(self, body: Any, topic: str, response_topic: str | None, *, now: float | None = None) -> None:
        """Return if the request may run here; raise FleetError with the reason otherwise."""
        if not isinstance(body, dict):
            raise FleetError("a request is a JSON object")
        for key, value in body.items():
            kind = _FIELDS.get(key)
            if kind is None:
                raise FleetError(f"unknown field {key!r}")
            if type(value) is not kind:  # bool is not int, and floats would not sign reproducibly
                raise FleetError(f"{key!r} must be {'an integer' if kind is int else 'a string'}")
        if body.get("v") != VERSION:
            raise FleetError(f"unsupported request version {body.get('v')!r} (this host speaks {VERSION})")
        for key in ("id", "sql", "target"):
            if not body.get(key):
                raise FleetError(f"missing {key!r}")
        wanted = "*" if topic == FLEET_TOPIC else self.host
        if body["target"] != wanted:
            raise FleetError(f"request for {body['target']!r} arrived on {topic}")
        if "sig" not in body:
            if self.allow_unsigned:
                return
            raise FleetError("unsigned request refused: this host requires an HMAC-SHA256 signature")
        if self.key is None:
            return  # allow_unsigned without a key: a signature cannot be checked, and is not needed
        if not hmac.compare_digest(body["sig"], signature(body, self.key)):
            raise FleetError("bad signature")
        now = time.time() if now is None else now
        if "ts" not in body or abs(now - body["ts"]) > self.max_age:
            raise FleetError(f"request timestamp more than {self.max_age:g}s away from this host's clock")
        if body.get("reply_to") != response_topic:
            raise FleetError("the response topic is not the one the request was signed with")
        for rid, until in list(self._seen.items()):
            if until < now:
                del self._seen[rid]
        if body["id"] in self._seen:
            raise FleetError("replayed request (its id was seen already)")
        self._seen[body["id"]] = now + 2 * self.max_age


# -- the daemon side -----------------------------------------------------------------------------


def fleet_options(config: Any) -> dict[str, Any] | None:
    options = config.daemon.get("fleet")
    return options if options and options.get("enabled") else None


async def start_fleet(daemon: Any) -> FleetResponder | None:
    """The daemon's fleet responder, connecting in the background; None without an enabled [fleet]."""
    options = fleet_options(daemon.config)
    if options is None:
        return None
    if not topic_safe(daemon.host):
        log.error("fleet disabled: host identifier %r cannot be an MQTT topic level", daemon.host)
        return None
    from .control import control_options

    control = control_options(daemon.config)  # same caps as the control socket
    responder = FleetResponder(daemon, options, Limits(control["max_rows"], control["deadline"]))
    await responder.start()
    return responder


class FleetResponder:
    def __init__(self, daemon: Any, options: dict[str, Any], limits: Limits) -> None:
        self.daemon = daemon
        self.host: str = daemon.host
        self.broker, _ = parse_url(options["url"])
        self.client_id = options.get("client_id") or f"streamq-fleet-{self.host}"
        self.status_topic = host_topic(self.host, "status") if options.get("status", True) else None
        self.verifier = Verifier(
            self.host, options.get("key_bytes"), allow_unsigned=options["allow_unsigned"], max_age=options["max_age"]
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
        client = _client(aiomqtt, self.broker, identifier=self.client_id, will=will, timeout=10)
        async with client:
            if self.status_topic:
                await client.publish(self.status_topic, ONLINE, qos=1, retain=True)
            await client.subscribe([(FLEET_TOPIC, 1), (host_topic(self.host, "query"), 1)])
            self._client = client
            log.info("fleet: answering on %s and %s at %s", FLEET_TOPIC, host_topic(self.host, "query"), self.broker)
            async for message in client.messages:
                task = asyncio.create_task(self._answer(client, message), name="fleet-request")
                self._inflight.add(task)
                task.add_done_callback(self._inflight.discard)

    async def _answer(self, client: Any, message: Any) -> None:
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        props = message.properties
        response_topic = getattr(props, "ResponseTopic", None)
        if not response_topic:
            self.dropped += 1  # nowhere to answer; a v3 client or a stray message
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
        import orjson

        self.requests += 1
        rid = None
        try:
            if not isinstance(payload, (bytes, bytearray)) or len(payload) > MAX_REQUEST:
                raise FleetError(f"a request is a JSON object of at most {MAX_REQUEST} bytes")
            try:
                body = orjson.loads(payload)
            except orjson.JSONDecodeError as err:
                raise FleetError(f"malformed JSON: {err}") from None
            if isinstance(body, dict) and isinstance(body.get("id"), str):
                rid = body["id"]
            self.verifier.check(body, topic, response_topic)
            if len(self._inflight) > MAX_INFLIGHT:
                raise FleetError(f"busy: {MAX_INFLIGHT} requests are waiting already")
            deadline = body["deadline_ms"] / 1000 if "deadline_ms" in body else None
            return await self.daemon.sql(self._run_sql, rid, body["sql"], deadline, body.get("max_rows"))
        except StreamqError as err:
            message = str(err)
        self.refused += 1
        return _dumps({"host": self.host, "id": rid, "error": " ".join(message.split())})

    def _run_sql(self, rid: str, sql: str, deadline: float | None, max_rows: int | None) -> bytes:
        """On the SQL thread: run, and encode there too, so the event loop never waits on a big reply."""
        ro = self._ro  # once: stop() clears it from the event loop's thread
        if ro is None:
            raise QueryError("the daemon is stopping")
        result = ro.run(sql, deadline=deadline, max_rows=max_rows)
        reply = {"host": self.host, "id": rid, "columns": result.columns, "rows": result.rows}
        return _dumps(reply | {"truncated": result.truncated})


def _dumps(obj: Any) -> bytes:
    import orjson

    return orjson.dumps(obj, default=lambda v: v.hex() if isinstance(v, bytes) else None)


def _client(aiomqtt: Any, broker: Broker, **kwargs: Any) -> Any:
    return aiomqtt.Client(
        broker.host,
        broker.port,
        username=broker.username,
        password=broker.password,
        tls_context=ssl.create_default_context() if broker.tls else None,
        protocol=aiomqtt.ProtocolVersion.V5,
        # A reply follows the PUBACK of its request: without NODELAY, Nagle holds it for the
        # broker's delayed ACK, 40-80 ms per round trip.
        socket_options=((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),),
        **kwargs,
    )


# -- the client side -----------------------------------------------------------------------------


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
) -> FleetResult:
    """Ask every daemon (or the ``hosts`` named); collect replies until all expected answered or ``timeout``."""
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
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                async for message in messages:
                    topic = message.topic.value
                    if topic == reply_to:
                        _take_reply(result, message, token)
                    elif topic.endswith("/status"):
                        _note_status(statuses, topic, message.payload)
                    if result.replies and result.expected <= result.replies.keys():
                        break
    return result


def _take_reply(result: FleetResult, message: Any, token: str) -> None:
    if getattr(message.properties, "CorrelationData", None) != token.encode():
        return
    try:
        body = json.loads(message.payload)
        host = body["host"]
    except (ValueError, TypeError, KeyError):
        return
    if body.get("id") not in (token, None) or not isinstance(host, str):
        return
    if host in result.replies:
        result.duplicates.add(host)
        return
    if "error" in body:
        result.replies[host] = HostReply(host, error=str(body["error"]))
    else:
        cols, rows = body.get("columns") or [], body.get("rows") or []
        result.replies[host] = HostReply(host, cols, rows, bool(body.get("truncated")))


async def hosts(url: str, *, timeout: float = 5.0) -> dict[str, str]:
    """Every host the retained ``streamq/+/status`` messages know, with its status ("online", "offline")."""
    import aiomqtt

    async with _session(aiomqtt, parse_url(url)[0], timeout, []) as (_, statuses, _messages):
        return dict(statuses)


@contextlib.asynccontextmanager
async def _session(aiomqtt: Any, broker: Broker, timeout: float, topics: list[str]):
    """A connected v5 client subscribed to the status filter and ``topics``, with the retained statuses read.

    The retained statuses have no end marker, so a message to a private topic, published
    after the subscription, marks it: the broker sends the retained ones before it.
    """
    token = uuid.uuid4().hex
    sync = f"{REPLY_PREFIX}{token}/sync"
    client = _client(aiomqtt, broker, identifier=f"streamq-cli-{token[:12]}", timeout=timeout)
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
                    if topic.endswith("/status"):
                        _note_status(statuses, topic, message.payload)
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
