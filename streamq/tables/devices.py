"""Device tables: PCI and USB devices, with names from the ids databases or udev.

osquery gets these through libudev; streamq reads the kernel's own files
(/sys/bus/pci, /sys/bus/usb) and udev's database only when it is there: see
:mod:`streamq.host.sysdevices`.
"""

from __future__ import annotations

from ..host import procfs
from ..sql.schema import INTEGER, TEXT, Column, table
from ._common import lazy_module

dirs = lazy_module("streamq.host.dirs")
hwdata = lazy_module("streamq.host.hwdata")
sysdevices = lazy_module("streamq.host.sysdevices")


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
    devices = [(slot, sysdevices.pci_uevent(slot)) for slot in dirs.names(sysdevices.PCI_DEVICES)]
    vendors = {v for _, ev in devices for v in (ev.get("vendor"), ev.get("subvendor")) if v}
    names = sysdevices.ids_names(hwdata.PCI_IDS_PATHS, vendors)
    for slot, ev in devices:
        yield _pci_row(slot, ev, names)


def _pci_row(slot: str, ev: dict[str, str], names: hwdata.IdsNames) -> dict:
    vendor, device, subvendor, subdevice = ev["vendor"], ev["device"], ev["subvendor"], ev["subdevice"]
    klass = ev.get("PCI_CLASS", "").lower().zfill(6) if ev.get("PCI_CLASS") else ""
    class_id, subclass_id = klass[:2], klass[2:4]
    udev = sysdevices.udev_record(f"+pci:{slot}")
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
    yield from usb_rows(sysdevices.USB_DEVICES)


def usb_rows(root: str, udev_dir: str | None = None):
    """Rows for the USB devices under a sysfs directory (interfaces, without busnum, are skipped)."""
    devices = sysdevices.usb_devices(root)
    names = sysdevices.ids_names(hwdata.USB_IDS_PATHS, {a["idVendor"] for a in devices if a["idVendor"]})
    for a in devices:
        vendor_id, model_id = a["idVendor"], a["idProduct"]
        minor = sysdevices.usb_minor(a)
        props = sysdevices.udev_record(f"c189:{minor}", udev_dir or sysdevices.UDEV_DATA) if minor is not None else {}
        yield {
            "usb_address": procfs.int_or_none(a["busnum"]),
            "usb_port": procfs.int_or_none(a["devnum"]),
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


def _hex_to_dec(text: str | None) -> str | None:
    try:
        return str(int(text, 16)) if text is not None else None
    except ValueError:
        return None
