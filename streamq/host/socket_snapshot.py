"""Snapshots of every socket worth watching, for socket_events: sock_diag kept open, or /proc/net.

A pure reader (no asyncio): :class:`SockDiag` dumps inet and unix sockets over one
NETLINK_SOCK_DIAG socket into :class:`Sock` records keyed by inode; :func:`proc_snapshot`
reads the same from /proc/net where sock_diag is not available.
"""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Iterator
from typing import NamedTuple

from ..text import decode
from . import procfs
from .sockdiag import (
    AF_INET,
    AF_INET6,
    AF_UNIX,
    INET_DIAG_REQ,
    INET_FILES,
    IPPROTO_TCP,
    IPPROTO_UDP,
    NETLINK_SOCK_DIAG,
    NLM_F_REQUEST_DUMP,
    NLMSG_HDR,
    SOCK_DIAG_BY_FAMILY,
    TCP_STATES,
    parse_inet,
)

_NLMSG_ERROR, _NLMSG_DONE = 2, 3
_UNIX_REQ = struct.Struct("=BBxxIII8x")  # unix_diag_req: family, protocol, states, ino, show, cookie
_PORTS = struct.Struct(">HH")
_UID_INODE = struct.Struct("=II")  # inet_diag_msg.idiag_uid, idiag_inode
_UNIX_INO = struct.Struct("=I")
_RTA = struct.Struct("=HH")
_UDIAG_SHOW_NAME, _UDIAG_SHOW_UID = 0x01, 0x40
_UNIX_DIAG_NAME, _UNIX_DIAG_UID = 0, 9

ESTABLISHED, SYN_SENT, TCP_CLOSE, LISTEN = 1, 2, 7, 10
# Every TCP state but TIME_WAIT (no socket, inode 0 anyway); SYN_RECV children get an
# inode only at accept(), which is the moment osquery's accept row stands for.
_TCP_STATES = 0xFFF & ~(1 << 6)
_UDP_STATES = (1 << ESTABLISHED) | (1 << TCP_CLOSE)
_CONNECTED = (ESTABLISHED, SYN_SENT)


class Sock(NamedTuple):
    """One socket as a poll sees it; ``addrs`` is the raw src+dst (32 bytes) for inet."""

    family: int
    protocol: int
    state: int
    lport: int
    rport: int
    uid: int | None
    addrs: bytes | str | None  # unix: the bound path


def ntop(family: int, raw: bytes) -> str:
    """A raw inet address (4 or 16 bytes at the start of ``raw``) as text."""
    return socket.inet_ntop(family, raw if family == AF_INET6 else raw[:4])


