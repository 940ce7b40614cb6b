"""Model-specific registers of each CPU through the msr driver (/dev/cpu/<n>/msr, root only).

Each register is read with pread at its address; a register the processor
lacks reads short and stays NULL. Values are signed 64-bit, as osquery's BIGINT.
"""

from __future__ import annotations

import os
import struct

DEV_CPU = "/dev/cpu"
_ALL = 0xFFFFFFFFFFFFFFFF
# column -> (address, mask, is_flag); addresses from the kernel's msr-index.h
REGISTERS = {
    "turbo_disabled": (0x1A0, 1 << 38, True),  # IA32_MISC_ENABLE, turbo disable bit
    "turbo_ratio_limit": (0x1AD, _ALL, False),
    "platform_info": (0xCE, _ALL, False),
    "perf_ctl": (0x199, 0xFFFF, False),
    "perf_status": (0x198, _ALL, False),
    "feature_control": (0x3A, _ALL, False),
    "rapl_power_limit": (0x610, _ALL, False),
    "rapl_energy_status": (0x611, _ALL, False),
    "rapl_power_units": (0x606, _ALL, False),
}


def _signed(value: int) -> int:
    return struct.unpack("<q", struct.pack("<Q", value))[0]


def msr_row(cpu: int, path: str) -> dict | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None  # no msr driver, or not root
    row: dict = {"processor_number": cpu}
    try:
        for column, (address, mask, is_flag) in REGISTERS.items():
            try:
                data = os.pread(fd, 8, address)
            except OSError:
                data = b""  # EIO: the processor has no such register
            if len(data) != 8:
                row[column] = None
                continue
            value = struct.unpack("<Q", data)[0] & mask
            row[column] = int(bool(value)) if is_flag else _signed(value)
    finally:
        os.close(fd)
    return row


def msr_rows(root: str = DEV_CPU) -> list[dict]:
    try:
        cpus = sorted(int(n) for n in os.listdir(root) if n.isdigit())
    except OSError:
        return []
    rows = []
    for cpu in cpus:
        row = msr_row(cpu, f"{root}/{cpu}/msr")
        if row is not None:
            rows.append(row)
    return rows
