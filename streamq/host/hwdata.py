"""Pure parsers for hardware data: pci.ids / usb.ids, SMBIOS structures, udev records, CPUID bits.

Everything here works on bytes handed in by the caller, so tests can feed
constructed input; :mod:`streamq.host.sysdevices` and :mod:`streamq.host.sysblock` do the reading.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from typing import NamedTuple

from ..text import decode

# Where distributions install the ID databases (pciutils / usbutils / hwdata).
PCI_IDS_PATHS = ("/usr/share/misc/pci.ids", "/usr/share/hwdata/pci.ids", "/usr/share/pci.ids")
USB_IDS_PATHS = ("/usr/share/misc/usb.ids", "/usr/share/hwdata/usb.ids", "/var/lib/usbutils/usb.ids")


class IdsNames(NamedTuple):
    """Names looked up in a pci.ids / usb.ids file, keyed by lower-case hex IDs."""

    vendors: dict[str, str]
    devices: dict[tuple[str, str], str]  # (vendor, device)
    subsystems: dict[tuple[str, str, str, str], str]  # (vendor, device, subvendor, subdevice)
    classes: dict[str, str]  # class id ("06")
    subclasses: dict[tuple[str, str], str]  # (class id, subclass id)


def parse_ids(data: bytes, vendors: Iterable[str] | None = None) -> IdsNames:
    """Parse the pci.ids/usb.ids format, keeping only the ``vendors`` asked for (all when None).

    Indentation carries the structure: a vendor line, a tab and a device, two tabs and a
    subsystem ("subvendor subdevice  name"); "C xx  name" opens the device class section.
    """
    wanted = None if vendors is None else {v.lower() for v in vendors}
    out = IdsNames({}, {}, {}, {}, {})
    vendor = device = klass = None
    for raw in data.split(b"\n"):
        if not raw or raw.startswith(b"#"):
            continue
        line = decode(raw.rstrip())
        if line.startswith("C "):
            klass, vendor, device = line[2:4].lower(), None, None
            out.classes[klass] = line[4:].strip()
        elif not line.startswith("\t"):
            klass = device = None
            vendor = line[:4].lower()
            if line[:1].isalnum() and line[4:6] == "  " and (wanted is None or vendor in wanted):
                out.vendors[vendor] = line[6:]
            elif line[:1].isupper() and line[1:2] == " ":
                vendor = None  # another section of usb.ids (AT, HID, L...): not vendors
        elif line.startswith("\t\t"):
            fields = line[2:].split(None, 2)
            if vendor in out.vendors and device and len(fields) == 3:
                out.subsystems[(vendor, device, fields[0].lower(), fields[1].lower())] = fields[2]
        elif klass is not None:
            out.subclasses[(klass, line[1:3].lower())] = line[3:].strip()
        elif vendor in out.vendors:
            device = line[1:5].lower()
            out.devices[(vendor, device)] = line[5:].strip()
    return out


def parse_udev_data(data: bytes) -> dict[str, str]:
    """The ``E:KEY=VALUE`` properties of a /run/udev/data record."""
    props = {}
    for line in data.split(b"\n"):
        if line.startswith(b"E:") and b"=" in line:
            key, _, value = line[2:].partition(b"=")
            props[decode(key)] = decode(value)
    return props


def parse_uevent(data: bytes) -> dict[str, str]:
    """KEY=VALUE lines of a sysfs ``uevent`` file."""
    out = {}
    for line in data.split(b"\n"):
        key, sep, value = line.partition(b"=")
        if sep:
            out[decode(key)] = decode(value)
    return out


# SMBIOS structure types, named after the DMTF SMBIOS reference specification.
SMBIOS_TYPES = {
    0: "BIOS Information",
    1: "System Information",
    2: "Baseboard Information",
    3: "System Enclosure or Chassis",
    4: "Processor Information",
    5: "Memory Controller Information",
    6: "Memory Module Information",
    7: "Cache Information",
    8: "Port Connector Information",
    9: "System Slots",
    10: "On Board Devices Information",
    11: "OEM Strings",
    12: "System Configuration Options",
    13: "BIOS Language Information",
    14: "Group Associations",
    15: "System Event Log",
    16: "Physical Memory Array",
    17: "Memory Device",
    18: "32-Bit Memory Error Information",
    19: "Memory Array Mapped Address",
    20: "Memory Device Mapped Address",
    21: "Built-in Pointing Device",
    22: "Portable Battery",
    23: "System Reset",
    24: "Hardware Security",
    25: "System Power Controls",
    26: "Voltage Probe",
    27: "Cooling Device",
    28: "Temperature Probe",
    29: "Electrical Current Probe",
    30: "Out-of-Band Remote Access",
    31: "Boot Integrity Services Entry Point",
    32: "System Boot Information",
    33: "64-Bit Memory Error Information",
    34: "Management Device",
    35: "Management Device Component",
    36: "Management Device Threshold Data",
    37: "Memory Channel",
    38: "IPMI Device Information",
    39: "System Power Supply",
    40: "Additional Information",
    41: "Onboard Devices Extended Information",
    42: "Management Controller Host Interface",
    43: "TPM Device",
    44: "Processor Additional Information",
    45: "Firmware Inventory Information",
    46: "String Property",
    126: "Inactive",
    127: "End-of-Table",
}


class SmbiosStructure(NamedTuple):
    number: int
    type: int
    handle: int
    header_size: int  # the formatted part, as the structure's own length byte says
    data: bytes  # formatted part plus its string set and the closing double NUL


def smbios_table_length(entry_point: bytes) -> int | None:
    """Length (or, for SMBIOS 3, maximum length) of the structure table from the entry point."""
    if entry_point[:5] == b"_SM3_" and len(entry_point) >= 0x10:
        return struct.unpack_from("<I", entry_point, 0x0C)[0]
    if entry_point[:4] == b"_SM_" and len(entry_point) >= 0x18:
        return struct.unpack_from("<H", entry_point, 0x16)[0]
    if entry_point[:5] == b"_DMI_" and len(entry_point) >= 0x08:
        return struct.unpack_from("<H", entry_point, 0x06)[0]
    return None


def parse_smbios(data: bytes) -> Iterator[SmbiosStructure]:
    """Walk SMBIOS structures: a 4-byte header (type, length, handle), then strings up to a double NUL.

    Stops at zero padding, at a header that runs past the data, or at a missing terminator,
    so a truncated or corrupt table yields what is sound and nothing more.
    """
    pos, number = 0, 0
    while pos + 4 <= len(data):
        kind, length, handle = struct.unpack_from("<BBH", data, pos)
        if (length == 0 and handle == 0) or length < 4 or pos + length > len(data):
            return
        end = data.find(b"\0\0", pos + length)
        if end < 0:
            return
        yield SmbiosStructure(number, kind, handle, length, data[pos : end + 2])
        number += 1
        pos = end + 2


def md5(data: bytes) -> str:
    import hashlib  # ~5 ms of OpenSSL loading, paid only by the tables that hash

    return hashlib.md5(data, usedforsecurity=False).hexdigest()
