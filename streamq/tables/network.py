"""Network configuration tables: interfaces, addresses, routes, the ARP cache and iptables.

Interfaces, addresses and routes come from one rtnetlink dump each (see
:mod:`streamq.host.rtnetlink`); per-interface extras from /sys/class/net and the
ARP cache from /proc/net/arp (:mod:`streamq.host.netdev`); iptables from the
kernel's x_tables (:mod:`streamq.host.iptc`). The /etc files are in tables.etcfiles.
"""

from __future__ import annotations

import socket

from ..host import procfs
from ..sql.schema import BIGINT, INTEGER, TEXT, Column, table
from ._common import lazy_module

iptc = lazy_module("streamq.host.iptc")
netdev = lazy_module("streamq.host.netdev")
rtnetlink = lazy_module("streamq.host.rtnetlink")


# ---------------------------------------------------------------- interface_addresses

_IFA_ADDRESS, _IFA_LOCAL, _IFA_LABEL, _IFA_BROADCAST, _IFA_FLAGS = 1, 2, 3, 4, 8
_IFA_F_PERMANENT = 0x80
_RT_SCOPE_HOST, _RT_SCOPE_LINK = 254, 253


def _address_type(family: int, scope: int, flags: int) -> str:
    """How the address was configured, as far as the kernel's flags tell."""
    if scope == _RT_SCOPE_HOST:
        return "other"  # loopback
    if family == socket.AF_INET6 and (scope == _RT_SCOPE_LINK or not flags & _IFA_F_PERMANENT):
        return "auto"  # link-local or SLAAC
    if not flags & _IFA_F_PERMANENT:
        return "dhcp"  # has a lease lifetime
    return "manual"


@table(
    "interface_addresses",
    "IPv4 and IPv6 addresses assigned to network interfaces.",
    [
        Column("interface", TEXT, "Interface name (the address label for IPv4 aliases such as eth0:1)."),
        Column("address", TEXT, "The address; IPv6 link-local addresses carry a %interface suffix."),
        Column("mask", TEXT, "Netmask, e.g. 255.255.255.0 or ffff:ffff:ffff:ffff::."),
        Column("broadcast", TEXT, "Broadcast address, if the interface has one."),
        Column("point_to_point", TEXT, "Peer address on a point-to-point link."),
        Column("type", TEXT, "How the address was configured: manual, dhcp, auto (SLAAC, link-local) or other."),
    ],
    examples=("SELECT interface, address, mask FROM interface_addresses",),
    cost=20,
)
def gen_interface_addresses(ctx):
    names = rtnetlink.link_names()
    for (family, prefixlen, flags, scope, index), attrs in rtnetlink.dump(rtnetlink.RTM_GETADDR):
        if family not in rtnetlink.ADDRESS_SIZES:
            continue
        name = names.get(index)
        if family == socket.AF_INET and _IFA_LABEL in attrs:
            name = rtnetlink.cstr(attrs[_IFA_LABEL])
        local = attrs.get(_IFA_LOCAL)
        peer = attrs.get(_IFA_ADDRESS)
        address = rtnetlink.ip_text(family, local or peer)
        if address is None:
            continue
        if family == socket.AF_INET6 and scope == _RT_SCOPE_LINK and names.get(index):
            address = f"{address}%{names[index]}"
        broadcast = rtnetlink.ip_text(family, attrs.get(_IFA_BROADCAST))
        ptp = None
        if local is not None and peer is not None and local != peer:
            ptp = rtnetlink.ip_text(family, peer)
        full_flags = rtnetlink.u32(attrs.get(_IFA_FLAGS))
        yield {
            "interface": name,
            "address": address,
            "mask": rtnetlink.netmask(family, prefixlen),
            "broadcast": broadcast,
            "point_to_point": ptp,
            "type": _address_type(family, scope, full_flags if full_flags is not None else flags),
        }


# ---------------------------------------------------------------- interface_details

_IFLA_ADDRESS, _IFLA_IFNAME, _IFLA_MTU, _IFLA_STATS64 = 1, 3, 4, 23
# struct rtnl_link_stats64 field order -> column (only the columns osquery has).
_STATS64 = ("ipackets", "opackets", "ibytes", "obytes", "ierrors", "oerrors", "idrops", "odrops", None, "collisions")


