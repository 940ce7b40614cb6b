"""intel_me_info: the request bytes and the replies of the mei driver's FWU and MKHI clients, in
their wire layout (little-endian C structs), and no rows on this host, which has no ME."""

from __future__ import annotations

import os
import struct

import pytest

from streamq.host import intelme


def fwu_reply(major: int, minor: int, hotfix: int, build: int) -> bytes:
    """A FWU GetFirmwareVersion reply as the firmware sends it: 7 u32 of details, the code
    version (major, minor, hotfix, build), the recovery version, then 6 u16 codes: 56 bytes."""
    details = struct.pack("<7I", 0, 0x30, 0, 0, 0, 0, 0)
    code = struct.pack("<4H", major, minor, hotfix, build)
    recovery = struct.pack("<4H", major, minor, 0, 1000)
    return details + code + recovery + bytes(12)


def mkhi_reply(major: int, minor: int, hotfix: int, build: int, *, result: int = 0) -> bytes:
    """An MKHI GET_FW_VERSION reply: header (group 0xFF, command 0x82, 0, result), then three
    version blocks (code, NFTP, FITC) of u16 minor, u8 major, u8 platform, u16 build, u16 hotfix."""
    header = bytes((0xFF, 0x82, 0, result))
    code = struct.pack("<HBBHH", minor, major, 12, build, hotfix)
    other = struct.pack("<HBBHH", 0, major, 12, 1, 0)
    return header + code + other + other


def test_requests_are_the_wire_bytes():
    # The GUID as struct uuid_le: the first three fields little-endian (osquery's kMEIUpdateGUID).
    assert list(intelme.connect_request(intelme.FWU_GUID)) == [
        232, 205, 157, 48, 177, 204, 98, 64, 143, 120, 96, 1, 21, 163, 67, 39,
    ]  # fmt: skip
    assert bytes(intelme.connect_request(intelme.MKHI_GUID)) == bytes.fromhex("15676a8ebc9a434088ef9e39c6f63e0f")
    assert intelme.FWU_REQUEST == b"\0\0\0\0"
    assert intelme.MKHI_REQUEST == b"\xff\x02\x00\x00"
    iowr = (3 << 30) | (16 << 16) | (ord("H") << 8) | 1  # _IOWR('H', 1, 16 bytes)
    assert iowr == intelme.IOCTL_MEI_CONNECT_CLIENT


def test_connect_reply_gives_the_clients_properties():
    buf = struct.pack("<IB3x", 512, 1) + bytes(8)  # the ioctl writes over the 16-byte GUID buffer
    assert intelme.parse_connect_reply(buf) == (512, 1)


def test_fwu_reply_is_major_minor_hotfix_build():
    reply = fwu_reply(11, 8, 50, 3425)
    assert len(reply) == 56
    assert intelme.parse_fwu_reply(reply) == "11.8.50.3425"
    assert intelme.parse_fwu_reply(reply[:40]) is None  # a short read: no version


def test_mkhi_reply_is_major_minor_hotfix_build():
    assert intelme.parse_mkhi_reply(mkhi_reply(16, 1, 25, 1932)) == "16.1.25.1932"
    assert intelme.parse_mkhi_reply(mkhi_reply(16, 1, 25, 1932, result=0x89)) is None  # the ME refused
    assert intelme.parse_mkhi_reply(b"\xff\x82\x00") is None


def test_no_device_and_a_device_that_is_not_mei_give_nothing():
    assert intelme.firmware_version("/nonexistent/mei0") is None
    assert intelme.firmware_version("/dev/null") is None  # the connect ioctl fails (ENOTTY): no version


@pytest.mark.skipif(os.path.exists(intelme.MEI_DEVICE), reason="this host has an ME (/dev/mei0)")
def test_table_has_no_rows_here(conn):
    assert conn.query("SELECT * FROM intel_me_info") == []


def test_not_root_is_noted():
    # /dev/mei0 is 0600 root: another user gets no rows, and the CLI's one note names the table.
    from streamq.cli.notes import incomplete_tables

    note = incomplete_tables(["intel_me_info"], euid=65534)
    assert note is not None and "intel_me_info: /dev/mei0 is root's only: no rows" in note