class SockDiag:
    """A NETLINK_SOCK_DIAG socket kept open across polls, read into one reused buffer.

    An 8 KiB buffer measured fastest here (larger ones make the kernel build larger,
    slower dump batches). A socket whose inode and state match the previous poll
    reuses that poll's record, so a quiet poll allocates nothing per socket.
    """

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_SOCK_DIAG)
        self._buf = bytearray(8192)
        self._seq = 0
        self.unix = True  # cleared if the kernel has no unix_diag

    def close(self) -> None:
        self.sock.close()

    def _request(self, payload: bytes) -> Iterator[tuple[bytearray, int, int]]:
        """Send a dump request; yield (buffer, body offset, message end) per record.

        The buffer is overwritten by the next read: callers copy what they keep.
        """
        self._seq += 1
        seq = self._seq
        hdr = NLMSG_HDR.pack(NLMSG_HDR.size + len(payload), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST_DUMP, seq, 0)
        self.sock.send(hdr + payload)
        buf, unpack = self._buf, NLMSG_HDR.unpack_from
        while True:
            end = self.sock.recv_into(buf)
            if not end:
                return
            off = 0
            while off + 16 <= end:
                length, kind, _flags, mseq = unpack(buf, off)[:4]
                if length < 16:
                    return
                if mseq == seq:
                    if kind == _NLMSG_DONE:
                        return
                    if kind == _NLMSG_ERROR:
                        err = -struct.unpack_from("=i", buf, off + 16)[0]
                        raise OSError(err, f"sock_diag: {os.strerror(err)}")
                    yield buf, off + 16, off + length
                off += (length + 3) & ~3

    def inet(self, family: int, protocol: int, states: int, into: dict[int, Sock], before: dict[int, Sock]) -> None:
        ports, uid_inode, previous = _PORTS.unpack_from, _UID_INODE.unpack_from, before.get
        for buf, body, _end in self._request(INET_DIAG_REQ.pack(family, protocol, 0, 0, states)):
            uid, inode = uid_inode(buf, body + 64)
            if inode:
                old = previous(inode)
                if old is not None and old.state == buf[body + 1]:
                    into[inode] = old
                else:
                    sport, dport = ports(buf, body + 4)
                    into[inode] = Sock(
                        family, protocol, buf[body + 1], sport, dport, uid, bytes(buf[body + 8 : body + 40])
                    )

    def unix_listeners(self, into: dict[int, Sock]) -> None:
        if not self.unix:
            return
        req = _UNIX_REQ.pack(AF_UNIX, 0, 1 << LISTEN, 0, _UDIAG_SHOW_NAME | _UDIAG_SHOW_UID)
        try:
            for buf, body, end in self._request(req):
                inode = _UNIX_INO.unpack_from(buf, body + 4)[0]
                path, uid = _unix_attrs(buf, body + 16, end)
                into[inode] = Sock(AF_UNIX, 0, buf[body + 2], 0, 0, uid, path)
        except OSError:
            self.unix = False  # no unix_diag module: inet events still work

    def snapshot(self, before: dict[int, Sock] | None = None, *, full: bool = True) -> dict[int, Sock]:
        """Every socket worth watching. ``full=False`` dumps only TCP listeners and keeps the
        other TCP sockets of ``before``: the kernel walks its whole connection hash for a
        full TCP dump (~1 ms per family here, even when nearly empty) but only the small
        listener hash for LISTEN, so new listeners are seen every poll at a fifth of the cost."""
        out: dict[int, Sock] = {}
        before = before or {}
        for family in (AF_INET, AF_INET6):
            self.inet(family, IPPROTO_TCP, _TCP_STATES if full else 1 << LISTEN, out, before)
            self.inet(family, IPPROTO_UDP, _UDP_STATES, out, before)
        if not full:
            for inode, s in before.items():
                if s.protocol == IPPROTO_TCP and s.state != LISTEN and s.family != AF_UNIX:
                    out.setdefault(inode, s)
        self.unix_listeners(out)
        return out


def _unix_attrs(buf: bytes | bytearray, start: int, end: int) -> tuple[str | None, int | None]:
    path = uid = None
    while start + 4 <= end:
        length, kind = _RTA.unpack_from(buf, start)
        if length < 4:
            break
        value = buf[start + 4 : start + length]
        if kind == _UNIX_DIAG_NAME and value:
            path = "@" + decode(value[1:]) if value[0] == 0 else decode(value.split(b"\0", 1)[0])
        elif kind == _UNIX_DIAG_UID and len(value) >= 4:
            uid = struct.unpack_from("=I", value)[0]
        start += (length + 3) & ~3
    return path, uid


def proc_snapshot(before: dict[int, Sock] | None = None) -> dict[int, Sock]:
    """The same snapshot from /proc/net (no sock_diag): slower, and without uids."""
    out: dict[int, Sock] = {}
    for name, family, protocol in INET_FILES:
        if protocol not in (IPPROTO_TCP, IPPROTO_UDP):
            continue
        data = procfs.read_or_none(f"/proc/net/{name}")
        for s in parse_inet(data or b"", family, protocol):
            if s.inode:
                state = TCP_STATES.index(s.state) if s.state else (ESTABLISHED if s.remote_port else TCP_CLOSE)
                addrs = socket.inet_pton(family, s.local_address or "::") + socket.inet_pton(
                    family, s.remote_address or "::"
                )
                if family == AF_INET:
                    addrs = addrs[:4] + bytes(12) + addrs[4:] + bytes(12)
                out[s.inode] = Sock(family, protocol, state, s.local_port, s.remote_port, None, addrs)
    return out
