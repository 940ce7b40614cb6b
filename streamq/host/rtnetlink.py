"""A small rtnetlink dump reader: links, addresses, routes and neighbours as structs.

One request with NLM_F_DUMP, then fixed-size headers (ifinfomsg, ifaddrmsg,
rtmsg, ndmsg) followed by type-length-value attributes. Decoding the few
attributes the tables need with ``struct`` keeps a dump under a millisecond
and avoids importing pyroute2 (~150 ms) for a handful of rows.
"""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Iterator

RTM_GETLINK, RTM_GETADDR, RTM_GETROUTE, RTM_GETNEIGH = 18, 22, 26, 30
_NLM_F_REQUEST_DUMP = 0x301
_NLMSG_ERROR, _NLMSG_DONE = 2, 3
NLMSG_HDR = struct.Struct("=IHHII")
_RTA_HDR = struct.Struct("=HH")

# Fixed header after nlmsghdr, per request type: (struct, request payload).
IFINFOMSG = struct.Struct("=BxHiII")  # family, type, index, flags, change
IFADDRMSG = struct.Struct("=BBBBI")  # family, prefixlen, flags, scope, index
RTMSG = struct.Struct("=BBBBBBBBI")  # family, dst_len, src_len, tos, table, protocol, scope, type, flags
NDMSG = struct.Struct("=BxxxiHBB")  # family, ifindex, state, flags, type
_HEADERS = {RTM_GETLINK: IFINFOMSG, RTM_GETADDR: IFADDRMSG, RTM_GETROUTE: RTMSG, RTM_GETNEIGH: NDMSG}


def dump(kind: int, family: int = socket.AF_UNSPEC) -> list[tuple[tuple, dict[int, bytes]]]:
    """Every object of ``kind`` (RTM_GET*): (the fixed header's fields, {attribute type: payload})."""
    header = _HEADERS[kind]
    request = header.pack(family, *([0] * (len(header.unpack(bytes(header.size))) - 1)))
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, socket.NETLINK_ROUTE)
    try:
        sock.send(NLMSG_HDR.pack(NLMSG_HDR.size + len(request), kind, _NLM_F_REQUEST_DUMP, 1, 0) + request)
        return list(_messages(sock, header))
    finally:
        sock.close()


def _messages(sock: socket.socket, header: struct.Struct) -> Iterator[tuple[tuple, dict[int, bytes]]]:
    while True:
        buf = sock.recv(262144)
        if not buf:
            return
        off = 0
        while off + 16 <= len(buf):
            length, kind = NLMSG_HDR.unpack_from(buf, off)[:2]
            if kind == _NLMSG_DONE:
                return
            if kind == _NLMSG_ERROR:
                errno = -struct.unpack_from("=i", buf, off + 16)[0]
                if errno:
                    raise OSError(errno, os.strerror(errno))
            else:
                body = off + 16
                fields = header.unpack_from(buf, body)
                yield fields, attributes(buf, body + ((header.size + 3) & ~3), off + length)
            off += (length + 3) & ~3


def attributes(buf: bytes, start: int, end: int) -> dict[int, bytes]:
    """rtattr type -> payload; nested attributes stay bytes for a second call."""
    attrs = {}
    while start + 4 <= end:
        length, kind = _RTA_HDR.unpack_from(buf, start)
        if length < 4:
            break
        attrs[kind & 0x3FFF] = buf[start + 4 : start + length]  # drop NLA_F_NESTED / NET_BYTEORDER
        start += (length + 3) & ~3
    return attrs


def u32(data: bytes | None) -> int | None:
    return struct.unpack("=I", data[:4])[0] if data and len(data) >= 4 else None


def cstr(data: bytes | None) -> str | None:
    if data is None:
        return None
    return data.split(b"\0", 1)[0].decode("utf-8", "backslashreplace")


def mac(data: bytes | None) -> str | None:
    return ":".join(f"{b:02x}" for b in data) if data else None


def link_names() -> dict[int, str]:
    """ifindex -> interface name."""
    names = {}
    for fields, attrs in dump(RTM_GETLINK):
        name = cstr(attrs.get(3))  # IFLA_IFNAME
        if name is not None:
            names[fields[2]] = name
    return names


# Address families whose addresses the helpers below decode: family -> address size in bytes.
ADDRESS_SIZES = {socket.AF_INET: 4, socket.AF_INET6: 16}


def ip_text(family: int, data: bytes | None) -> str | None:
    """An IPv4 or IPv6 address attribute as text; None for other families or a short payload."""
    size = ADDRESS_SIZES.get(family)
    if not data or not size or len(data) < size:
        return None
    return socket.inet_ntop(family, data[:size])


def netmask(family: int, prefixlen: int) -> str | None:
    """A prefix length as a netmask: 24 -> 255.255.255.0, 64 -> ffff:ffff:ffff:ffff::;
    None for a family other than IPv4/IPv6 or a prefix longer than the address."""
    size = ADDRESS_SIZES.get(family)
    if not size or not 0 <= prefixlen <= size * 8:
        return None
    bits = size * 8
    value = ((1 << bits) - 1) ^ ((1 << (bits - prefixlen)) - 1)
    return socket.inet_ntop(family, value.to_bytes(size, "big"))


def u64s(data: bytes, count: int) -> tuple[int, ...]:
    """The first ``count`` native 64-bit counters of a stats attribute (rtnl_link_stats64)."""
    return struct.unpack_from(f"={count}Q", data)
