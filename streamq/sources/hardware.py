"""hardware_events from the kernel's uevent netlink socket (NETLINK_KOBJECT_UEVENT).

The kernel multicasts "ACTION@DEVPATH\\0KEY=VALUE\\0..." to group 1; udevd
re-broadcasts its own, enriched version (starting with "libudev") to group 2,
which we do not join, and skip if one arrives anyway. The kernel message has
no vendor names or serials, so they come, when available, from udev's
database (/run/udev/data, written by udevd when it handled an earlier event
for the device) and from the device's sysfs attributes (USB descriptors).

``path`` is the device node (/dev/DEVNAME) when the device has one, as
osquery reports it, and otherwise the device's directory in /sys, so events
of devices without a node (network interfaces, buses) still say which
device they were about.
"""

from __future__ import annotations

import socket

from ..host import procfs
from ..host.hwdata import parse_udev_data
from ..text import decode
from .base import Source
from .netlink import open_netlink, serve_socket

NETLINK_KOBJECT_UEVENT = 15
KERNEL_GROUP = 1
_RCVBUF = 4 * 1024 * 1024


def parse_uevent_message(data: bytes) -> dict[str, str] | None:
    """The KEY=VALUE environment of a kernel uevent datagram; None for libudev or junk."""
    if data.startswith(b"libudev"):
        return None
    head, _, rest = data.partition(b"\0")
    if b"@" not in head:
        return None
    env: dict[str, str] = {}
    for item in rest.split(b"\0"):
        key, sep, value = item.partition(b"=")
        if sep and key:
            env[decode(key)] = decode(value)
    if "ACTION" not in env or "DEVPATH" not in env:
        action, _, devpath = head.partition(b"@")
        env.setdefault("ACTION", decode(action))
        env.setdefault("DEVPATH", decode(devpath))
    return env


def _udev_id(env: dict[str, str]) -> str | None:
    """The name of the device's record in /run/udev/data (udev's device id)."""
    if "MAJOR" in env and "MINOR" in env:
        kind = "b" if env.get("SUBSYSTEM") == "block" else "c"
        return f"{kind}{env['MAJOR']}:{env['MINOR']}"
    if "IFINDEX" in env:
        return f"n{env['IFINDEX']}"
    if "SUBSYSTEM" in env:
        return f"+{env['SUBSYSTEM']}:{env['DEVPATH'].rsplit('/', 1)[-1]}"
    return None


def _sysfs_attr(devpath: str, name: str) -> str | None:
    data = procfs.read_or_none(f"/sys{devpath}/{name}")
    if data is None:
        return None
    value = decode(data.strip())
    return value or None


def _usb_ids(product: str | None) -> tuple[str | None, str | None, str | None]:
    """PRODUCT=vid/pid/bcdDevice (hex without padding) -> ('046d', 'c52b', '1201')."""
    if not product:
        return None, None, None
    parts = product.split("/")
    if len(parts) != 3:
        return None, None, None
    try:
        return f"{int(parts[0], 16):04x}", f"{int(parts[1], 16):04x}", f"{int(parts[2], 16):04x}"
    except ValueError:
        return None, None, None


def hardware_event_row(env: dict[str, str], udev_root: str = "/run/udev/data") -> dict:
    """A hardware_events row from a uevent's environment, enriched from udev and sysfs."""
    devpath = env["DEVPATH"]
    action = env["ACTION"]
    props: dict[str, str] = {}
    ident = _udev_id(env)
    if ident is not None and action != "remove":
        data = procfs.read_or_none(f"{udev_root}/{ident}")
        if data:
            props = parse_udev_data(data)
    props.update(env)  # the event itself wins over an older database record
    devname = props.get("DEVNAME")
    row = {
        "action": action,
        "path": (devname if devname.startswith("/") else f"/dev/{devname}") if devname else f"/sys{devpath}",
        "type": props.get("DEVTYPE") or props.get("SUBSYSTEM"),
        "driver": props.get("DRIVER") or props.get("ID_USB_DRIVER") or props.get("ID_NET_DRIVER"),
        "vendor": props.get("ID_VENDOR_FROM_DATABASE") or props.get("ID_VENDOR"),
        "vendor_id": props.get("ID_VENDOR_ID"),
        "model": props.get("ID_MODEL_FROM_DATABASE") or props.get("ID_MODEL"),
        "model_id": props.get("ID_MODEL_ID"),
        "serial": props.get("ID_SERIAL_SHORT"),
        "revision": props.get("ID_REVISION"),
    }
    vid, pid, rev = _usb_ids(props.get("PRODUCT"))
    if vid is not None:
        row["vendor_id"] = row["vendor_id"] or vid
        row["model_id"] = row["model_id"] or pid
        row["revision"] = row["revision"] or rev
        if action != "remove" and props.get("DEVTYPE") == "usb_device":
            # USB descriptors as the kernel read them; gone with the device on remove.
            row["vendor"] = row["vendor"] or _sysfs_attr(devpath, "manufacturer")
            row["model"] = row["model"] or _sysfs_attr(devpath, "product")
            row["serial"] = row["serial"] or _sysfs_attr(devpath, "serial")
    elif "PCI_ID" in props:
        vendor, _, device = props["PCI_ID"].lower().partition(":")
        row["vendor_id"] = row["vendor_id"] or vendor or None
        row["model_id"] = row["model_id"] or device or None
    return row


def open_socket() -> socket.socket:
    return open_netlink(
        NETLINK_KOBJECT_UEVENT, KERNEL_GROUP, label="uevent", what="join the kernel's uevent group", rcvbuf=_RCVBUF
    )


class HardwareSource(Source):
    name = "hardware"
    kind = "netlink"

    async def run(self) -> None:
        sock = open_socket()
        self.status.mode = "netlink"
        await serve_socket(sock, self._handle, self.status)

    def _handle(self, data: bytes, sender: int) -> None:
        if sender != 0:
            self.status.skipped += 1  # not from the kernel (another process's unicast)
            return
        env = parse_uevent_message(data)
        if env is None:
            self.status.skipped += 1
            return
        self.ring.append(hardware_event_row(env))  # uevents lost to an overflow cannot be recovered: no resync
