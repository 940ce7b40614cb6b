"""Hardware tables: PCI and USB devices, ACPI and SMBIOS tables, CPUID, block devices, disk encryption.

osquery gets most of these through libudev, libblkid and libcryptsetup; streamq reads
the kernel's own files instead (/sys/bus/pci, /sys/bus/usb, /sys/class/block,
/sys/firmware) and uses udev's database (/run/udev/data) only when it is there.

cpuid reads the kernel's cpuid driver or /proc/cpuinfo: see :mod:`streamq.host.cpuid`.
"""

from __future__ import annotations

import os

from ..host import procfs
from ..sql.schema import BIGINT, INTEGER, TEXT, Column, table
from ..text import decode, fsdecode
from ._common import lazy_module

cpuid = lazy_module("streamq.host.cpuid")
hwdata = lazy_module("streamq.host.hwdata")
sysblock = lazy_module("streamq.host.sysblock")

PCI_DEVICES = "/sys/bus/pci/devices"
USB_DEVICES = "/sys/bus/usb/devices"
ACPI_TABLES = "/sys/firmware/acpi/tables"
DMI_TABLES = "/sys/firmware/dmi/tables"
UDEV_DATA = "/run/udev/data"


def _attr(path: str) -> str | None:
    """A sysfs attribute as stripped text; None when absent, unreadable or empty."""
    data = procfs.read_or_none(path)
    if data is None:
        return None
    return decode(data.strip()) or None


def _ids_names(paths: tuple[str, ...], vendors: set[str]) -> hwdata.IdsNames:
    for path in paths:
        data = procfs.read_or_none(path)
        if data is not None:
            return hwdata.parse_ids(data, vendors)
    return hwdata.IdsNames({}, {}, {}, {}, {})


def _udev(record: str, udev_dir: str = UDEV_DATA) -> dict[str, str]:
    data = procfs.read_or_none(f"{udev_dir}/{record}")
    return hwdata.parse_udev_data(data) if data else {}


def _listdir(path: str) -> list[str]:
    try:
        return sorted(os.listdir(path))
    except OSError:
        return []


@table(
    "pci_devices",
    "Devices on the PCI buses, with names from the pci.ids database when it is installed.",
    [
        Column("pci_slot", TEXT, "Domain, bus, device and function of the slot, e.g. 0000:00:1f.2."),
        Column("pci_class", TEXT, "Name of the device class."),
        Column("driver", TEXT, "Kernel driver bound to the device."),
        Column("vendor", TEXT, "Name of the vendor."),
        Column("vendor_id", TEXT, "Vendor ID as 0x-prefixed lower-case hex."),
        Column("model", TEXT, "Name of the device model."),
        Column("model_id", TEXT, "Device ID as 0x-prefixed lower-case hex."),
        Column("pci_class_id", TEXT, "Class code as 0x-prefixed hex."),
        Column("pci_subclass_id", TEXT, "Subclass code as 0x-prefixed hex."),
        Column("pci_subclass", TEXT, "Name of the device subclass."),
        Column("subsystem_vendor_id", TEXT, "Vendor ID of the board or card, 0x-prefixed hex."),
        Column("subsystem_vendor", TEXT, "Name of the board or card vendor."),
        Column("subsystem_model_id", TEXT, "Model ID of the board or card, 0x-prefixed hex."),
        Column("subsystem_model", TEXT, "Name of the board or card model."),
    ],
    examples=(
        "SELECT pci_slot, vendor_id, model_id, driver FROM pci_devices",
        "SELECT driver, count(*) FROM pci_devices GROUP BY driver",
    ),
    cost=50,
)
def gen_pci_devices(ctx):
    devices = [(slot, _pci_uevent(slot)) for slot in _listdir(PCI_DEVICES)]
    vendors = {v for _, ev in devices for v in (ev.get("vendor"), ev.get("subvendor")) if v}
    names = _ids_names(hwdata.PCI_IDS_PATHS, vendors)
    for slot, ev in devices:
        yield _pci_row(slot, ev, names)


def _pci_uevent(slot: str) -> dict[str, str]:
    data = procfs.read_or_none(f"{PCI_DEVICES}/{slot}/uevent")
    ev = hwdata.parse_uevent(data) if data else {}
    vendor, _, device = ev.get("PCI_ID", "").lower().partition(":")
    subvendor, _, subdevice = ev.get("PCI_SUBSYS_ID", "").lower().partition(":")
    ev.update(vendor=vendor, device=device, subvendor=subvendor, subdevice=subdevice)
    return ev


