"""Devices and firmware in /sys: PCI and USB devices, udev's records of them, the ACPI tables.

osquery gets these through libudev; the kernel's own files say the same
(/sys/bus/pci, /sys/bus/usb, /sys/firmware), and udev's database
(/run/udev/data) is used only when it is there. The parsers of what these files
hold are in :mod:`streamq.host.hwdata`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from ..text import decode, fsdecode
from . import dirs, hwdata, procfs

PCI_DEVICES = "/sys/bus/pci/devices"
USB_DEVICES = "/sys/bus/usb/devices"
ACPI_TABLES = "/sys/firmware/acpi/tables"
DMI_TABLES = "/sys/firmware/dmi/tables"
UDEV_DATA = "/run/udev/data"


def ids_names(paths: tuple[str, ...], vendors: set[str]) -> hwdata.IdsNames:
    """Names from the first ids database found (pci.ids, usb.ids), only for ``vendors``."""
    for path in paths:
        data = procfs.read_or_none(path)
        if data is not None:
            return hwdata.parse_ids(data, vendors)
    return hwdata.IdsNames({}, {}, {}, {}, {})


def udev_record(record: str, udev_dir: str = UDEV_DATA) -> dict[str, str]:
    """udev's properties of one device (E: lines of /run/udev/data/<record>); {} without udev."""
    data = procfs.read_or_none(f"{udev_dir}/{record}")
    return hwdata.parse_udev_data(data) if data else {}


def pci_uevent(slot: str, root: str = PCI_DEVICES) -> dict[str, str]:
    """A PCI slot's uevent, with its vendor, device, subvendor and subdevice IDs split out in lower case."""
    data = procfs.read_or_none(f"{root}/{slot}/uevent")
    ev = hwdata.parse_uevent(data) if data else {}
    vendor, _, device = ev.get("PCI_ID", "").lower().partition(":")
    subvendor, _, subdevice = ev.get("PCI_SUBSYS_ID", "").lower().partition(":")
    ev.update(vendor=vendor, device=device, subvendor=subvendor, subdevice=subdevice)
    return ev


USB_ATTRS = (
    *("busnum", "devnum", "idVendor", "idProduct", "bcdDevice", "manufacturer", "product", "serial"),
    *("bDeviceClass", "bDeviceSubClass", "bDeviceProtocol", "removable"),
)


def usb_attrs(path: str) -> dict[str, str | None]:
    """The USB_ATTRS files of one USB device directory, vendor and product IDs in lower case."""
    out = {name: procfs.read_text(f"{path}/{name}") for name in USB_ATTRS}
    for key in ("idVendor", "idProduct"):
        out[key] = out[key].lower() if out[key] else None
    return out


def usb_minor(a: dict) -> int | None:
    """The minor number of a USB device node (bus and device numbers from usb_attrs)."""
    bus, dev = procfs.int_or_none(a["busnum"]), procfs.int_or_none(a["devnum"])
    return None if bus is None or dev is None else (bus - 1) * 128 + dev - 1  # the kernel's usb_device minor


def usb_devices(root: str = USB_DEVICES) -> list[dict[str, str | None]]:
    """The attributes (USB_ATTRS) of each USB device under a sysfs directory; interfaces, without busnum, are skipped."""
    return [usb_attrs(f"{root}/{d}") for d in dirs.names(root) if os.path.exists(f"{root}/{d}/busnum")]


def acpi_tables(root: str = ACPI_TABLES) -> Iterator[tuple[str, bytes]]:
    """(name, bytes) of each readable table file, walking the category directories (data, dynamic) too."""
    for name in dirs.names(root):
        path = f"{root}/{name}"
        if os.path.isdir(path):
            yield from acpi_tables(path)
            continue
        try:
            data = procfs.read(path)
        except OSError:
            continue  # the tables are root-only: without root there is nothing to hash
        yield fsdecode(name), data


def parse_iomem(data: bytes) -> list[dict]:
    """/proc/iomem: "start-end : name" per line, nested regions indented by two spaces.

    Addresses read as zero to processes without CAP_SYS_ADMIN; the kernel decides.
    """
    rows = []
    for line in data.splitlines():
        span, sep, name = decode(line).strip().partition(" : ")
        start, dash, end = span.partition("-")
        if sep and dash:
            rows.append({"name": name, "start": f"0x{start}", "end": f"0x{end}"})
    return rows


def smbios_processors(tables: str = DMI_TABLES) -> int:
    """How many SMBIOS processor structures (type 4) the firmware's table holds; 0 if unreadable."""
    data = procfs.read_or_none(f"{tables}/DMI")
    if not data:
        return 0
    entry = procfs.read_or_none(f"{tables}/smbios_entry_point")
    length = hwdata.smbios_table_length(entry) if entry else None
    return sum(1 for s in hwdata.parse_smbios(data[:length] if length else data) if s.type == 4)
