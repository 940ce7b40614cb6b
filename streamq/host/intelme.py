"""The Intel Management Engine's firmware version through the mei driver (/dev/mei0, root only).

A program talks to an ME client by opening /dev/mei0, connecting the file to the
client's GUID with IOCTL_MEI_CONNECT_CLIENT (_IOWR('H', 1, 16 bytes): the GUID in,
then ``u32 max_msg_length, u8 protocol_version, u8 reserved[3]`` out), and then
writing a request and reading one reply.

osquery asks the firmware-update client (FWU, 309dcde8-ccb1-4062-8f78-600115a34327,
protocol version 1) with a 4-byte zero request (GetFirmwareVersion, command 0) and
reads a 56-byte reply: 7 u32, then u16 major, minor, hotfix, build (the code
version), recovery versions and 6 u16 codes. Firmware without that client (most
CSME 11+ parts) answers the same question on MKHI (8e6a6715-9abc-4043-88ef-
9e39c6f63e0f): a 4-byte header ``group 0xFF, command 0x02, 0, 0``, and a reply whose
header has command 0x82 and result 0, then ``u16 minor, u8 major, u8 platform,
u16 build, u16 hotfix`` (the layout the kernel's mei driver reads for sysfs fw_ver).
Both give ``major.minor.hotfix.build``. Everything little-endian.
"""

from __future__ import annotations

import errno
import os
import select
import struct
import uuid

MEI_DEVICE = "/dev/mei0"
IOCTL_MEI_CONNECT_CLIENT = 0xC0104801  # _IOWR('H', 0x01, struct mei_connect_client_data): 16 bytes
FWU_GUID = uuid.UUID("309dcde8-ccb1-4062-8f78-600115a34327")
MKHI_GUID = uuid.UUID("8e6a6715-9abc-4043-88ef-9e39c6f63e0f")

FWU_REQUEST = bytes(4)  # GetFirmwareVersion: command 0
FWU_REPLY = struct.Struct("<7I4H4H6H")  # 56 bytes
MKHI_GEN_GROUP_ID = 0xFF
MKHI_GET_FW_VERSION = 0x02
MKHI_REQUEST = bytes((MKHI_GEN_GROUP_ID, MKHI_GET_FW_VERSION, 0, 0))
MKHI_REPLY = struct.Struct("<4BHBBHH")  # header, then the code version block: 12 bytes
_CLIENT = struct.Struct("<IB3x")  # what the ioctl writes back over the GUID
_TIMEOUT = 2.0


class MeUnavailable(Exception):
    """No ME here (no driver, no device, no such client) or it did not answer."""


def connect_request(guid: uuid.UUID) -> bytearray:
    """The 16-byte buffer IOCTL_MEI_CONNECT_CLIENT reads the client's GUID from (uuid_le order)."""
    return bytearray(guid.bytes_le)


def parse_connect_reply(buf: bytes) -> tuple[int, int]:
    """(max_msg_length, protocol_version) the ioctl wrote over the buffer."""
    return _CLIENT.unpack_from(buf)


def parse_fwu_reply(data: bytes) -> str | None:
    """``major.minor.hotfix.build`` from the FWU client's 56-byte reply; None for any other length."""
    if len(data) != FWU_REPLY.size:
        return None
    fields = FWU_REPLY.unpack(data)
    major, minor, hotfix, build = fields[7:11]
    return f"{major}.{minor}.{hotfix}.{build}"


def parse_mkhi_reply(data: bytes) -> str | None:
    """``major.minor.hotfix.build`` from an MKHI GET_FW_VERSION reply; None if it is not one, or failed."""
    if len(data) < MKHI_REPLY.size:
        return None
    group, command, _reserved, result, minor, major, _platform, build, hotfix = MKHI_REPLY.unpack_from(data)
    if group != MKHI_GEN_GROUP_ID or command != MKHI_GET_FW_VERSION | 0x80 or result != 0:
        return None
    return f"{major}.{minor}.{hotfix}.{build}"


def _ask(device: str, guid: uuid.UUID, request: bytes, want_protocol: int | None) -> bytes:
    """Open ``device``, connect to ``guid``, send ``request``, return the reply.

    PermissionError propagates (the caller notes it); anything else that fails is MeUnavailable.
    """
    import fcntl

    try:
        fd = os.open(device, os.O_RDWR | os.O_CLOEXEC)
    except PermissionError:
        raise
    except OSError as err:
        raise MeUnavailable(f"{device}: {err.strerror}") from err
    try:
        buf = connect_request(guid)
        try:
            fcntl.ioctl(fd, IOCTL_MEI_CONNECT_CLIENT, buf, True)
        except OSError as err:  # ENOTTY: no such client on this firmware
            raise MeUnavailable(f"no ME client {guid}: {err.strerror}") from err
        max_len, protocol = parse_connect_reply(buf)
        if want_protocol is not None and protocol != want_protocol:
            raise MeUnavailable(f"ME client {guid} speaks protocol {protocol}, not {want_protocol}")
        os.write(fd, request)
        ready, _, _ = select.select([fd], [], [], _TIMEOUT)
        if not ready:
            raise MeUnavailable(f"ME client {guid} did not answer in {_TIMEOUT:g}s")
        return os.read(fd, max(max_len, 512))
    except OSError as err:
        if err.errno in (errno.EACCES, errno.EPERM):
            raise PermissionError(err.errno, err.strerror, device) from err
        raise MeUnavailable(f"{device}: {err.strerror}") from err
    finally:
        os.close(fd)


def firmware_version(device: str = MEI_DEVICE) -> str | None:
    """The ME firmware version, or None where there is no ME to ask. PermissionError when
    the device is there but this user may not open it."""
    if not os.path.exists(device):
        return None
    try:
        return parse_fwu_reply(_ask(device, FWU_GUID, FWU_REQUEST, 1))
    except MeUnavailable:
        pass
    try:
        return parse_mkhi_reply(_ask(device, MKHI_GUID, MKHI_REQUEST, None))
    except MeUnavailable:
        return None
