"""network_events from rtnetlink: links, addresses and routes as they change.

A raw NETLINK_ROUTE socket joins the link, address and route multicast groups
(readable without privileges) and is read from the event loop; messages are
decoded with ``struct`` by :mod:`streamq.host.rtnetlink`'s helpers. pyroute2's
AsyncIPRoute would do the same after a ~150 ms import and with ~10x the
decoding cost per message, for the handful of attributes used here.

The kernel sends RTM_NEWLINK for any attribute change and RTM_NEWADDR for
address flag or lifetime updates, so links and addresses are tracked: a row is
appended only when a link appears, goes, or crosses up/down, and when an
address appears or goes. "Up" means administratively up and running
(IFF_UP and IFF_RUNNING), so a lost carrier is a link_down too. ENOBUFS (the
socket buffer overflowed: the kernel dropped messages) is counted in
status.overflows and answered with a dump whose differences become rows.
Routes are not tracked (there can be a million); the kernel-made local,
broadcast and multicast routes and cloned cache entries are left out.
"""

from __future__ import annotations

import socket
import struct

from ..host import rtnetlink
from ..host.rtnetlink import IFADDRMSG, IFINFOMSG, NLMSG_HDR, RTMSG, cstr
from .base import Source, SourceUnavailable
from .netlink import open_netlink, serve_socket

RTMGRP_LINK, RTMGRP_IPV4_IFADDR, RTMGRP_IPV4_ROUTE = 0x1, 0x10, 0x40
RTMGRP_IPV6_IFADDR, RTMGRP_IPV6_ROUTE = 0x100, 0x400
GROUPS = RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR | RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_ROUTE

RTM_NEWLINK, RTM_DELLINK, RTM_NEWADDR, RTM_DELADDR, RTM_NEWROUTE, RTM_DELROUTE = 16, 17, 20, 21, 24, 25
IFLA_IFNAME = 3
IFA_ADDRESS, IFA_LOCAL = 1, 2
RTA_DST, RTA_OIF, RTA_GATEWAY = 1, 4, 5
IFF_UP, IFF_RUNNING = 0x1, 0x40
RTN_UNICAST, RTN_BLACKHOLE, RTN_UNREACHABLE, RTN_PROHIBIT = 1, 6, 7, 8
_REPORTED_ROUTES = (RTN_UNICAST, RTN_BLACKHOLE, RTN_UNREACHABLE, RTN_PROHIBIT)
RTM_F_CLONED = 0x200
_RCVBUF = 4 * 1024 * 1024

Link = tuple[str | None, bool]  # name, up
AddrKey = tuple[int, int, str, int]  # ifindex, family, address, prefix length


def parse_link(buf: bytes, start: int, end: int) -> tuple[int, str | None, bool]:
    """(ifindex, name, up) of an ifinfomsg at ``start``."""
    _family, _type, index, flags, _change = IFINFOMSG.unpack_from(buf, start)
    attrs = rtnetlink.attributes(buf, start + IFINFOMSG.size, end)
    up = flags & (IFF_UP | IFF_RUNNING) == (IFF_UP | IFF_RUNNING)
    return index, cstr(attrs.get(IFLA_IFNAME)), up


def parse_addr(buf: bytes, start: int, end: int) -> tuple[AddrKey, int] | None:
    """((ifindex, family, address, prefixlen), scope) of an ifaddrmsg."""
    family, prefixlen, _flags, scope, index = IFADDRMSG.unpack_from(buf, start)
    attrs = rtnetlink.attributes(buf, start + IFADDRMSG.size, end)
    # IPv4 point-to-point links put the peer in IFA_ADDRESS and our own address in IFA_LOCAL.
    address = rtnetlink.ip_text(family, attrs.get(IFA_LOCAL) or attrs.get(IFA_ADDRESS))
    if address is None:
        return None
    return (index, family, address, prefixlen), scope


def parse_route(buf: bytes, start: int, end: int) -> dict | None:
    """Row fields of an rtmsg, or None for a route that is not reported."""
    family, dst_len, _src_len, _tos, _table, _proto, _scope, kind, flags = RTMSG.unpack_from(buf, start)
    if kind not in _REPORTED_ROUTES or flags & RTM_F_CLONED:
        return None
    attrs = rtnetlink.attributes(buf, start + RTMSG.size, end)
    dst = rtnetlink.ip_text(family, attrs.get(RTA_DST))
    if dst is None:
        dst = "0.0.0.0" if family == socket.AF_INET else "::"
    oif = attrs.get(RTA_OIF)
    return {
        "family": family,
        "destination": dst,
        "mask": rtnetlink.netmask(family, dst_len),
        "gateway": rtnetlink.ip_text(family, attrs.get(RTA_GATEWAY)),
        "ifindex": struct.unpack("=i", oif[:4])[0] if oif and len(oif) >= 4 else None,
    }


