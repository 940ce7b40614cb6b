"""Per-interface files of /sys/class/net and the kernel's ARP cache in /proc/net/arp."""

from __future__ import annotations

from ..text import decode
from . import procfs

SYS_NET = "/sys/class/net"
ARP = "/proc/net/arp"
_ATF_PERM = 0x4  # a static (permanent) entry


def link_speed(name: str) -> int | None:
    """The link speed in Mb/s the driver reports, or None (no carrier gives -1, or the file is absent)."""
    data = procfs.read_or_none(f"{SYS_NET}/{name}/speed")
    try:
        speed = int(data) if data else None
    except ValueError:
        return None
    return speed if speed is not None and speed >= 0 else None


def pci_slot(name: str) -> str | None:
    """The PCI slot of the interface's device, for PCI devices."""
    data = procfs.read_or_none(f"{SYS_NET}/{name}/device/uevent")
    for line in (data or b"").splitlines():
        if line.startswith(b"PCI_SLOT_NAME="):
            return decode(line[14:])
    return None


def parse_arp(data: bytes) -> list[dict]:
    """/proc/net/arp: address, HW type, flags, HW address, mask, device."""
    rows = []
    for line in data.splitlines()[1:]:
        f = line.split()
        if len(f) != 6:
            continue
        try:
            flags = int(f[2], 16)
        except ValueError:
            continue
        rows.append(
            {
                "address": f[0].decode(),
                "mac": f[3].decode(),
                "interface": decode(f[5]),
                "permanent": "1" if flags & _ATF_PERM else "0",
            }
        )
    return rows