@table(
    "interface_details",
    "Network interfaces with their hardware address, flags and traffic counters.",
    [
        Column("interface", TEXT, "Interface name."),
        Column("mac", TEXT, "Hardware (MAC) address."),
        Column("type", INTEGER, "Link type as an ARPHRD number (1 Ethernet, 772 loopback...)."),
        Column("mtu", INTEGER, "Maximum transmission unit in bytes."),
        Column("metric", INTEGER, "Routing metric of the interface; always 0 on Linux."),
        Column("flags", INTEGER, "IFF_* flags as the kernel reports them (UP, RUNNING, LOWER_UP...)."),
        Column("ipackets", BIGINT, "Packets received."),
        Column("opackets", BIGINT, "Packets sent."),
        Column("ibytes", BIGINT, "Bytes received."),
        Column("obytes", BIGINT, "Bytes sent."),
        Column("ierrors", BIGINT, "Receive errors."),
        Column("oerrors", BIGINT, "Transmit errors."),
        Column("idrops", BIGINT, "Received packets dropped."),
        Column("odrops", BIGINT, "Packets dropped on transmit."),
        Column("collisions", BIGINT, "Collisions seen on the medium."),
        Column("last_change", BIGINT, "Time of the last link change; Linux does not record it, so -1, as osquery."),
        Column("link_speed", BIGINT, "Link speed in Mb/s, when the driver reports one."),
        Column("pci_slot", TEXT, "PCI slot of the network device, for PCI devices."),
    ],
    examples=("SELECT interface, mac, mtu, ibytes, obytes FROM interface_details",),
    cost=20,
)
def gen_interface_details(ctx):
    want_sys = ctx.used("link_speed") or ctx.used("pci_slot")
    for (_family, kind, _index, flags, _change), attrs in rtnetlink.dump(rtnetlink.RTM_GETLINK):
        name = rtnetlink.cstr(attrs.get(_IFLA_IFNAME))
        row = {
            "interface": name,
            "mac": rtnetlink.mac(attrs.get(_IFLA_ADDRESS)),
            "type": kind,
            "mtu": rtnetlink.u32(attrs.get(_IFLA_MTU)),
            "metric": 0,
            "flags": flags,
            "last_change": -1,
        }
        stats = attrs.get(_IFLA_STATS64)
        if stats and len(stats) >= 80:
            values = rtnetlink.u64s(stats, 10)
            for column, value in zip(_STATS64, values):
                if column:
                    row[column] = value
        if want_sys and name and "/" not in name:
            row["link_speed"] = netdev.link_speed(name)
            row["pci_slot"] = netdev.pci_slot(name)
        yield row


# ---------------------------------------------------------------- routes

_RTA_DST, _RTA_OIF, _RTA_GATEWAY, _RTA_PRIORITY, _RTA_PREFSRC, _RTA_METRICS, _RTA_VIA = 1, 4, 5, 6, 7, 8, 18
_RTAX_MTU, _RTAX_HOPLIMIT = 2, 10
_ROUTE_TYPES = {1: "gateway", 2: "local", 3: "broadcast", 4: "anycast"}


@table(
    "routes",
    "Routes of every kernel routing table (main, local and others), IPv4 and IPv6.",
    [
        Column("destination", TEXT, "Destination network address (0.0.0.0 or :: for a default route)."),
        Column("netmask", INTEGER, "Destination prefix length in bits."),
        Column("gateway", TEXT, "Next-hop gateway address, if the route has one."),
        Column("source", TEXT, "Preferred source address for traffic on this route."),
        Column("flags", INTEGER, "RTM_F_* / RTNH_F_* flags of the route."),
        Column("interface", TEXT, "Outgoing interface."),
        Column("mtu", INTEGER, "Path MTU set on the route; 0 when it sets none."),
        Column("metric", INTEGER, "Route priority (lower wins)."),
        Column("type", TEXT, "Route type: gateway (unicast), local, broadcast, anycast or other.", additional=True),
        Column("hopcount", INTEGER, "Hop limit set on the route; 0 when it sets none."),
    ],
    examples=("SELECT destination, netmask, gateway, interface FROM routes WHERE type = 'gateway'",),
    cost=50,
)
def gen_routes(ctx):
    wanted_types = ctx.eq("type")
    names = rtnetlink.link_names()
    for fields, attrs in rtnetlink.dump(rtnetlink.RTM_GETROUTE):
        family, dst_len, _src_len, _tos, _table, _proto, _scope, rtype, flags = fields
        if family not in rtnetlink.ADDRESS_SIZES:
            continue
        kind = _ROUTE_TYPES.get(rtype, "other")
        if wanted_types is not None and kind not in wanted_types:
            continue
        metrics = (
            rtnetlink.attributes(attrs[_RTA_METRICS], 0, len(attrs[_RTA_METRICS])) if _RTA_METRICS in attrs else {}
        )
        oif = rtnetlink.u32(attrs.get(_RTA_OIF))
        yield {
            "destination": rtnetlink.ip_text(family, attrs.get(_RTA_DST))
            or ("0.0.0.0" if family == socket.AF_INET else "::"),
            "netmask": dst_len,
            "gateway": rtnetlink.ip_text(family, attrs.get(_RTA_GATEWAY)),
            "source": rtnetlink.ip_text(family, attrs.get(_RTA_PREFSRC)),
            "flags": flags,
            "interface": names.get(oif) if oif is not None else None,
            "mtu": rtnetlink.u32(metrics.get(_RTAX_MTU)) or 0,  # 0 when the route sets none, as osquery
            "metric": rtnetlink.u32(attrs.get(_RTA_PRIORITY)) or 0,
            "type": kind,
            "hopcount": rtnetlink.u32(metrics.get(_RTAX_HOPLIMIT)) or 0,
        }


