"""Block devices as sysfs describes them (/sys/class/block), plus what is on them and dm-crypt state.

Filesystem TYPE/UUID/LABEL come, in order of preference, from udev's database
(/run/udev/data/b<major>:<minor>, what libblkid told udev), from reading the device's
first bytes (:mod:`streamq.host.blkprobe`, needs read access to /dev: root), and last from
the /dev/disk/by-uuid and by-label symlinks.
"""

from __future__ import annotations

import os
from typing import NamedTuple

from . import blkprobe, hwdata, procfs

SYS_BLOCK = "/sys/class/block"
UDEV_DATA = "/run/udev/data"
DEV_DISK = "/dev/disk"


class BlockDevice(NamedTuple):
    kernel: str  # the name under /sys/class/block (sda1, dm-0)
    node: str  # /dev path (from the uevent's DEVNAME, which may hold a subdirectory)
    majmin: str  # "8:1"
    sysdir: str  # resolved /sys/devices/... path


def list_devices(root: str = SYS_BLOCK) -> list[BlockDevice]:
    out = []
    try:
        names = sorted(os.listdir(root))
    except OSError:
        return out
    for kernel in names:
        data = procfs.read_or_none(f"{root}/{kernel}/uevent")
        ev = hwdata.parse_uevent(data) if data else {}
        devname = ev.get("DEVNAME", kernel.replace("!", "/"))
        majmin = f"{ev.get('MAJOR', '')}:{ev.get('MINOR', '')}"
        out.append(BlockDevice(kernel, f"/dev/{devname}", majmin, os.path.realpath(f"{root}/{kernel}")))
    return out


def parent_of(dev: BlockDevice, by_sysdir: dict[str, BlockDevice]) -> BlockDevice | None:
    """The disk holding a partition; for a mapped device (dm, md, loop over a device) its first slave."""
    if os.path.exists(f"{dev.sysdir}/partition"):
        return by_sysdir.get(os.path.dirname(dev.sysdir))
    try:
        slaves = sorted(os.listdir(f"{dev.sysdir}/slaves"))
    except OSError:
        return None
    for slave in slaves:
        found = by_sysdir.get(os.path.realpath(f"{dev.sysdir}/slaves/{slave}"))
        if found is not None:
            return found
    return None


def udev_props(dev: BlockDevice) -> dict[str, str]:
    data = procfs.read_or_none(f"{UDEV_DATA}/b{dev.majmin}")
    return hwdata.parse_udev_data(data) if data else {}


def read_head(node: str, size: int = blkprobe.PROBE_SIZE) -> bytes | None:
    """The first bytes of a device; O_NONBLOCK so an empty optical drive answers at once."""
    try:
        fd = os.open(node, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        return os.pread(fd, size, 0)
    except OSError:
        return None
    finally:
        os.close(fd)


def disk_links(kind: str) -> dict[str, str]:
    """/dev/disk/by-uuid or by-label: device path -> the link's name (udev escapes kept as written)."""
    out = {}
    base = f"{DEV_DISK}/by-{kind}"
    try:
        names = os.listdir(base)
    except OSError:
        return out
    for name in names:
        target = os.path.realpath(f"{base}/{name}")
        out[target] = name.replace("\\x20", " ").replace("\\x2f", "/")
    return out


def identity(dev: BlockDevice, props: dict[str, str], links) -> blkprobe.Probe | None:
    """TYPE, UUID and LABEL from udev, else from the device's first bytes, else from /dev/disk links."""
    if props.get("ID_FS_TYPE"):
        return blkprobe.Probe(props["ID_FS_TYPE"], props.get("ID_FS_UUID"), props.get("ID_FS_LABEL"))
    head = read_head(dev.node)
    if head:
        return blkprobe.probe(head)
    uuid, label = links("uuid").get(dev.node), links("label").get(dev.node)
    if uuid or label:
        return blkprobe.Probe(None, uuid, label)
    return None


def crypt_type(dev: BlockDevice, parent: BlockDevice | None) -> str | None:
    """For a dm-crypt mapping ("CRYPT-<TYPE>-..." dm uuid), its type with the cipher when the
    backing device's LUKS header is readable: "LUKS2-aes-xts-plain64" as libcryptsetup names it.
    None for anything that is not a dm-crypt mapping."""
    dm_uuid = procfs.read_text(f"{dev.sysdir}/dm/uuid")
    if not dm_uuid or not dm_uuid.startswith("CRYPT-"):
        return None
    kind = dm_uuid.split("-")[1]
    cipher = None
    if parent is not None and kind.startswith("LUKS"):
        head = read_head(parent.node, 0x40000)  # LUKS2 headers may reserve up to 4 MiB; the JSON is near the start
        cipher = blkprobe.luks_cipher(head) if head else None
    return f"{kind}-{cipher}" if cipher else kind


def devices_with_parents(names: list | None = None) -> list[tuple[BlockDevice, BlockDevice | None]]:
    """Each block device (only those whose node is in ``names``, if given) with the device it sits on."""
    devices = list_devices()
    by_sysdir = {d.sysdir: d for d in devices}
    wanted = set(names) if names is not None else None
    return [(d, parent_of(d, by_sysdir)) for d in devices if wanted is None or d.node in wanted]


def links_cache():
    """A function kind -> disk_links(kind), each kind read once (a query may ask for it per device)."""
    cache: dict[str, dict[str, str]] = {}

    def links(kind: str) -> dict[str, str]:
        if kind not in cache:
            cache[kind] = disk_links(kind)
        return cache[kind]

    return links


def inherited_crypt(node: str, crypt: dict[str, str], parents: dict) -> str | None:
    """The crypt type of the device or of the nearest device under it (LVM on LUKS is encrypted too)."""
    seen = set()
    while node is not None and node not in seen:
        if node in crypt:
            return crypt[node]
        seen.add(node)
        parent = parents.get(node)
        node = parent.node if parent is not None else None
    return None
