"""host/blkprobe: LUKS, XFS, FAT and MBR headers built by the test, probed as blkid would."""

from __future__ import annotations

import json
import struct
import uuid

from streamq.host import blkprobe


def luks2_header(cipher: str, label: bytes = b"") -> bytes:
    meta = json.dumps({"segments": {"0": {"type": "crypt", "encryption": cipher}}}).encode()
    head = b"LUKS\xba\xbe" + struct.pack(">HQ", 2, 16384) + bytes(8) + label.ljust(48, b"\0")
    head = head.ljust(168, b"\0") + b"0b6e2d9f-7a57-4c3c-9f2e-4d1a9f3b8c11".ljust(40, b"\0")
    return head.ljust(4096, b"\0") + meta.ljust(12288, b"\0")


def test_blkprobe_constructed_headers():
    luks2 = luks2_header("serpent-cbc-essiv:sha256", b"vault")
    assert blkprobe.probe(luks2) == ("crypto_LUKS", "0b6e2d9f-7a57-4c3c-9f2e-4d1a9f3b8c11", "vault")
    assert blkprobe.luks_cipher(luks2) == "serpent-cbc-essiv:sha256"
    luks1 = bytearray(4096)
    luks1[:8] = b"LUKS\xba\xbe\x00\x01"
    luks1[8:11], luks1[40:51] = b"aes", b"xts-plain64"
    assert blkprobe.luks_cipher(bytes(luks1)) == "aes-xts-plain64"
    xfs_uuid = uuid.uuid4()
    xfs = bytearray(4096)
    xfs[:4], xfs[32:48], xfs[108:113] = b"XFSB", xfs_uuid.bytes, b"data1"
    assert blkprobe.probe(bytes(xfs)) == ("xfs", str(xfs_uuid), "data1")
    fat = bytearray(4096)
    fat[82:90], fat[67:71], fat[71:82], fat[510:512] = (
        b"FAT32   ",
        bytes.fromhex("efbeadde"),
        b"BOOT       ",
        b"\x55\xaa",
    )
    assert blkprobe.probe(bytes(fat)) == ("vfat", "DEAD-BEEF", "BOOT")
    mbr = bytearray(4096)
    mbr[510:512] = b"\x55\xaa"
    assert blkprobe.probe(bytes(mbr)) is None and blkprobe.probe(b"short") is None