def _pci_row(slot: str, ev: dict[str, str], names: hwdata.IdsNames) -> dict:
    vendor, device, subvendor, subdevice = ev["vendor"], ev["device"], ev["subvendor"], ev["subdevice"]
    klass = ev.get("PCI_CLASS", "").lower().zfill(6) if ev.get("PCI_CLASS") else ""
    class_id, subclass_id = klass[:2], klass[2:4]
    udev = _udev(f"+pci:{slot}")
    return {
        "pci_slot": ev.get("PCI_SLOT_NAME", slot),
        "pci_class": names.classes.get(class_id) or udev.get("ID_PCI_CLASS_FROM_DATABASE"),
        "driver": ev.get("DRIVER"),
        "vendor": names.vendors.get(vendor) or udev.get("ID_VENDOR_FROM_DATABASE"),
        "vendor_id": f"0x{vendor}" if vendor else None,
        "model": names.devices.get((vendor, device)) or udev.get("ID_MODEL_FROM_DATABASE"),
        "model_id": f"0x{device}" if device else None,
        "pci_class_id": f"0x{class_id}" if class_id else None,
        "pci_subclass_id": f"0x{subclass_id}" if subclass_id else None,
        "pci_subclass": names.subclasses.get((class_id, subclass_id)) or udev.get("ID_PCI_SUBCLASS_FROM_DATABASE"),
        "subsystem_vendor_id": f"0x{subvendor}" if subvendor else None,
        "subsystem_vendor": names.vendors.get(subvendor),
        "subsystem_model_id": f"0x{subdevice}" if subdevice else None,
        "subsystem_model": names.subsystems.get((vendor, device, subvendor, subdevice)),
    }


@table(
    "usb_devices",
    "Devices attached to the host's USB buses, hubs included.",
    [
        Column("usb_address", INTEGER, "Number of the bus the device is on."),
        Column("usb_port", INTEGER, "Device number on its bus."),
        Column("vendor", TEXT, "Name of the vendor, from usb.ids or the device's own string."),
        Column("vendor_id", TEXT, "Vendor ID as four lower-case hex digits."),
        Column("version", TEXT, "Device release number (bcdDevice) as four hex digits."),
        Column("model", TEXT, "Name of the product, from usb.ids or the device's own string."),
        Column("model_id", TEXT, "Product ID as four lower-case hex digits."),
        Column("serial", TEXT, "Serial number the device reports."),
        Column("class", TEXT, "Device class code, in decimal."),
        Column("subclass", TEXT, "Device subclass code, in decimal."),
        Column("protocol", TEXT, "Device protocol code, in decimal."),
        Column("removable", INTEGER, "1 if the port is removable, 0 if fixed, -1 if the kernel does not know."),
    ],
    examples=("SELECT usb_address, usb_port, vendor_id, model_id, model FROM usb_devices",),
    cost=20,
)
def gen_usb_devices(ctx):
    yield from usb_rows(USB_DEVICES)


def usb_rows(root: str, udev_dir: str = UDEV_DATA):
    """Rows for the USB devices under a sysfs directory (interfaces, without busnum, are skipped)."""
    devices = [d for d in _listdir(root) if os.path.exists(f"{root}/{d}/busnum")]
    attrs = {d: _usb_attrs(f"{root}/{d}") for d in devices}
    names = _ids_names(hwdata.USB_IDS_PATHS, {a["idVendor"] for a in attrs.values() if a["idVendor"]})
    for a in attrs.values():
        vendor_id, model_id = a["idVendor"], a["idProduct"]
        minor = _usb_minor(a)
        props = _udev(f"c189:{minor}", udev_dir) if minor is not None else {}
        yield {
            "usb_address": _int(a["busnum"]),
            "usb_port": _int(a["devnum"]),
            "vendor": names.vendors.get(vendor_id) or props.get("ID_VENDOR_FROM_DATABASE") or a["manufacturer"],
            "vendor_id": vendor_id,
            "version": a["bcdDevice"],
            "model": names.devices.get((vendor_id, model_id)) or props.get("ID_MODEL_FROM_DATABASE") or a["product"],
            "model_id": model_id,
            "serial": a["serial"],
            "class": _hex_to_dec(a["bDeviceClass"]),
            "subclass": _hex_to_dec(a["bDeviceSubClass"]),
            "protocol": _hex_to_dec(a["bDeviceProtocol"]),
            "removable": {"removable": 1, "fixed": 0, "unknown": -1}.get(a["removable"] or ""),
        }


_USB_ATTRS = (
    *("busnum", "devnum", "idVendor", "idProduct", "bcdDevice", "manufacturer", "product", "serial"),
    *("bDeviceClass", "bDeviceSubClass", "bDeviceProtocol", "removable"),
)


def _usb_attrs(path: str) -> dict[str, str | None]:
    out = {name: _attr(f"{path}/{name}") for name in _USB_ATTRS}
    for key in ("idVendor", "idProduct"):
        out[key] = out[key].lower() if out[key] else None
    return out


