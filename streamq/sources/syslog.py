"""syslog_events from syslog datagrams (RFC 3164 and RFC 5424) on a Unix socket and/or UDP.

osquery reads the lines rsyslog writes, in a CSV template, to a named pipe. Here the
source is the syslog receiver itself: it binds a Unix datagram socket (``socket``),
which rsyslog forwards to with omuxsock, or any program writes to as it would to
/dev/log (``logger -u PATH``), and optionally a UDP address (``udp``). It is off
unless a config names a socket or an address, as osquery's ``enable_syslog`` is.

Each datagram is one message, parsed by host/syslogmsg.py; one that is not syslog is
counted as an error (streamq_events) and dropped.
"""

from __future__ import annotations

import asyncio
import os
import socket
import stat
from dataclasses import dataclass

from ..config.options import STRING, SourceOptions, option
from ..host.syslogmsg import MalformedMessage, parse_message
from .base import Source, SourceUnavailable

_MAX_DATAGRAM = 65536
_RCVBUF = 4 * 1024 * 1024
_BATCH = 256  # datagrams read per wake-up, so one busy socket cannot starve the loop


def udp_address(value: object) -> str:
    """``"127.0.0.1:514"``, ``"[::1]:514"`` or ``":514"`` (every IPv4 address); port 0 picks a free one."""
    text = STRING(value)
    _host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError(f"{text!r} is not HOST:PORT (like 127.0.0.1:514 or [::1]:514)")
    return text


@dataclass(frozen=True)
class SyslogOptions(SourceOptions):
    socket: str | None = option(None, STRING, doc="Unix datagram socket to create and read (omuxsock, logger -u).")
    udp: str | None = option(None, udp_address, doc="Also listen for syslog over UDP on HOST:PORT.")


def _split_udp(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]") or "0.0.0.0", int(port)


def bind_unix(path: str) -> socket.socket:
    """A non-blocking datagram socket bound at ``path``; a stale socket file left there is
    replaced, a live one (someone answers on it) or any other file is refused."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        mode = None
    except OSError as err:
        raise SourceUnavailable(f"syslog: cannot use {path}: {err.strerror}") from err
    if mode is not None:
        if not stat.S_ISSOCK(mode):
            raise SourceUnavailable(f"syslog: {path} exists and is not a socket")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        stale = False  # it answers, or it is someone else's (permission denied): leave it alone
        try:
            probe.connect(path)
        except (ConnectionRefusedError, FileNotFoundError):
            stale = True  # nobody reads it: left by an earlier run
        except OSError:
            pass
        finally:
            probe.close()
        if not stale:
            raise SourceUnavailable(f"syslog: {path} is in use by another process")
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as err:
            raise SourceUnavailable(f"syslog: cannot replace {path}: {err.strerror}") from err
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC)
    return _bound(sock, path, f"cannot bind {path}")


def bind_udp(address: str) -> socket.socket:
    host, port = _split_udp(address)
    try:
        family, kind, proto, _, sockaddr = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
        sock = socket.socket(family, kind | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC, proto)
    except OSError as err:
        raise SourceUnavailable(f"syslog: cannot listen on udp {address}: {err}") from err
    return _bound(sock, sockaddr, f"cannot listen on udp {address}")


def _bound(sock: socket.socket, address: object, what: str) -> socket.socket:
    """``sock`` with a large receive buffer, bound at ``address``; closed if that fails."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RCVBUF)
        sock.bind(address)
    except OSError as err:
        sock.close()
        raise SourceUnavailable(f"syslog: {what}: {err.strerror}") from err
    return sock


class SyslogSource(Source):
    name = "syslog"
    kind = "socket"
    Options = SyslogOptions

    @classmethod
    def warnings(cls, options: SourceOptions) -> list[str]:
        if getattr(options, "socket", None) is None and getattr(options, "udp", None) is None:
            return ["no socket or udp address is configured; syslog_events stays empty"]
        return []

    async def run(self) -> None:
        options = self.options
        if options.socket is None and options.udp is None:
            raise SourceUnavailable(
                'syslog_events: nothing to receive on (set [sources.syslog] socket = "/run/streamq/syslog.sock"'
                ' or udp = "127.0.0.1:514")'
            )
        self.hostname = socket.gethostname()
        socks: list[socket.socket] = []
        bound_path = None
        loop = asyncio.get_running_loop()
        failed: asyncio.Future = loop.create_future()
        try:
            if options.socket is not None:
                socks.append(bind_unix(options.socket))
                bound_path = options.socket
            if options.udp is not None:
                socks.append(bind_udp(options.udp))
            for sock in socks:
                loop.add_reader(sock.fileno(), self._readable, sock, failed)
            where = [f"unix {options.socket}"] if options.socket else []
            where += [f"udp {socks[-1].getsockname()[1]}"] if options.udp else []
            self.status.mode = ", ".join(where)
            await failed
        finally:
            for sock in socks:
                loop.remove_reader(sock.fileno())
                sock.close()
            if bound_path is not None:
                try:
                    os.unlink(bound_path)
                except OSError:
                    pass

    def _readable(self, sock: socket.socket, failed: asyncio.Future) -> None:
        for _ in range(_BATCH):
            try:
                data, sender = sock.recvfrom(_MAX_DATAGRAM)
            except BlockingIOError:
                return
            except OSError as err:
                if not failed.done():
                    failed.set_exception(err)
                return
            self._handle(data, sender)

    def _handle(self, data: bytes, sender: object) -> None:
        # A message without a hostname: this host's name from the Unix socket, the sender's address over UDP.
        default = sender[0] if isinstance(sender, tuple) else self.hostname
        try:
            row = parse_message(data, default_host=default)
        except MalformedMessage as err:
            self.status.error(f"malformed syslog datagram ({len(data)} bytes): {err}")
            return
        self.ring.append(row)
