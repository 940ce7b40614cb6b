"""Disk tables: block devices (disks, partitions, loop, device-mapper and md devices) and their encryption.

osquery gets these through libblkid and libcryptsetup; streamq reads
/sys/class/block and probes the devices' first bytes itself: see
:mod:`streamq.host.sysblock` and :mod:`streamq.host.blkprobe`.
"""

from __future__ import annotations

from ..host import procfs
from ..sql.schema import BIGINT, INTEGER, TEXT, Column, table
from ._common import lazy_module

sysblock = lazy_module("streamq.host.sysblock")


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
    links = sysblock.links_cache()
    for dev, parent in sysblock.devices_with_parents(ctx.eq("name")):
        yield _block_row(dev, parent, want_fs, links)


def _block_row(dev, parent, want_fs: bool, links) -> dict:
    d, attr = dev.sysdir, procfs.read_text
    props = sysblock.udev_props(dev)
    size = procfs.read_int(f"{d}/size")
    block_size = procfs.read_int(f"{d}/queue/logical_block_size")
    if block_size is None and parent is not None:
        block_size = procfs.read_int(f"{parent.sysdir}/queue/logical_block_size")  # partitions share their disk's
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
    everything = sysblock.devices_with_parents(None)
    parents = {dev.node: parent for dev, parent in everything}
    crypt = {dev.node: t for dev, parent in everything if (t := sysblock.crypt_type(dev, parent)) is not None}
    names = ctx.eq("name")
    links = sysblock.links_cache()
    for dev, _ in everything:
        if names is not None and dev.node not in names:
            continue
        kind = sysblock.inherited_crypt(dev.node, crypt, parents)
        row = {
            "name": dev.node,
            "encrypted": int(kind is not None),
            "type": kind,
            "encryption_status": "encrypted" if kind is not None else "not encrypted",
        }
        if ctx.used("uuid") and procfs.read_int(f"{dev.sysdir}/size"):
            found = sysblock.identity(dev, sysblock.udev_props(dev), links)
            row["uuid"] = found.uuid if found is not None else None
        yield row