def _usb_minor(a: dict) -> int | None:
    bus, dev = _int(a["busnum"]), _int(a["devnum"])
    return None if bus is None or dev is None else (bus - 1) * 128 + dev - 1  # the kernel's usb_device minor


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def _hex_to_dec(text: str | None) -> str | None:
    try:
        return str(int(text, 16)) if text is not None else None
    except ValueError:
        return None


@table(
    "acpi_tables",
    "ACPI tables the firmware handed to the kernel, with their sizes and MD5 digests.",
    [
        Column("name", TEXT, "Signature of the table, with the kernel's instance number when there are several."),
        Column("size", INTEGER, "Size of the table in bytes."),
        Column("md5", TEXT, "MD5 digest of the table's bytes."),
    ],
    examples=("SELECT name, size, md5 FROM acpi_tables",),
    cost=20,
)
def gen_acpi_tables(ctx):
    yield from acpi_rows(ACPI_TABLES)


def acpi_rows(root: str):
    """One row per readable table file, walking the category directories (data, dynamic) too."""
    for name in _listdir(root):
        path = f"{root}/{name}"
        if os.path.isdir(path):
            yield from acpi_rows(path)
            continue
        try:
            data = procfs.read(path)
        except OSError:
            continue  # the tables are root-only: without root there is nothing to hash
        yield {"name": fsdecode(name), "size": len(data), "md5": hwdata.md5(data)}


@table(
    "smbios_tables",
    "Structures of the firmware's SMBIOS (DMI) table: one row per structure header.",
    [
        Column("number", INTEGER, "Position of the structure in the table, from 0."),
        Column("type", INTEGER, "SMBIOS structure type."),
        Column("description", TEXT, "Name of the structure type, or Unknown."),
        Column("handle", INTEGER, "Handle that identifies the structure."),
        Column("header_size", INTEGER, "Length of the formatted part, from the structure's header."),
        Column("size", INTEGER, "Length of the whole structure, strings included."),
        Column("md5", TEXT, "MD5 digest of the whole structure."),
    ],
    examples=("SELECT type, description, count(*) FROM smbios_tables GROUP BY type",),
    cost=50,
)
def gen_smbios_tables(ctx):
    data = procfs.read_or_none(f"{DMI_TABLES}/DMI")
    if not data:
        return
    entry = procfs.read_or_none(f"{DMI_TABLES}/smbios_entry_point")
    length = hwdata.smbios_table_length(entry) if entry else None
    yield from smbios_rows(data[:length] if length else data)


def smbios_rows(data: bytes):
    for s in hwdata.parse_smbios(data):
        yield {
            "number": s.number,
            "type": s.type,
            "description": hwdata.SMBIOS_TYPES.get(s.type, "Unknown"),
            "handle": s.handle,
            "header_size": s.header_size,
            "size": len(s.data),
            "md5": hwdata.md5(s.data),
        }


@table(
    "cpuid",
    "Processor vendor, brand, family and feature bits, as the CPUID instruction reports them.",
    [
        Column("feature", TEXT, "Name of the feature or property."),
        Column("value", TEXT, "Its value: 1 or 0 for a feature bit, text for the others."),
        Column("output_register", TEXT, "Register (or registers) of the CPUID output holding it."),
        Column("output_bit", INTEGER, "Bit within the register for a feature bit, else 0."),
        Column("input_eax", TEXT, "CPUID leaf (and sub-leaf) queried, as osquery writes it."),
    ],
    examples=(
        "SELECT feature, value, output_register, output_bit, input_eax FROM cpuid",
        "SELECT feature FROM cpuid WHERE value = '1' AND output_bit > 0",
    ),
    cost=60,
)
def gen_cpuid(ctx):
    reader = cpuid.open_device()
    if reader is not None:
        try:
            rows = list(cpuid.cpuid_rows(reader))  # all or nothing, so a fallback never repeats rows
        except OSError:
            rows = []  # the driver refused a leaf: fall back to what the kernel printed
        finally:
            reader.close()
        if rows:
            yield from rows
            return
    data = procfs.read_or_none("/proc/cpuinfo")
    if data:
        yield from cpuid.cpuinfo_rows(data)


