"""Recognise what a block device holds from its first bytes, the way libblkid's superblock probe does.

osquery asks libblkid for TYPE, UUID and LABEL; streamq reads the same on-disk signatures
itself for the formats Linux hosts use most (ext2/3/4, xfs, btrfs, swap, LUKS, vfat,
ntfs, iso9660, squashfs). :func:`probe` is pure over the first :data:`PROBE_SIZE`
bytes; a whole disk holding only a partition table gives None, as libblkid's
superblock probe does. Type names are libblkid's, so values match ``blkid``.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from ..text import decode

# Far enough to see btrfs's superblock (64 KiB + 4 KiB) and swap's signature on 64 KiB pages.
PROBE_SIZE = 0x11000


class Probe(NamedTuple):
    type: str
    uuid: str | None = None
    label: str | None = None


def _cstr(data: bytes) -> str | None:
    text = decode(data.split(b"\0", 1)[0]).strip()
    return text or None


def _uuid_at(data: bytes, offset: int) -> str | None:
    raw = data[offset : offset + 16]
    if len(raw) < 16 or raw == bytes(16):
        return None
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


# ext feature bits that ext3 does not know: any of them makes the filesystem ext4 for libblkid.
_EXT3_INCOMPAT = 0x0002 | 0x0004 | 0x0010  # filetype, recover, meta_bg
_EXT3_RO_COMPAT = 0x0001 | 0x0002 | 0x0004  # sparse_super, large_file, btree_dir


def _ext(data: bytes) -> Probe | None:
    sb = 1024
    if data[sb + 0x38 : sb + 0x3A] != b"\x53\xef":
        return None
    compat, incompat, ro_compat = struct.unpack_from("<III", data, sb + 0x5C)
    if incompat & 0x0008:
        kind = "jbd"  # an external journal device
    elif incompat & ~_EXT3_INCOMPAT or ro_compat & ~_EXT3_RO_COMPAT:
        kind = "ext4"
    elif compat & 0x0004:
        kind = "ext3"
    else:
        kind = "ext2"
    return Probe(kind, _uuid_at(data, sb + 0x68), _cstr(data[sb + 0x78 : sb + 0x88]))


def _xfs(data: bytes) -> Probe | None:
    if data[:4] != b"XFSB":
        return None
    return Probe("xfs", _uuid_at(data, 32), _cstr(data[108:120]))


def _btrfs(data: bytes) -> Probe | None:
    sb = 0x10000
    if data[sb + 0x40 : sb + 0x48] != b"_BHRfS_M":
        return None
    return Probe("btrfs", _uuid_at(data, sb + 0x20), _cstr(data[sb + 0x12B : sb + 0x22B]))


def _swap(data: bytes) -> Probe | None:
    for page in (4096, 8192, 16384, 65536):
        magic = data[page - 10 : page]
        if magic == b"SWAPSPACE2":
            return Probe("swap", _uuid_at(data, 1024 + 12), _cstr(data[1024 + 28 : 1024 + 44]))
        if magic == b"SWAP-SPACE":
            return Probe("swap")
    return None


def _luks(data: bytes) -> Probe | None:
    if data[:6] != b"LUKS\xba\xbe":
        return None
    version = struct.unpack_from(">H", data, 6)[0]
    label = _cstr(data[24:72]) if version == 2 else None
    return Probe("crypto_LUKS", _cstr(data[168:208]), label)


def _fat(data: bytes) -> Probe | None:
    if data[510:512] != b"\x55\xaa":
        return None
    if data[82:87] == b"FAT32":
        serial_at, label_at = 67, 71
    elif data[54:59] in (b"FAT12", b"FAT16"):
        serial_at, label_at = 39, 43
    else:
        return None
    serial = struct.unpack_from("<I", data, serial_at)[0]
    label = _cstr(data[label_at : label_at + 11])
    return Probe("vfat", f"{serial >> 16:04X}-{serial & 0xFFFF:04X}", None if label == "NO NAME" else label)


def _ntfs(data: bytes) -> Probe | None:
    if data[3:11] != b"NTFS    ":
        return None
    return Probe("ntfs", f"{struct.unpack_from('<Q', data, 0x48)[0]:016X}")


def _iso9660(data: bytes) -> Probe | None:
    if data[0x8001:0x8006] != b"CD001":
        return None
    return Probe("iso9660", None, _cstr(data[0x8028:0x8048]))


def _squashfs(data: bytes) -> Probe | None:
    return Probe("squashfs") if data[:4] in (b"hsqs", b"sqsh") else None


# Order matters where signatures can coexist: LUKS and xfs own sector 0, swap keeps its
# magic at the end of page 0, and a FAT boot sector is checked last because an MBR shares 55AA.
_PROBERS = (_luks, _xfs, _btrfs, _ext, _swap, _squashfs, _iso9660, _ntfs, _fat)


def probe(data: bytes) -> Probe | None:
    """TYPE, UUID and LABEL of the content that starts with ``data``, or None when unknown."""
    if len(data) < 2048:
        return None
    for prober in _PROBERS:
        found = prober(data)
        if found is not None:
            return found
    return None


def luks_cipher(data: bytes) -> str | None:
    """The cipher spec of a LUKS header ("aes-xts-plain64"), or None.

    LUKS1 keeps cipher name and mode as fixed strings; LUKS2 keeps a JSON area after
    the 4 KiB binary header, whose first segment names the cipher.
    """
    if data[:6] != b"LUKS\xba\xbe":
        return None
    version = struct.unpack_from(">H", data, 6)[0]
    if version == 1:
        name, mode = _cstr(data[8:40]), _cstr(data[40:72])
        return f"{name}-{mode}" if name and mode else name
    if version != 2:
        return None
    import json  # only a LUKS2 header needs it

    size = struct.unpack_from(">Q", data, 8)[0]
    try:
        meta = json.loads(data[4096:size].split(b"\0", 1)[0])
        segments = meta["segments"]
        return segments[min(segments, key=int)]["encryption"]
    except (ValueError, KeyError, TypeError):
        return None
