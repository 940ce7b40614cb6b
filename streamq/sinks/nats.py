"""NATS JetStream sink: each result line is one message on ``streamq.{host}.{query}``.

* Published through nats-py's JetStream ``publish_async``: every line goes out at
  once (up to ``max_in_flight`` unacknowledged) and :meth:`NatsSink.send` returns
  only when the stream acknowledged every one (PubAck). An ack that does not come
  within ``ack_timeout`` fails the send; Delivery keeps the batch in the outbox and
  sends it again.
* Every message carries ``Nats-Msg-Id``: the result line's stable id. The server
  drops a message whose id it saw within the stream's duplicate window, so a batch
  sent again (after a timeout, an outage or a kill -9) is stored once: exactly once
  at a JetStream consumer, as long as the resend comes within that window (2 minutes
  by default; ``duplicate_window`` when streamq creates the stream).
* The stream is created on first connect when missing (``create_stream``), taking
  the subjects of the template (``streamq.*.*``). ``Nats-Expected-Stream`` makes the
  server refuse a line that would land in another stream.
* Dots, spaces, ``*`` and ``>`` in a host or query name would change the subject's
  tokens; they become ``_``.
* A lost connection fails the send at once and the next send connects anew, so rows
  wait in the outbox (on disk), not in the client's memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import ssl
from dataclasses import dataclass
from typing import Any

import orjson

from ..config.options import BOOL, REQUIRED, STRING, OptionError, SinkOptions, option, positive_duration, positive_int
from .base import Sink, line_id, require_module

log = logging.getLogger("streamq.sinks.nats")

CONNECT_TIMEOUT = 5
_NOT_A_TOKEN = re.compile(r"[.\s*>]")


class NatsUnavailable(ConnectionError):
    """The server cannot be reached or did not acknowledge; the rows stay in the outbox."""


@dataclass(frozen=True)
class NatsSinkOptions(SinkOptions):
    url: str = option(REQUIRED, STRING, doc="nats://host:4222 (tls:// for TLS); several, comma-separated.")
    subject: str = option("streamq.{host}.{query}", STRING, doc="Subject template: {host} and {query}.")
    stream: str = option("STREAMQ", STRING, doc="The JetStream stream the subjects belong to.")
    create_stream: bool = option(True, BOOL, doc="Create the stream when it is missing.")
    duplicate_window: float = option(120.0, positive_duration, doc="A stream streamq creates drops resends this long.")
    ack_timeout: float = option(10.0, positive_duration, doc="Wait this long for the stream's acks.")
    max_in_flight: int = option(4000, positive_int, doc="Unacknowledged messages at most.")
    creds: str | None = option(None, STRING, doc="A .creds file (JWT and NKey).")
    token: str | None = option(None, STRING)
    username: str | None = option(None, STRING)
    password: str | None = option(None, STRING)
    ca: str | None = option(None, STRING, doc="CA bundle for tls:// servers.")


def subject_token(name: str) -> str:
    return _NOT_A_TOKEN.sub("_", name) or "_"


class NatsSink(Sink):
    type = "nats"
    Options = NatsSinkOptions
    coalesce = True  # lines of several runs in one pipelined send

    @classmethod
    def validate(cls, options: NatsSinkOptions) -> None:
        require_module("nats", "nats-py", "nats")
        for url in options.url.split(","):
            if not re.match(r"^(nats|tls)://[^/]+$", url.strip()):
                raise OptionError("url", f"expected nats://host:port or tls://host:port, got {url.strip()!r}")
        try:
            options.subject.format(host="h", query="q")
        except (KeyError, IndexError, ValueError) as err:
            raise OptionError("subject", f"the template may use {{host}} and {{query}} only ({err})") from None
        if not re.match(r"^[A-Za-z0-9_-]+$", options.stream):
            raise OptionError("stream", "a stream name is letters, digits, - and _")

    async def start(self) -> None:
        self._nc: Any = None
        self._js: Any = None
        self._acker: _Acks | None = None
        self._subjects: dict[str, str] = {}
        self._host_token = subject_token(self.host)
        self.duplicates = 0  # resent lines the server dropped as duplicates (seen in its acks)

    # -- connection ---------------------------------------------------------------------------

    def _connect_options(self) -> dict[str, Any]:
        o = self.options
        kwargs: dict[str, Any] = {
            "servers": [url.strip() for url in o.url.split(",")],
            "name": f"streamq-{self.host}",
            "connect_timeout": CONNECT_TIMEOUT,
            # A lost connection closes the client; the next send connects anew, at Delivery's pace.
            # (nats-py's own reconnect would buffer publishes in memory, and its first connect
            # with unlimited attempts never returns while the server is down.)
            "allow_reconnect": False,
            "max_reconnect_attempts": 1,  # one try per server (0 means retry forever in nats-py)
            "reconnect_time_wait": 0.1,
            "error_cb": self._on_error,
            "disconnected_cb": self._on_disconnected,
        }
        if o.creds:
            kwargs["user_credentials"] = o.creds
        if o.token:
            kwargs["token"] = o.token
        if o.username is not None:
            kwargs["user"], kwargs["password"] = o.username, o.password or ""
        if o.ca:
            kwargs["tls"] = ssl.create_default_context(cafile=o.ca)
        return kwargs

    async def _on_error(self, err: Exception) -> None:
        self.stats.last_error = f"{type(err).__name__}: {err}"
        log.debug("nats sink %s: %s", self.name, self.stats.last_error)

    async def _on_disconnected(self) -> None:
        log.debug("nats sink %s: disconnected", self.name)
        if self._acker is not None:
            self._acker.progress.set()  # a send waiting for acks fails now, not after ack_timeout

    async def _jetstream(self) -> Any:
        nc = self._nc
        if nc is not None and nc.is_connected:
            return self._js
        if nc is not None:
            with contextlib.suppress(Exception):
                await nc.close()
            self._nc = None
        import nats
        import nats.errors

        try:
            nc = await asyncio.wait_for(nats.connect(**self._connect_options()), 2 * CONNECT_TIMEOUT)
        except (nats.errors.Error, OSError, TimeoutError) as err:
            raise NatsUnavailable(f"cannot connect to {self.options.url}: {err or type(err).__name__}") from err
        try:
            js = nc.jetstream(publish_async_max_pending=self.options.max_in_flight)
            await self._ensure_stream(js)
        except BaseException:
            with contextlib.suppress(Exception):
                await nc.close()
            raise
        self._nc, self._js = nc, js
        log.info("nats sink %s: connected to %s, stream %s", self.name, nc.connected_url.netloc, self.options.stream)
        return js

    async def _ensure_stream(self, js: Any) -> None:
        from nats.js.errors import NotFoundError

        o = self.options
        try:
            await js.stream_info(o.stream)
            return
        except NotFoundError:
            if not o.create_stream:
                raise NatsUnavailable(f"stream {o.stream} does not exist (create_stream = false)") from None
        subjects = [o.subject.format(host="*", query="*")]
        await js.add_stream(name=o.stream, subjects=subjects, duplicate_window=o.duplicate_window)
        log.info("nats sink %s: created stream %s for %s", self.name, o.stream, ", ".join(subjects))

    # -- the Sink API -------------------------------------------------------------------------

    def _subject(self, query: str) -> str:
        subject = self._subjects.get(query)
        if subject is None:
            subject = self.options.subject.format(host=self._host_token, query=subject_token(query))
            self._subjects[query] = subject
        return subject

    async def send(self, query: str, lines: list[bytes]) -> None:
        acks = await self._acks()
        subject = self._subject(query)
        expected = {"Nats-Expected-Stream": self.options.stream}
        window, nc = self.options.max_in_flight, self._nc
        ids = [line_id(line) for line in lines]
        acks.begin()
        try:
            for line, msg_id in zip(lines, ids):
                if acks.in_flight >= window:
                    await acks.wait(window // 2, self.options.ack_timeout, nc)
                await nc.publish(subject, line, reply=acks.reply(), headers={"Nats-Msg-Id": msg_id, **expected})
            await acks.wait(0, self.options.ack_timeout, nc)
        except OSError as err:  # nats-py's connection errors are OSErrors too
            raise NatsUnavailable(f"{self.options.url}: {err or type(err).__name__}") from err
        finally:
            self.duplicates += acks.end()

    async def _acks(self) -> _Acks:
        await self._jetstream()
        if self._acker is None or self._acker.nc is not self._nc:
            self._acker = _Acks(self._nc)
            await self._acker.subscribe()
        return self._acker

    async def close(self) -> None:
        nc, self._nc = self._nc, None
        if nc is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(nc.close(), 0.8)


class _Acks:
    """The stream's acknowledgements of one connection, read from one wildcard inbox.

    nats-py's ``publish_async`` costs a future, a semaphore and a dict entry per message
    (~7k msg/s here); publishing with our own reply subjects and counting the acks on one
    subscription carries ~20k msg/s on the same machine, with the same protocol.
    """

    def __init__(self, nc: Any) -> None:
        self.nc = nc
        self.prefix = nc.new_inbox()
        self.next = 0
        self.pending: set[int] = set()
        self.error: str | None = None
        self.duplicates = 0
        self.progress = asyncio.Event()

    async def subscribe(self) -> None:
        await self.nc.subscribe(
            self.prefix + ".*", cb=self._on_ack, pending_msgs_limit=1 << 20, pending_bytes_limit=1 << 30
        )

    @property
    def in_flight(self) -> int:
        return len(self.pending)

    def begin(self) -> None:
        self.pending.clear()  # acks of a send that timed out no longer count
        self.error, self.duplicates = None, 0

    def end(self) -> int:
        self.pending.clear()
        return self.duplicates

    def reply(self) -> str:
        token = self.next
        self.next += 1
        self.pending.add(token)
        return f"{self.prefix}.{token}"

    async def _on_ack(self, msg: Any) -> None:
        token = int(msg.subject.rpartition(".")[2])
        if token not in self.pending:
            return
        data = msg.data
        if not data or b'"error"' in data:  # no stream answered (503), or the stream refused
            status = (msg.headers or {}).get("Status", "")
            self.error = self.error or (orjson.loads(data)["error"].get("description") if data else f"status {status}")
        elif b'"duplicate"' in data and orjson.loads(data).get("duplicate"):
            self.duplicates += 1
        self.pending.discard(token)
        self.progress.set()

    async def wait(self, low: int, timeout: float, nc: Any) -> None:
        """Until at most ``low`` acks are missing; raise when one is an error or none came for ``timeout``."""
        while len(self.pending) > low and self.error is None:
            if not nc.is_connected:
                raise NatsUnavailable("connection lost")
            self.progress.clear()
            try:
                await asyncio.wait_for(self.progress.wait(), timeout)
            except TimeoutError:
                raise NatsUnavailable(f"no ack for {timeout:g}s ({len(self.pending)} waiting)") from None
        if self.error is not None:
            raise NatsUnavailable(f"the stream refused a message: {self.error}")
