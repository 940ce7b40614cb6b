"""Per-interface network settings the kernel keeps in /proc/sys/net."""

from __future__ import annotations

from ..sql.schema import INTEGER, TEXT, Column, table
from ._common import lazy_module

procfs = lazy_module("streamq.host.procfs")
rtnetlink = lazy_module("streamq.host.rtnetlink")

IPV6_CONF = "/proc/sys/net/ipv6/conf"


def ipv6_setting(interface: str, name: str, conf: str = IPV6_CONF) -> int | None:
    data = procfs.read_or_none(f"{conf}/{interface}/{name}")
    try:
        return int(data) if data is not None else None
    except ValueError:
        return None


def ipv6_row(interface: str, conf: str = IPV6_CONF) -> dict:
    """The effective IPv6 settings of one interface, combined with "all" as the kernel does.

    accept_redirects: with forwarding on, both "all" and the interface must accept;
    otherwise either may. accept_ra: 2 accepts even when forwarding, 1 only when not.
    """
    forwarding = ipv6_setting(interface, "forwarding", conf)
    redirects, all_redirects = (
        ipv6_setting(interface, "accept_redirects", conf),
        ipv6_setting("all", "accept_redirects", conf),
    )
    accept_ra = ipv6_setting(interface, "accept_ra", conf)
    row = {
        "interface": interface,
        "hop_limit": ipv6_setting(interface, "hop_limit", conf),
        "forwarding_enabled": forwarding,
    }
    if forwarding is None:  # no IPv6 on this interface (or none at all): the settings are unknown
        return row | {"redirect_accept": None, "rtadv_accept": None}
    if redirects is not None and all_redirects is not None:
        both = bool(redirects) and bool(all_redirects)
        row["redirect_accept"] = int(both if forwarding else bool(redirects) or bool(all_redirects))
    if accept_ra is not None:
        row["rtadv_accept"] = 1 if accept_ra == 2 else int(bool(accept_ra) and not forwarding)
    return row


@table(
    "interface_ipv6",
    "IPv6 settings of each network interface: hop limit, forwarding, and whether redirects and router adverts are accepted.",
    [
        Column("interface", TEXT, "Interface name."),
        Column("hop_limit", INTEGER, "Hop limit of outgoing packets."),
        Column("forwarding_enabled", INTEGER, "1 when the interface forwards IPv6 packets."),
        Column("redirect_accept", INTEGER, "1 when ICMPv6 redirects are accepted (its setting combined with 'all')."),
        Column("rtadv_accept", INTEGER, "1 when router advertisements are accepted, given forwarding."),
    ],
    examples=("SELECT * FROM interface_ipv6 WHERE forwarding_enabled = 1",),
    cost=20,
)
def gen_interface_ipv6(ctx):
    for _index, name in sorted(rtnetlink.link_names().items()):
        yield ipv6_row(name)
