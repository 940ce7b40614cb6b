"""MQTT sink: each result line is one message on ``streamq/{host}/{query}`` (QoS 1 by default).

* The connection comes from aiomqtt: TLS (mqtts://, ca/cert/key), username and
  password, a persistent session (MQTT 3.1.1, clean_session off) and the client
  id ``streamq-<host>``. A retained status topic says "online" once connected and
  "offline" after a clean close; a retained last will says "offline" after a crash.
* :meth:`MqttSink.send` returns once the broker acknowledged every line
  (PUBACK) and raises while the broker is away. The outbox in the state store is
  the disk spool: Delivery keeps the batch and retries it, so an outage costs
  time, never rows (QoS 1 is at-least-once: a batch cut by an outage is sent again).
* One message carries one result line while results trickle in. When rows arrive
  faster than the broker acknowledges them (a send holds more lines than the
  ``batch_max`` in-flight window), lines are batched: each message then carries
  several lines, newline-separated, so at most ``batch_max`` messages are in flight.
  A consumer splits a payload on newlines either way. paho costs ~0.2 ms of CPU per
  message here (~5k msg/s); batching is what carries 20k+ rows/s.
  ``lines_per_message = N`` forces N lines a message; 1 forbids batching.
  The lines are published through the paho client
  that aiomqtt wraps, because aiomqtt's ``publish()`` creates a task per message
  and counts its pending calls in O(n) per call (about 4k msg/s at 500 in
  flight, against about 11k msg/s through paho on the same machine). paho sends
  in call order, so a query's lines reach the broker, and its subscribers, in order.
* A background task reconnects with jittered backoff; a ``send()`` while
  disconnected asks for an attempt now and raises if it fails, which puts the
  retry pace in the hands of Delivery while rows wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import aiomqtt
from aiomqtt.exceptions import MqttCodeError, MqttConnectError

from ..errors import ConfigError
from .base import Sink

log = logging.getLogger("streamq.sinks.mqtt")

CONNECT_TIMEOUT = 5.0  # seconds for TCP + TLS + CONNACK
CLOSE_TIMEOUT = 0.8  # the daemon gives close() one second
RETRY_MIN, RETRY_MAX = 0.5, 30.0
STABLE = 10.0  # a connection that lived this long resets the reconnect backoff


class MqttUnavailable(ConnectionError):
    """The broker cannot be reached or refused us; the rows stay in the outbox."""


@dataclass(frozen=True)
class Broker:
    """Where and how to connect, parsed once from the sink options."""

    hostname: str
    port: int
    client_id: str
    username: str | None = None
    password: str | None = None
    tls: ssl.SSLContext | None = None
    keepalive: int = 30

    @property
    def url(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.hostname}:{self.port}"


def parse_url(url: str) -> tuple[bool, str, int, str | None, str | None]:
    """``mqtt[s]://[user[:password]@]host[:port]`` -> (tls, host, port, user, password)."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl") or not parts.hostname:
        raise ConfigError(f"mqtt sink: url must look like mqtt://host:port or mqtts://host:port, not {url!r}")
    tls = parts.scheme in ("mqtts", "ssl")
    try:
        port = parts.port or (8883 if tls else 1883)
    except ValueError as err:
        raise ConfigError(f"mqtt sink: bad port in {url!r}") from err
    user = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    return tls, parts.hostname, port, user, password


def tls_context(ca: str | None, cert: str | None, key: str | None) -> ssl.SSLContext:
    try:
        context = ssl.create_default_context(cafile=ca)
        if cert:
            context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as err:
        raise ConfigError(f"mqtt sink: cannot load TLS files (ca={ca}, cert={cert}, key={key}): {err}") from err
    return context


