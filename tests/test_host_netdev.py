"""host/netdev: /proc/net/arp on captured bytes, and per-interface files of /sys/class/net on this host."""

from __future__ import annotations

import os

from streamq.host import netdev

ARP = (
    b"IP address       HW type     Flags       HW address            Mask     Device\n"
    b"10.0.0.1         0x1         0x2         52:54:00:12:34:56     *        eth0\n"
    b"10.0.0.9         0x1         0x6         52:54:00:ab:cd:ef     *        br\xffx\n"
    b"10.0.0.7         0x1         0x0         00:00:00:00:00:00     *        eth0\n"
    b"short line\n"
    b"10.0.0.8         0x1         zz          00:00:00:00:00:01     *        eth0\n"
)


def test_parse_arp_on_captured_lines():
    assert netdev.parse_arp(ARP) == [
        {"address": "10.0.0.1", "mac": "52:54:00:12:34:56", "interface": "eth0", "permanent": "0"},
        {"address": "10.0.0.9", "mac": "52:54:00:ab:cd:ef", "interface": "br\\xffx", "permanent": "1"},
        {"address": "10.0.0.7", "mac": "00:00:00:00:00:00", "interface": "eth0", "permanent": "0"},
    ]
    assert netdev.parse_arp(ARP.splitlines(keepends=True)[0]) == []  # the header alone


def test_link_speed_and_pci_slot_of_this_hosts_interfaces():
    for name in os.listdir(netdev.SYS_NET):
        speed = netdev.link_speed(name)
        assert speed is None or speed >= 0  # -1 (no carrier) is not a speed
        slot = netdev.pci_slot(name)
        device = os.path.realpath(f"{netdev.SYS_NET}/{name}/device")
        on_pci = "/pci" in device and os.path.basename(device).count(":") == 2
        assert (slot == os.path.basename(device)) if on_pci else slot is None
    assert netdev.link_speed("lo") is None and netdev.pci_slot("lo") is None
