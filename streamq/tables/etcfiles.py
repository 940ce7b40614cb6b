"""Name service files: /etc/hosts, /etc/services, /etc/protocols and /etc/resolv.conf.

The parsers are in :mod:`streamq.host.etcfiles`. etc_hosts and dns_resolvers
read the files as a process sees them with ``pid_with_namespace``.
"""

from __future__ import annotations

import socket

from ..host import procfs
from ..sql.schema import BIGINT, INTEGER, TEXT, Column, table
from ._common import PID_WITH_NAMESPACE, lazy_module, namespaces

etcfiles = lazy_module("streamq.host.etcfiles")


@table(
    "etc_hosts",
    "Static host name entries from /etc/hosts.",
    [
        Column("address", TEXT, "IP address of the entry."),
        Column("hostnames", TEXT, "Host names and aliases for the address, space separated."),
        PID_WITH_NAMESPACE,
    ],
    examples=("SELECT address, hostnames FROM etc_hosts",),
    cost=20,
)
def gen_etc_hosts(ctx):
    for ns in namespaces(ctx):
        data = procfs.read_or_none(f"{ns.root}/etc/hosts")
        for row in etcfiles.parse_hosts(data) if data is not None else ():
            row["pid_with_namespace"] = ns.pid
            yield row


@table(
    "etc_services",
    "Network service names and ports from /etc/services.",
    [
        Column("name", TEXT, "Service name."),
        Column("port", INTEGER, "Port number."),
        Column("protocol", TEXT, "Transport protocol (tcp, udp, sctp...)."),
        Column("aliases", TEXT, "Other names of the service, space separated."),
        Column("comment", TEXT, "Comment written on the entry's line."),
    ],
    examples=("SELECT name, port, protocol FROM etc_services WHERE port = 22",),
    cost=500,
)
def gen_etc_services(ctx):
    data = procfs.read_or_none("/etc/services")
    if data:
        yield from etcfiles.parse_services(data)


@table(
    "etc_protocols",
    "IP protocol names and numbers from /etc/protocols.",
    [
        Column("name", TEXT, "Protocol name."),
        Column("number", INTEGER, "IP protocol number."),
        Column("alias", TEXT, "Other names of the protocol, space separated."),
        Column("comment", TEXT, "Comment written on the entry's line."),
    ],
    examples=("SELECT name, number FROM etc_protocols WHERE number IN (6, 17)",),
    cost=150,
)
def gen_etc_protocols(ctx):
    data = procfs.read_or_none("/etc/protocols")
    if data:
        yield from etcfiles.parse_protocols(data)


@table(
    "dns_resolvers",
    "DNS resolver configuration from /etc/resolv.conf, as glibc's resolver reads it.",
    [
        Column("id", INTEGER, "Position of the entry among those of its type, from 0."),
        Column("type", TEXT, "nameserver, search or sortlist."),
        Column("address", TEXT, "Nameserver or sortlist address, or a search domain."),
        Column("netmask", TEXT, "Prefix length of a nameserver address, or a sortlist mask."),
        Column("options", BIGINT, "The resolver's option bits (_res.options) after reading the file."),
        PID_WITH_NAMESPACE,
    ],
    examples=("SELECT type, address FROM dns_resolvers",),
    cost=5,
)
def gen_dns_resolvers(ctx):
    for ns in namespaces(ctx):
        data = procfs.read_or_none(f"{ns.root}/etc/resolv.conf")
        if data is None:
            continue
        # The default search domain comes from the host name; a container's own is not known here.
        for row in etcfiles.parse_resolv_conf(data, socket.gethostname() if ns.pid == 0 else ""):
            row["pid_with_namespace"] = ns.pid
            yield row