def broker_from_options(options: dict[str, Any], host: str) -> Broker:
    url = options.get("url")
    if not url:
        raise ConfigError("mqtt sink: missing required key 'url'")
    tls, hostname, port, user, password = parse_url(url)
    ca, cert, key = options.get("ca"), options.get("cert"), options.get("key")
    if (ca or cert or key) and not tls:
        raise ConfigError(f"mqtt sink: ca, cert and key need an mqtts:// url, not {url!r}")
    return Broker(
        hostname=hostname,
        port=port,
        client_id=options.get("client_id") or f"streamq-{host}",
        username=options.get("username") or user,
        password=options.get("password") or password,
        tls=tls_context(ca, cert, key) if tls else None,
        keepalive=max(5, int(options.get("keepalive") or 30)),
    )


class _Connection:
    """One connected aiomqtt client, with PUBACK tracking for lines published through paho."""

    def __init__(self, client: aiomqtt.Client) -> None:
        self.client = client
        self.paho = client._client  # the fast publish path: see the module doc
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._unacked: set[int] = set()
        self._low = 0
        self._space = asyncio.Event()
        aiomqtt_on_publish = self.paho.on_publish

        def on_publish(client: Any, userdata: Any, mid: int, reason: Any, properties: Any) -> None:
            aiomqtt_on_publish(client, userdata, mid, reason, properties)
            unacked = self._unacked
            if mid in unacked:
                unacked.discard(mid)
                if len(unacked) <= self._low:
                    self._space.set()

        self.paho.on_publish = on_publish

    def mark_lost(self, err: BaseException) -> None:
        if not self.lost.done():
            self.lost.set_exception(MqttUnavailable(f"connection lost: {err}"))
            self.lost.exception()  # retrieved: nobody may be waiting on it
        self._space.set()

    async def _wait_until(self, low: int) -> None:
        while len(self._unacked) > low:
            if self.lost.done():
                self.lost.result()
            self._low = low
            self._space.clear()
            await self._space.wait()
        if self.lost.done():
            self.lost.result()

    async def publish_lines(self, topic: str, lines: list[bytes], qos: int, window: int) -> None:
        publish, unacked = self.paho.publish, self._unacked
        for line in lines:
            if len(unacked) >= window:
                await self._wait_until(window // 2)
            info = publish(topic, line, qos)
            if info.rc:
                if self.lost.done():
                    self.lost.result()
                raise MqttUnavailable(f"publish failed: {MqttCodeError(info.rc)}")
            if not info.is_published():
                unacked.add(info.mid)
        await self._wait_until(0)


class MqttSink(Sink):
    type = "mqtt"
    coalesce = True  # several outbox batches of a query in one send: batching under load

    async def start(self) -> None:
        options = self.options
        self.broker = broker_from_options(options, self.host)
        self.qos = int(options.get("qos", 1))
        self.window = int(options.get("batch_max") or 500)
        self.lines_per_message = int(options.get("lines_per_message") or 0)  # 0: batch only under load
        self.topic = options.get("topic") or "streamq/{host}/{query}"
        self.status_topic = (options.get("status_topic") or "streamq/{host}/status").format(host=self.host, query="")
        self._topics: dict[str, str] = {}
        self._conn: _Connection | None = None
        self._attempted = asyncio.Event()  # set after every connect attempt, whatever its outcome
        self._attempt_now = asyncio.Event()
        self._closing = False
        self._task = asyncio.create_task(self._keep_connected(), name=f"mqtt-sink:{self.name}")

    # -- connection -------------------------------------------------------------------------

    def _client(self) -> aiomqtt.Client:
        b = self.broker
        client = aiomqtt.Client(
            b.hostname,
            b.port,
            identifier=b.client_id,
            username=b.username,
            password=b.password,
            tls_context=b.tls,
            clean_session=False,
            keepalive=b.keepalive,
            timeout=CONNECT_TIMEOUT,
            will=aiomqtt.Will(self.status_topic, b"offline", qos=1, retain=True),
            max_inflight_messages=0,  # unlimited in paho (its limit costs O(n) per ack); we bound it
            logger=log,
        )
        client.pending_calls_threshold = 1 << 30  # aiomqtt warns per call above 10 pending
        return client

    async def _connect(self) -> _Connection:
        client = self._client()
        try:
            await client.__aenter__()  # paho's connect and aiomqtt's CONNACK wait are both bounded
        except MqttConnectError as err:  # a CONNACK refusal: credentials, client id, ...
            raise MqttUnavailable(f"{self.broker.url} refused the connection: {err}") from err
        except (aiomqtt.MqttError, OSError, TimeoutError) as err:
            raise MqttUnavailable(f"cannot connect to {self.broker.url}: {err or type(err).__name__}") from err
        conn = _Connection(client)
        try:
            await client.publish(self.status_topic, b"online", qos=1, retain=True)
        except aiomqtt.MqttError as err:
            await self._drop(conn)
            raise MqttUnavailable(f"{self.broker.url}: publishing the status failed: {err}") from err
        return conn

    async def _keep_connected(self) -> None:
        delay = RETRY_MIN
        while not self._closing:
            try:
                conn = await self._connect()
            except Exception as err:  # whatever it is, the next attempt may work
                self.stats.last_error = str(err) if isinstance(err, MqttUnavailable) else f"{self.broker.url}: {err!r}"
                self._attempted.set()
                log.debug("mqtt sink %s: %s; retrying in %.1f s", self.name, err, delay)
                delay = await self._pause(delay)
                continue
            self._conn = conn
            self._attempted.set()
            since = time.monotonic()
            log.info("mqtt sink %s: connected to %s as %s", self.name, self.broker.url, self.broker.client_id)
            err = await self._watch(conn)
            if self._conn is conn:
                self._conn = None
            if self._closing:
                break
            self.stats.last_error = f"{self.broker.url}: connection lost: {err}"
            log.warning("mqtt sink %s: %s", self.name, self.stats.last_error)
            await self._drop(conn)
            # reconnect at once after a long session; back off if sessions keep dying young
            # (e.g. another client with the same id takes the session over every time)
            delay = RETRY_MIN if time.monotonic() - since > STABLE else await self._pause(delay)

    async def _pause(self, delay: float) -> float:
        """Sleep about ``delay`` (jittered) or until a send asks for an attempt; return the next delay."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._attempt_now.wait(), delay * random.uniform(0.8, 1.2))
        self._attempt_now.clear()
        return min(delay * 2, RETRY_MAX)

    async def _watch(self, conn: _Connection) -> BaseException:
        """Wait until the connection ends; the message iterator raises when it drops."""
        try:
            async for _ in conn.client.messages:  # nothing subscribed: this only waits
                pass
        except aiomqtt.MqttError as err:
            cause = err.__cause__ or err
        else:
            cause = MqttUnavailable("message iterator ended")
        conn.mark_lost(cause)
        return cause

    async def _drop(self, conn: _Connection) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(conn.client.__aexit__(None, None, None), CLOSE_TIMEOUT)

    async def _connection(self) -> _Connection:
        if self._conn is None and not self._closing:
            self._attempted.clear()
            self._attempt_now.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._attempted.wait(), CONNECT_TIMEOUT + 2)
        if self._conn is None:
            raise MqttUnavailable(self.stats.last_error or f"not connected to {self.broker.url}")
        return self._conn

    # -- the Sink API -----------------------------------------------------------------------

    async def send(self, query: str, lines: list[bytes]) -> None:
        topic = self._topics.get(query)
        if topic is None:
            topic = self._topics[query] = self.topic.format(host=self.host, query=query)
        conn = await self._connection()
        k = self.lines_per_message or -(-len(lines) // self.window)  # ceil: messages fit the window
        if k > 1:
            lines = [b"\n".join(lines[i : i + k]) for i in range(0, len(lines), k)]
        await conn.publish_lines(topic, lines, self.qos, self.window)

    async def close(self) -> None:
        self._closing = True
        conn, self._conn = self._conn, None
        if conn is not None and not conn.lost.done():
            with contextlib.suppress(Exception):  # "offline" first: a clean DISCONNECT fires no will
                await asyncio.wait_for(
                    conn.client.publish(self.status_topic, b"offline", qos=1, retain=True), CLOSE_TIMEOUT / 2
                )
            await self._drop(conn)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._task
