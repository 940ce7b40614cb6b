"""syslog sink: each result line is one RFC 5424 message, with the query name as MSGID.

``<PRI>1 TIMESTAMP HOSTNAME streamq PROCID MSGID - MSG``: TIMESTAMP is the run's time
(the line's unixTime) in RFC 3339 UTC, HOSTNAME the host identifier, MSG the JSON line
(no BOM: RFC 5424's MSG-ANY; JSON says its own encoding). Header fields keep to the
printable US-ASCII the RFC allows (others become ``_``) and its length limits.

Transports (``url``): ``unix:///dev/log`` (a datagram socket, as journald and rsyslog
offer; a stream socket is framed as TCP is), ``udp://host:514`` (one datagram a
message) and ``tcp://host:601`` (octet counting, RFC 6587: ``LEN SP MSG``).
syslog has no acknowledgements: a message is sent once the kernel took it, and a TCP
connection that breaks can lose what was written just before; a datagram too large
for the transport is refused (counted in ``rejected``), never retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import re
import socket
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson

from ..config.options import STRING, OptionError, SinkOptions, one_of, option, positive_duration
from ..host import syslogmsg
from .base import Rejected, Sink

FACILITIES = {name: code for code, name in enumerate(syslogmsg.FACILITIES)}
SEVERITIES = {
    name: code for code, name in enumerate(["emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"])
}
_NOT_PRINTABLE = re.compile(r"[^\x21-\x7e]")


class SyslogUnavailable(ConnectionError):
    """The receiver cannot be reached; the rows stay in the outbox."""


@dataclass(frozen=True)
class SyslogSinkOptions(SinkOptions):
    url: str = option("unix:///dev/log", STRING, doc="unix:///path, udp://host:port or tcp://host:port")
    facility: str = option("user", one_of(*FACILITIES))
    severity: str = option("info", one_of(*SEVERITIES))
    app_name: str = option("streamq", STRING)
    timeout: float = option(5.0, positive_duration, doc="Connect timeout (tcp).")


def header_field(text: str, limit: int) -> str:
    """An RFC 5424 header field: printable US-ASCII, at most ``limit`` characters, "-" when empty."""
    return _NOT_PRINTABLE.sub("_", text)[:limit] or "-"


def rfc3339(unix_time: float) -> str:
    whole = int(unix_time)
    micros = round((unix_time - whole) * 1_000_000)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
    return f"{stamp}.{micros:06d}Z" if micros else f"{stamp}Z"


def address(url: str) -> tuple[str, Any]:
    """("unix", path), ("udp", (host, port)) or ("tcp", (host, port)); ValueError when it is none of them."""
    parts = urlsplit(url)
    if parts.scheme == "unix" and parts.path and not parts.netloc:
        return "unix", parts.path
    if parts.scheme in ("udp", "tcp") and parts.hostname and not parts.path.strip("/"):
        return parts.scheme, (parts.hostname, parts.port or (514 if parts.scheme == "udp" else 601))
    raise ValueError(f"expected unix:///path, udp://host:port or tcp://host:port, got {url!r}")


class SyslogSink(Sink):
    type = "syslog"
    Options = SyslogSinkOptions
    coalesce = True

    @classmethod
    def validate(cls, options: SyslogSinkOptions) -> None:
        try:
            address(options.url)
        except ValueError as err:
            raise OptionError("url", str(err)) from None

    async def start(self) -> None:
        o = self.options
        self.transport, self.address = address(o.url)
        self._prefix = (
            f"<{FACILITIES[o.facility] * 8 + SEVERITIES[o.severity]}>1 {{time}} {header_field(self.host, 255)} "
            f"{header_field(o.app_name, 48)} {os.getpid()} {{msgid}} - "
        )
        self._sock: socket.socket | None = None  # datagram transports
        self._writer: asyncio.StreamWriter | None = None  # stream transports
        self._reader: asyncio.StreamReader | None = None
        self._unix_stream = False  # set when the unix socket turns out to take streams, not datagrams

    def messages(self, query: str, lines: list[bytes]) -> list[bytes]:
        msgid = header_field(query, 32)
        prefixes: dict[Any, bytes] = {}  # a run's lines share their time: one header for them all
        out = []
        for line in lines:
            unix_time = orjson.loads(line).get("unixTime")
            prefix = prefixes.get(unix_time)
            if prefix is None:
                when = rfc3339(unix_time if isinstance(unix_time, (int, float)) else time.time())
                prefix = prefixes[unix_time] = self._prefix.format(time=when, msgid=msgid).encode()
            out.append(prefix + line)
        return out

    async def send(self, query: str, lines: list[bytes]) -> None:
        messages = self.messages(query, lines)
        try:
            if self.transport == "tcp" or self._unix_stream:
                await self._send_stream(messages)
            else:
                await self._send_datagrams(messages)
        except OSError as err:
            self._drop()
            raise SyslogUnavailable(f"{self.options.url}: {err.strerror or err}") from err

    async def _send_datagrams(self, messages: list[bytes]) -> None:
        loop = asyncio.get_running_loop()
        sock = self._datagram_socket()
        if sock is None:  # a unix socket that takes streams only
            await self._send_stream(messages)
            return
        too_big = 0
        for message in messages:
            try:
                await loop.sock_sendall(sock, message)
            except OSError as err:
                if err.errno != errno.EMSGSIZE:
                    raise
                too_big += 1
        if too_big:
            raise Rejected(too_big, f"{too_big} messages too large for {self.transport} datagrams")

    def _datagram_socket(self) -> socket.socket | None:
        if self._sock is not None:
            return self._sock
        family = socket.AF_UNIX if self.transport == "unix" else socket.AF_INET
        if self.transport == "udp":
            family = socket.getaddrinfo(*self.address, type=socket.SOCK_DGRAM)[0][0]
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.connect(self.address)
        except OSError as err:
            sock.close()
            if err.errno == errno.EPROTOTYPE:  # /dev/log of a daemon that listens on a stream socket
                self._unix_stream = True
                return None
            raise
        sock.setblocking(False)
        self._sock = sock
        return sock

    async def _send_stream(self, messages: list[bytes]) -> None:
        writer = await self._stream()
        if self._reader is not None and self._reader.at_eof():  # the receiver closed its end
            raise ConnectionResetError(errno.ECONNRESET, "connection closed by the receiver")
        writer.write(b"".join(b"%d %s" % (len(m), m) for m in messages))
        await writer.drain()

    async def _stream(self) -> asyncio.StreamWriter:
        if self._writer is not None and not self._writer.is_closing():
            return self._writer
        if self.transport == "unix":
            connect = asyncio.open_unix_connection(self.address)
        else:
            connect = asyncio.open_connection(*self.address)
        try:
            self._reader, self._writer = await asyncio.wait_for(connect, self.options.timeout)
        except TimeoutError:
            raise OSError(errno.ETIMEDOUT, "connect timed out") from None
        return self._writer

    def _drop(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self._writer is not None:
            with contextlib.suppress(Exception):
                self._writer.close()
            self._writer = self._reader = None

    async def close(self) -> None:
        writer = self._writer
        self._drop()
        if writer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 0.5)
