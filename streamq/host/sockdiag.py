"""Socket tables of one network namespace, decoded from /proc/<pid>/net/*.

Pure parsers over the bytes of /proc/net/{tcp,udp,udplite,raw,icmp}[6] and
/proc/net/unix. They cost about 1-2 us a socket, several times less than
pyroute2's sock_diag decoding, and unlike sock_diag they can read any
namespace through /proc/<pid>/net without setns().

The kernel prints addresses as the hex of the in-memory words: one
little-endian u32 for IPv4, four for IPv6, so each 4-byte group is reversed
before inet_ntop. Many sockets share an address, so decoded addresses are
memoised.
"""

from __future__ import annotations

import socket
import struct
from functools import lru_cache
from typing import NamedTuple

from ..text import decode
from . import procfs

AF_UNIX, AF_INET, AF_INET6 = 1, 2, 10
IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMPV6, IPPROTO_UDPLITE, IPPROTO_RAW = 1, 6, 17, 58, 136, 255

# /proc/net file -> (family, protocol). osquery reads the same files.
INET_FILES = (
    ("tcp", AF_INET, IPPROTO_TCP),
    ("tcp6", AF_INET6, IPPROTO_TCP),
    ("udp", AF_INET, IPPROTO_UDP),
    ("udp6", AF_INET6, IPPROTO_UDP),
    ("udplite", AF_INET, IPPROTO_UDPLITE),
    ("udplite6", AF_INET6, IPPROTO_UDPLITE),
    ("raw", AF_INET, IPPROTO_RAW),
    ("raw6", AF_INET6, IPPROTO_RAW),
    ("icmp", AF_INET, IPPROTO_ICMP),
    ("icmp6", AF_INET6, IPPROTO_ICMPV6),
)

# include/net/tcp_states.h, index = the st column of /proc/net/tcp.
TCP_STATES = (
    None,
    "ESTABLISHED",
    "SYN_SENT",
    "SYN_RECV",
    "FIN_WAIT1",
    "FIN_WAIT2",
    "TIME_WAIT",
    "CLOSE",
    "CLOSE_WAIT",
    "LAST_ACK",
    "LISTEN",
    "CLOSING",
    "NEW_SYN_RECV",
)
_TCP_LISTEN = b"0A"

# /proc/net/unix: Flags has __SO_ACCEPTCON for listening sockets; St is SS_* (socket.h).
_UNIX_ACCEPTCON = 0x10000
_SS_CONNECTED = 3
SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET = 1, 2, 5


class InetSocket(NamedTuple):
    inode: int
    family: int
    protocol: int
    local_address: str | None
    local_port: int
    remote_address: str | None
    remote_port: int
    state: str | None


class UnixSocket(NamedTuple):
    inode: int
    type: int
    state: str
    path: str | None

    @property
    def listening(self) -> bool:
        """Accepting connections (stream/seqpacket) or bound to a path for datagrams."""
        return self.state == "LISTEN" or (self.type == SOCK_DGRAM and self.path is not None)


@lru_cache(maxsize=4096)
def decode_address(hexaddr: bytes) -> str | None:
    """'0100007F' -> '127.0.0.1'; 32 hex digits -> IPv6 text ('::', 'fe80::1')."""
    try:
        raw = bytes.fromhex(hexaddr.decode())
    except ValueError:
        return None
    if len(raw) == 4:
        return socket.inet_ntop(socket.AF_INET, raw[::-1])
    if len(raw) == 16:
        words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
        return socket.inet_ntop(socket.AF_INET6, words)
    return None


def parse_inet(data: bytes, family: int, protocol: int, *, listening: bool = False) -> list[InetSocket]:
    """Rows of a /proc/net/{tcp,udp,raw,...}[6] file.

    ``listening``: keep only TCP sockets in LISTEN and other sockets that are bound
    to a port and not connected; the test runs on the raw fields, before decoding.
    """
    out = []
    is_tcp = protocol == IPPROTO_TCP
    for line in data.split(b"\n")[1:]:
        f = line.split()
        if len(f) < 10:
            continue
        local, remote, st = f[1], f[2], f[3]
        if listening:
            if is_tcp:
                if st != _TCP_LISTEN:
                    continue
            elif local.endswith(b":0000") or not remote.endswith(b":0000"):
                continue
        lhost, _, lport = local.partition(b":")
        rhost, _, rport = remote.partition(b":")
        try:
            state = TCP_STATES[int(st, 16)] if is_tcp else None
            out.append(
                InetSocket(
                    int(f[9]),
                    family,
                    protocol,
                    decode_address(lhost),
                    int(lport, 16),
                    decode_address(rhost),
                    int(rport, 16),
                    state,
                )
            )
        except (ValueError, IndexError):
            continue  # a malformed line: skip it, keep the table
    return out