# ---------------------------------------------------------------- arp_cache


@table(
    "arp_cache",
    "The kernel's IPv4 neighbour (ARP) cache.",
    [
        Column("address", TEXT, "IPv4 address of the neighbour."),
        Column("mac", TEXT, "Its hardware address (00:00:00:00:00:00 while unresolved)."),
        Column("interface", TEXT, "Interface the neighbour is reached through."),
        Column("permanent", TEXT, "1 for a static (permanent) entry, 0 for a learned one."),
    ],
    examples=("SELECT address, mac, interface FROM arp_cache",),
    cost=20,
)
def gen_arp_cache(ctx):
    data = procfs.read_or_none(netdev.ARP)
    if data:
        yield from netdev.parse_arp(data)


# ---------------------------------------------------------------- iptables


@table(
    "iptables",
    "IPv4 iptables (legacy x_tables) rules, one row per chain and one per rule, read from the kernel.",
    [
        Column("filter_name", TEXT, "Table: filter, nat, mangle, raw or security."),
        Column("chain", TEXT, "Chain name."),
        Column("policy", TEXT, "Default policy of a built-in chain (ACCEPT, DROP); NULL for user chains."),
        Column("target", TEXT, "Where a matching packet goes: a verdict, a user chain or an extension target."),
        Column("protocol", INTEGER, "IP protocol the rule matches, 0 for any."),
        Column("src_port", TEXT, "Source port range of a tcp/udp match, as first:last."),
        Column("dst_port", TEXT, "Destination port range of a tcp/udp match, as first:last."),
        Column("src_ip", TEXT, "Source address matched."),
        Column("src_mask", TEXT, "Source address mask."),
        Column("iniface", TEXT, "Input interface matched, or all."),
        Column("iniface_mask", TEXT, "Input interface mask in hex, as iptables stores it."),
        Column("dst_ip", TEXT, "Destination address matched."),
        Column("dst_mask", TEXT, "Destination address mask."),
        Column("outiface", TEXT, "Output interface matched, or all."),
        Column("outiface_mask", TEXT, "Output interface mask in hex, as iptables stores it."),
        Column("match", TEXT, "yes if the rule has match extensions (-m ...), else no."),
        Column("packets", INTEGER, "Packets counted by the rule, or by the chain's policy on a chain row."),
        Column("bytes", INTEGER, "Bytes counted by the rule, or by the chain's policy on a chain row."),
    ],
    examples=("SELECT filter_name, chain, policy, target FROM iptables",),
    cost=50,
)
def gen_iptables(ctx):
    # Only tables that already exist: asking the kernel for another would create it.
    names = procfs.read_or_none("/proc/net/ip_tables_names")
    for name in (names or b"").decode(errors="replace").split():
        try:
            chains, rules = iptc.read_table(name)
        except OSError:
            continue  # needs CAP_NET_ADMIN, or the table went away
        by_chain: dict[str, list[iptc.Rule]] = {}
        for r in rules:
            by_chain.setdefault(r.chain, []).append(r)
        for c in chains:
            yield {"filter_name": name, "chain": c.name, "policy": c.policy, "packets": c.packets, "bytes": c.bytes}
            for r in by_chain.get(c.name, ()):
                yield _rule_row(name, c.policy, r)


def _rule_row(name: str, policy: str | None, r: iptc.Rule) -> dict:
    return {
        "filter_name": name,
        "chain": r.chain,
        "policy": policy,
        "target": r.target,
        "protocol": r.protocol,
        "src_port": r.src_port,
        "dst_port": r.dst_port,
        "src_ip": r.src_ip,
        "src_mask": r.src_mask,
        "iniface": r.iniface,
        "iniface_mask": r.iniface_mask,
        "dst_ip": r.dst_ip,
        "dst_mask": r.dst_mask,
        "outiface": r.outiface,
        "outiface_mask": r.outiface_mask,
        "match": "yes" if r.has_matches else "no",
        "packets": r.packets,
        "bytes": r.bytes,
    }