@table(
    "block_devices",
    "Block devices (disks, partitions, loop, device-mapper and md devices) with what they hold.",
    [
        Column("name", TEXT, "Device node, e.g. /dev/sda1.", index=True),
        Column("parent", TEXT, "Device node of the disk holding this partition, or of the device under a mapping."),
        Column("vendor", TEXT, "Vendor the disk reports."),
        Column("model", TEXT, "Model the disk reports."),
        Column("serial", TEXT, "Serial number or world-wide ID the disk reports."),
        Column("size", BIGINT, "Size in 512-byte sectors, whatever the device's block size."),
        Column("block_size", INTEGER, "Logical block size in bytes."),
        Column("uuid", TEXT, "UUID of the filesystem or container on the device."),
        Column("type", TEXT, "Filesystem or container type, as blkid names it (ext4, swap, crypto_LUKS...)."),
        Column("label", TEXT, "Label of the filesystem or container."),
    ],
    examples=(
        "SELECT name, parent, size, block_size, type, uuid FROM block_devices",
        "SELECT * FROM block_devices WHERE type = 'Virtual Interface'",
    ),
    cost=50,
)
def gen_block_devices(ctx):
    want_fs = any(ctx.used(c) for c in ("uuid", "type", "label"))
    links = _links_cache()
    for dev, parent in _block_devices(ctx.eq("name")):
        yield _block_row(dev, parent, want_fs, links)


def _block_devices(names: list | None) -> list[tuple[sysblock.BlockDevice, sysblock.BlockDevice | None]]:
    devices = sysblock.list_devices()
    by_sysdir = {d.sysdir: d for d in devices}
    wanted = set(names) if names is not None else None
    return [(d, sysblock.parent_of(d, by_sysdir)) for d in devices if wanted is None or d.node in wanted]


def _links_cache():
    cache: dict[str, dict[str, str]] = {}

    def links(kind: str) -> dict[str, str]:
        if kind not in cache:
            cache[kind] = sysblock.disk_links(kind)
        return cache[kind]

    return links


def _block_row(dev, parent, want_fs: bool, links) -> dict:
    d, attr = dev.sysdir, sysblock.attr
    props = sysblock.udev_props(dev)
    size = _int(attr(f"{d}/size"))
    block_size = _int(attr(f"{d}/queue/logical_block_size"))
    if block_size is None and parent is not None:
        block_size = _int(attr(f"{parent.sysdir}/queue/logical_block_size"))  # partitions share their disk's
    row = {
        "name": dev.node,
        "parent": parent.node if parent is not None else None,
        "vendor": attr(f"{d}/device/vendor") or props.get("ID_VENDOR"),
        "model": props.get("ID_MODEL_FROM_DATABASE") or props.get("ID_MODEL") or attr(f"{d}/device/model"),
        "serial": attr(f"{d}/device/wwid") or attr(f"{d}/serial") or attr(f"{d}/device/serial"),
        "size": size,
        "block_size": block_size,
    }
    if want_fs and size:  # an empty loop or zram device has nothing to probe
        found = sysblock.identity(dev, props, links)
        if found is not None:
            row.update(uuid=found.uuid, type=found.type, label=found.label)
    return row


@table(
    "disk_encryption",
    "Whether each block device is encrypted with dm-crypt, directly or through a device beneath it.",
    [
        Column("name", TEXT, "Device node, e.g. /dev/dm-0.", index=True),
        Column("uuid", TEXT, "UUID of the filesystem or container on the device."),
        Column("encrypted", INTEGER, "1 if the device is a dm-crypt mapping or sits on one, else 0."),
        Column("type", TEXT, "Encryption type and cipher, e.g. LUKS2-aes-xts-plain64."),
        Column("encryption_status", TEXT, "encrypted or not encrypted."),
    ],
    examples=(
        "SELECT * FROM disk_encryption",
        "SELECT name, type FROM disk_encryption WHERE encrypted = 1",
    ),
    cost=50,
)
def gen_disk_encryption(ctx):
    everything = _block_devices(None)
    parents = {dev.node: parent for dev, parent in everything}
    crypt = {dev.node: t for dev, parent in everything if (t := sysblock.crypt_type(dev, parent)) is not None}
    names = ctx.eq("name")
    links = _links_cache()
    for dev, _ in everything:
        if names is not None and dev.node not in names:
            continue
        kind = _inherited_crypt(dev.node, crypt, parents)
        row = {
            "name": dev.node,
            "encrypted": int(kind is not None),
            "type": kind,
            "encryption_status": "encrypted" if kind is not None else "not encrypted",
        }
        if ctx.used("uuid") and _int(sysblock.attr(f"{dev.sysdir}/size")):
            found = sysblock.identity(dev, sysblock.udev_props(dev), links)
            row["uuid"] = found.uuid if found is not None else None
        yield row


def _inherited_crypt(node: str, crypt: dict[str, str], parents: dict) -> str | None:
    """The crypt type of the device or of the nearest device under it (LVM on LUKS is encrypted too)."""
    seen = set()
    while node is not None and node not in seen:
        if node in crypt:
            return crypt[node]
        seen.add(node)
        parent = parents.get(node)
        node = parent.node if parent is not None else None
    return None