class NetworkState:
    """Links and addresses as last seen; turns kernel messages into rows."""

    def __init__(self) -> None:
        self.links: dict[int, Link] = {}
        self.addrs: set[AddrKey] = set()

    def name(self, index: int | None) -> str | None:
        link = self.links.get(index) if index is not None else None
        return link[0] if link else None

    def link(self, index: int, name: str | None, up: bool, removed: bool = False) -> list[dict]:
        before = self.links.get(index)
        if removed:
            if before is None:
                return []
            del self.links[index]
            self.addrs = {a for a in self.addrs if a[0] != index}
            return [{"action": "link_removed", "interface": name or before[0], "family": 0}]
        self.links[index] = (name or (before and before[0]), up)
        rows = []
        if before is None:
            rows.append({"action": "link_added", "interface": name, "family": 0})
            if up:
                rows.append({"action": "link_up", "interface": name, "family": 0})
        elif before[1] != up:
            rows.append({"action": "link_up" if up else "link_down", "interface": name or before[0], "family": 0})
        return rows

    def address(self, key: AddrKey, removed: bool = False) -> list[dict]:
        if removed:
            if key not in self.addrs:
                return []
            self.addrs.discard(key)
        else:
            if key in self.addrs:
                return []  # a flags or lifetime update of a known address
            self.addrs.add(key)
        index, family, address, prefixlen = key
        return [
            {
                "action": "address_removed" if removed else "address_added",
                "interface": self.name(index),
                "address": address,
                "mask": rtnetlink.netmask(family, prefixlen),
                "family": family,
            }
        ]

    def handle(self, data: bytes) -> list[dict]:
        """Every row a datagram of rtnetlink messages makes."""
        rows: list[dict] = []
        off = 0
        while off + NLMSG_HDR.size <= len(data):
            length, kind = NLMSG_HDR.unpack_from(data, off)[:2]
            if length < NLMSG_HDR.size:
                break
            start, end = off + NLMSG_HDR.size, off + length
            try:
                if kind in (RTM_NEWLINK, RTM_DELLINK):
                    index, name, up = parse_link(data, start, end)
                    rows += self.link(index, name, up, removed=kind == RTM_DELLINK)
                elif kind in (RTM_NEWADDR, RTM_DELADDR):
                    found = parse_addr(data, start, end)
                    if found is not None:
                        rows += self.address(found[0], removed=kind == RTM_DELADDR)
                elif kind in (RTM_NEWROUTE, RTM_DELROUTE):
                    route = parse_route(data, start, end)
                    if route is not None:
                        route["action"] = "route_added" if kind == RTM_NEWROUTE else "route_removed"
                        route["interface"] = self.name(route.pop("ifindex"))
                        rows.append(route)
            except struct.error:
                pass  # a truncated message: nothing to report from it
            off += (length + 3) & ~3
        return rows

    def sync(self) -> list[dict]:
        """Dump links and addresses; return the rows for what differs from the tracked state."""
        links = {}
        for fields, attrs in rtnetlink.dump(rtnetlink.RTM_GETLINK):
            flags = fields[3]
            links[fields[2]] = (cstr(attrs.get(IFLA_IFNAME)), flags & (IFF_UP | IFF_RUNNING) == (IFF_UP | IFF_RUNNING))
        rows = []
        for index in list(self.links.keys() - links.keys()):
            rows += self.link(index, None, False, removed=True)
        for index, (name, up) in links.items():
            rows += self.link(index, name, up)
        addrs = set()
        for (family, prefixlen, _f, _s, index), attrs in rtnetlink.dump(rtnetlink.RTM_GETADDR):
            address = rtnetlink.ip_text(family, attrs.get(IFA_LOCAL) or attrs.get(IFA_ADDRESS))
            if address is not None:
                addrs.add((index, family, address, prefixlen))
        for key in self.addrs - addrs:
            rows += self.address(key, removed=True)
        for key in addrs - self.addrs:
            rows += self.address(key)
        return rows


def open_socket() -> socket.socket:
    return open_netlink(
        socket.NETLINK_ROUTE,
        GROUPS,
        label="rtnetlink",
        what="join the link/address/route groups",
        rcvbuf=_RCVBUF,
        raw=True,
    )


class NetworkSource(Source):
    name = "network"
    kind = "netlink"

    async def run(self) -> None:
        sock = open_socket()  # subscribe before the dump: a change in between shows up in one or the other
        self.state = NetworkState()
        try:
            self.state.sync()  # the starting state: no rows
        except OSError as err:
            sock.close()
            raise SourceUnavailable(f"rtnetlink: cannot dump links and addresses: {err.strerror}") from err
        self.status.mode = "netlink"
        await serve_socket(sock, self._handle, self.status, resync=self._resync)

    def _handle(self, data: bytes, sender: int) -> None:
        for row in self.state.handle(data):
            self.ring.append(row)

    def _resync(self) -> None:
        """Messages were lost in the kernel: a dump's differences become rows."""
        for row in self.state.sync():
            self.ring.append(row)