def parse_unix(data: bytes, *, listening: bool = False) -> list[UnixSocket]:
    """Rows of /proc/net/unix. Abstract names start with '@' (the kernel's notation)."""
    out = []
    for line in data.split(b"\n")[1:]:
        f = line.split(None, 7)
        if len(f) < 7:
            continue
        try:
            flags, kind, st, inode = int(f[3], 16), int(f[4], 16), int(f[5], 16), int(f[6])
        except ValueError:
            continue
        if flags & _UNIX_ACCEPTCON:
            state = "LISTEN"
        elif st == _SS_CONNECTED:
            state = "CONNECTED"
        else:
            state = "UNCONNECTED"
        sock = UnixSocket(inode, kind, state, decode(f[7]) if len(f) > 7 else None)
        if not listening or sock.listening:
            out.append(sock)
    return out


# sock_diag (linux/inet_diag.h): one request per (family, protocol), the kernel filters states.
NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST_DUMP = 0x301
_NLMSG_ERROR, _NLMSG_DONE = 2, 3
NLMSG_HDR = struct.Struct("=IHHII")
INET_DIAG_REQ = struct.Struct("=BBBBI48x")  # inet_diag_req_v2 with a zero inet_diag_sockid
# nlmsghdr (length, type; flags, seq, pid skipped) + inet_diag_msg (family, state, ports, addresses, inode).
_DIAG_MSG = struct.Struct("=I12xBB6x16s16s28xI")
_DIAG_PORTS = struct.Struct(">HH")  # network byte order, unlike the rest
ALL_STATES = 0xFFF
LISTEN_STATES = 1 << 10
UDP_BOUND_STATES = 1 << 7  # an unconnected UDP socket is TCP_CLOSE to sock_diag


def _raw_address(family: int, raw: bytes) -> str:
    return socket.inet_ntop(family, raw if family == AF_INET6 else raw[:4])


def diag_inet(family: int, protocol: int, states: int = ALL_STATES) -> list[InetSocket]:
    """The sockets of this process's network namespace, by sock_diag netlink.

    Several times faster than /proc/net/tcp once there are many sockets, because the
    kernel filters by state and the records are fixed-size structs. OSError when
    sock_diag is unavailable; callers fall back to :func:`parse_inet`.
    """
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_SOCK_DIAG)
    try:
        req = INET_DIAG_REQ.pack(family, protocol, 0, 0, states)
        sock.send(NLMSG_HDR.pack(NLMSG_HDR.size + len(req), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST_DUMP, 1, 0) + req)
        return _read_diag(sock, protocol)
    finally:
        sock.close()


def _read_diag(sock: socket.socket, protocol: int) -> list[InetSocket]:
    out: list[InetSocket] = []
    states = TCP_STATES if protocol == IPPROTO_TCP else ()
    nstates = len(states)
    unpack, ports = _DIAG_MSG.unpack_from, _DIAG_PORTS.unpack_from
    addresses: dict[bytes, str] = {}  # most sockets share a few addresses
    new = tuple.__new__  # builds the NamedTuple without its Python-level __new__
    while True:
        buf = sock.recv(262144)
        if not buf:
            return out
        off, end = 0, len(buf)
        while off + 16 <= end:
            kind = buf[off + 4]  # nlmsg_type's low byte: 2 error, 3 done, 20 a socket
            if kind == _NLMSG_DONE:
                return out
            if kind == _NLMSG_ERROR:
                errno = -struct.unpack_from("=i", buf, off + 16)[0]
                raise OSError(errno, "sock_diag request failed")
            length, family, state, src, dst, inode = unpack(buf, off)
            sport, dport = ports(buf, off + 20)
            local = addresses.get(src) or addresses.setdefault(src, _raw_address(family, src))
            remote = addresses.get(dst) or addresses.setdefault(dst, _raw_address(family, dst))
            row = (inode, family, protocol, local, sport, remote, dport, states[state] if state < nstates else None)
            out.append(new(InetSocket, row))
            off += (length + 3) & ~3


def namespace_inet_sockets(ns_pid: int | str, files, listening: bool) -> list[InetSocket]:
    """Sockets of the namespace ``ns_pid`` lives in ('self': ours, read with sock_diag)."""
    out: list[InetSocket] = []
    for name, family, protocol in files:
        if ns_pid == "self" and protocol in (IPPROTO_TCP, IPPROTO_UDP):
            states = ALL_STATES
            if listening:
                states = LISTEN_STATES if protocol == IPPROTO_TCP else UDP_BOUND_STATES
            try:
                socks = diag_inet(family, protocol, states)
            except OSError:
                pass  # no sock_diag (old kernel, seccomp): read the /proc file instead
            else:
                if listening and protocol == IPPROTO_UDP:
                    socks = [s for s in socks if s.local_port and not s.remote_port]
                out.extend(socks)
                continue
        data = procfs.read_or_none(f"/proc/{ns_pid}/net/{name}")
        if data:
            out.extend(parse_inet(data, family, protocol, listening=listening))
    return out


def namespace_unix_sockets(ns_pid: int | str, listening: bool) -> list[UnixSocket]:
    """Unix sockets of the network namespace ``ns_pid`` lives in ('self': ours)."""
    data = procfs.read_or_none(f"/proc/{ns_pid}/net/unix")
    return parse_unix(data, listening=listening) if data else []
