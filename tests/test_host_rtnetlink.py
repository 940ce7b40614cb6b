"""host/rtnetlink: address and netmask decoding against the ipaddress module, and a live dump."""

from __future__ import annotations

import ipaddress
import socket
import struct

import pytest

from streamq.host import rtnetlink


@pytest.mark.parametrize("address", ["127.0.0.1", "10.1.2.3", "::1", "fe80::1:2:3:4", "2001:db8::ff00:42:8329"])
def test_ip_text_matches_ipaddress(address):
    ip = ipaddress.ip_address(address)
    family = socket.AF_INET if ip.version == 4 else socket.AF_INET6
    assert rtnetlink.ip_text(family, ip.packed) == str(ip)
    assert rtnetlink.ip_text(family, ip.packed + b"\0\0") == str(ip)  # attribute padding is ignored
    assert rtnetlink.ip_text(family, ip.packed[:-1]) is None
    assert rtnetlink.ip_text(socket.AF_PACKET, ip.packed) is None


@pytest.mark.parametrize(("family", "bits"), [(socket.AF_INET, 32), (socket.AF_INET6, 128)])
def test_netmask_matches_ipaddress(family, bits):
    for prefixlen in range(bits + 1):
        network = ipaddress.ip_network(f"{'0.0.0.0' if bits == 32 else '::'}/{prefixlen}")
        assert rtnetlink.netmask(family, prefixlen) == str(network.netmask)


def test_u64s_and_a_live_link_dump():
    assert rtnetlink.u64s(struct.pack("=3Q", 1, 2**40, 7), 3) == (1, 2**40, 7)
    names = rtnetlink.link_names()
    assert names[socket.if_nametoindex("lo")] == "lo"
    assert set(names.values()) == {name for _index, name in socket.if_nameindex()}


def test_netmask_of_sources_and_tables_and_none_past_the_address():
    """The one netmask the network source and the interface_addresses table share."""
    for prefix in (0, 1, 8, 24, 31, 32):
        assert rtnetlink.netmask(2, prefix) == str(ipaddress.ip_network(f"0.0.0.0/{prefix}").netmask)
    for prefix in (0, 10, 64, 127, 128):
        assert rtnetlink.netmask(10, prefix) == str(ipaddress.ip_network(f"::/{prefix}").netmask)
    assert rtnetlink.netmask(2, 33) is None
