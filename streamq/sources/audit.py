"""user_events, process_file_events, selinux_events, apparmor_events and seccomp_events
from the kernel's audit netlink socket, beside auditd rather than against it.

The kernel sends audit records to one registered audit daemon (unicast, with
backpressure) and, since 3.16, to every member of the read-only multicast group
AUDIT_NLGRP_READLOG. osquery registers itself as the daemon, so auditd and
osquery fight over the socket. Here, with ``mode = "auto"``:

- an audit daemon holds the socket (AUDIT_GET reports its pid): join the
  multicast group and change nothing; auditd keeps logging as before;
- nobody holds it: register as the daemon (AUDIT_SET pid), enable auditing if
  it was off and raise a backlog limit below 8192 (so a burst waits instead of
  being dropped), and put every one of those back as found on exit.

``mode = "multicast"`` never registers (an auditd started later can then take
the socket; without a daemon the kernel also copies records to its log), and
``mode = "own"`` refuses to run beside a daemon. The five tables are filled by
one reader shared by their sources. Records are joined into events by serial
(host/auditlog.py) and turned into rows by host/auditrows.py.
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import time
from dataclasses import dataclass

from ..config.options import SourceOptions, one_of, option, positive_duration
from ..host import auditlog, auditrows
from ..host.auditlog import (
    AUDIT_GET,
    AUDIT_NLGRP_READLOG,
    AUDIT_SET,
    AUDIT_STATUS_BACKLOG_LIMIT,
    AUDIT_STATUS_ENABLED,
    AUDIT_STATUS_PID,
    NETLINK_AUDIT,
    NLM_F_ACK,
    NLM_F_REQUEST,
    NLMSG_ERROR,
    NLMSG_HDR,
    STATUS,
    Assembler,
)
from .base import Source, SourceUnavailable
from .netlink import open_netlink, serve_socket

TABLES = ("user_events", "process_file_events", "selinux_events", "apparmor_events", "seccomp_events")
_RCVBUF = 8 * 1024 * 1024
_OWNER_BACKLOG = 8192


@dataclass(frozen=True)
class AuditOptions(SourceOptions):
    mode: str = option(
        "auto",
        one_of("auto", "multicast", "own"),
        doc="auto: multicast beside an audit daemon, else hold the socket and give it back at exit.",
    )
    event_timeout: float = option(0.5, positive_duration, doc="An event with no EOE record closes after this long.")


@dataclass(frozen=True)
class Status:
    enabled: int
    pid: int
    backlog_limit: int
    lost: int


def _request(sock: socket.socket, kind: int, payload: bytes = b"") -> None:
    sock.send(NLMSG_HDR.pack(NLMSG_HDR.size + len(payload), kind, NLM_F_REQUEST | NLM_F_ACK, 0, 0) + payload)


def _reply(sock: socket.socket, kind: int) -> bytes | None:
    """The payload of the reply of ``kind`` (None for a bare ACK); OSError for a refusal."""
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        data = sock.recv(65536)
        _length, msg_type, _flags, _seq, _pid = NLMSG_HDR.unpack_from(data)
        if msg_type == NLMSG_ERROR:
            code = -int.from_bytes(data[16:20], "little", signed=True)
            if code:
                raise OSError(code, os.strerror(code))
            if kind == AUDIT_SET:
                return None
        elif msg_type == kind:
            return data[NLMSG_HDR.size :]
    raise OSError(errno.ETIMEDOUT, "no reply from the kernel")


def get_status(sock: socket.socket) -> Status:
    _request(sock, AUDIT_GET)
    payload = _reply(sock, AUDIT_GET) or b""
    _mask, enabled, _failure, pid, _rate, backlog_limit, lost, _backlog, _version = STATUS.unpack_from(
        payload.ljust(STATUS.size, b"\0")
    )
    return Status(enabled, pid, backlog_limit, lost)


def set_status(sock: socket.socket, mask: int, *, enabled: int = 0, pid: int = 0, backlog_limit: int = 0) -> None:
    _request(sock, AUDIT_SET, STATUS.pack(mask, enabled, 0, pid, 0, backlog_limit, 0, 0, 0))
    _reply(sock, AUDIT_SET)


def _control_socket() -> socket.socket:
    try:
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_AUDIT)
    except OSError as err:
        raise SourceUnavailable(f"audit: no audit netlink socket here ({err.strerror})") from err
    sock.settimeout(2.0)
    try:
        sock.bind((0, 0))
    except OSError as err:
        sock.close()
        raise SourceUnavailable(f"audit: cannot bind the audit socket ({err.strerror})") from err
    return sock


class Ownership:
    """What registering as the audit daemon changed, to put back on exit."""

    def __init__(self, sock: socket.socket, before: Status) -> None:
        self.sock = sock
        self.before = before
        mask = AUDIT_STATUS_PID
        if before.enabled == 0:
            mask |= AUDIT_STATUS_ENABLED
        if 0 < before.backlog_limit < _OWNER_BACKLOG:
            mask |= AUDIT_STATUS_BACKLOG_LIMIT
        set_status(sock, mask, enabled=1, pid=os.getpid(), backlog_limit=_OWNER_BACKLOG)
        self.mask = mask

    def restore(self) -> None:
        b = self.before
        set_status(self.sock, self.mask, enabled=b.enabled, pid=0, backlog_limit=b.backlog_limit)


def open_reader(mode: str) -> tuple[socket.socket, Ownership | None, str]:
    """The socket records arrive on, what to restore (None in multicast), and a status line."""
    control = _control_socket()
    try:
        status = get_status(control)
    except OSError as err:
        control.close()
        raise SourceUnavailable(
            f"audit: the kernel refused AUDIT_GET ({err.strerror}; needs CAP_AUDIT_CONTROL)"
        ) from err
    held = status.pid not in (0, os.getpid())
    if mode == "own" and held:
        control.close()
        raise SourceUnavailable(f"audit: pid {status.pid} holds the audit socket (mode = 'own')")
    if mode == "multicast" or (mode == "auto" and held):
        control.close()
        what = "join the audit multicast group (needs CAP_AUDIT_READ, kernel 3.16+)"
        sock = open_netlink(
            NETLINK_AUDIT, 1 << (AUDIT_NLGRP_READLOG - 1), label="audit", what=what, rcvbuf=_RCVBUF, raw=True
        )
        holder = f"pid {status.pid} holds the socket" if held else "no audit daemon"
        off = "; auditing is off (auditctl -e 1)" if status.enabled == 0 else ""
        return sock, None, f"multicast ({holder}{off})"
    try:
        ownership = Ownership(control, status)
    except OSError as err:
        control.close()
        raise SourceUnavailable(f"audit: cannot register as the audit daemon ({err.strerror})") from err
    control.setblocking(False)
    return control, ownership, "audit daemon (registered; state restored at exit)"


class AuditReader:
    """One reader per set of rings, shared by the sources of the five tables."""

    def __init__(self, rings, options: AuditOptions) -> None:
        self.rings = rings
        self.options = options
        self.sources: dict[str, Source] = {}
        self.task: asyncio.Task | None = None
        self.assembler = Assembler(options.event_timeout)

    async def serve(self, source: Source) -> None:
        self.sources[source.table] = source
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._run(), name="audit-reader")
        try:
            await asyncio.shield(self.task)
        finally:
            self.sources.pop(source.table, None)
            if not self.sources:
                self.task.cancel()
                await asyncio.gather(self.task, return_exceptions=True)
                _READERS.pop(id(self.rings), None)

    async def _run(self) -> None:
        sock, ownership, mode = await asyncio.to_thread(open_reader, self.options.mode)
        for source in self.sources.values():
            source.status.mode = mode
        expiring = asyncio.create_task(self._expire_loop(), name="audit-expire")
        status = next(iter(self.sources.values())).status
        try:
            await serve_socket(sock if ownership is None else _Dup(sock), self._handle, status)
        finally:
            expiring.cancel()
            self._emit(self.assembler.flush())
            if ownership is not None:
                try:
                    ownership.sock.setblocking(True)
                    ownership.restore()
                finally:
                    ownership.sock.close()

    async def _expire_loop(self) -> None:
        while True:
            await asyncio.sleep(self.options.event_timeout / 2)
            self._emit(self.assembler.expire(time.monotonic()))

    def _handle(self, data: bytes, sender: int) -> None:
        if sender != 0 or len(data) < NLMSG_HDR.size:
            return  # only the kernel writes audit records
        kind = NLMSG_HDR.unpack_from(data)[1]
        if kind <= AUDIT_GET:
            return  # acknowledgements and status replies; records start at 1001
        record = auditlog.parse_record(kind, data[NLMSG_HDR.size :])
        if record is not None:
            self._emit(self.assembler.add(record, time.monotonic()))

    def _emit(self, events: list) -> None:
        if not events:
            return
        uptime = int(time.clock_gettime(time.CLOCK_BOOTTIME))
        for event in events:
            for table, row in auditrows.rows(event, uptime):
                source = self.sources.get(table)
                if source is not None:
                    source.ring.append(row)


class _Dup:
    """The owner socket, lent to serve_socket (which closes what it serves): closing the
    lent copy leaves the original open for the AUDIT_SET that restores the state."""

    def __init__(self, sock: socket.socket) -> None:
        self._copy = sock.dup()
        self._copy.setblocking(False)

    def __getattr__(self, name):
        return getattr(self._copy, name)


_READERS: dict[int, AuditReader] = {}


class AuditSource(Source):
    """One of the five audit tables; the records come from the reader its rings share."""

    name = "audit"
    kind = "netlink"
    Options = AuditOptions

    async def run(self) -> None:
        reader = _READERS.get(id(self.rings))
        if reader is None:
            reader = _READERS[id(self.rings)] = AuditReader(self.rings, self.options)
        await reader.serve(self)
