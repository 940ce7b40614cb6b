"""SMBIOS memory structures (DMTF DSP0134) decoded into osquery's columns.

Types 16 (physical memory array), 17 (memory device), 18 (32-bit memory
error information), 19 and 20 (array and device mapped addresses) and 11 (OEM
strings). Fields past a structure's own length are absent on older SMBIOS
versions and stay NULL; handles and addresses are hex text as osquery writes them.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator

from ..text import decode
from .hwdata import SmbiosStructure, parse_smbios, smbios_table_length

DMI_TABLES = "/sys/firmware/dmi/tables"

FORM_FACTORS = dict(
    enumerate(
        [
            "",
            "Other",
            "Unknown",
            "SIMM",
            "SIP",
            "Chip",
            "DIP",
            "ZIP",
            "Proprietary Card",
            "DIMM",
            "TSOP",
            "Row of chips",
            "RIMM",
            "SODIMM",
            "SRIMM",
            "FB-DIMM",
        ]
    )
)
TYPE_DETAILS = [
    "Reserved", "Other", "Unknown", "Fast-paged", "Static column", "Pseudo-static", "RAMBUS", "Synchronous",
    "CMOS", "EDO", "Window DRAM", "Cache DRAM", "Non-volatile", "Registered (Buffered)", "Unbuffered (Unregistered)", "LRDIMM",
]  # fmt: skip
MEMORY_TYPES = dict(
    enumerate(
        [
            "", "Other", "Unknown", "DRAM", "EDRAM", "VRAM", "SRAM", "RAM", "ROM", "FLASH", "EEPROM", "FEPROM", "EPROM",
            "CDRAM", "3DRAM", "SDRAM", "SGRAM", "RDRAM", "DDR", "DDR2", "DDR2 FB-DIMM", "RESERVED", "RESERVED",
            "RESERVED", "DDR3", "FBD2", "DDR4", "LPDDR", "LPDDR2", "LPDDR3", "LPDDR4",
        ]
    )
)  # fmt: skip
LOCATIONS = {
    1: "Other", 2: "Unknown", 3: "System board or motherboard", 4: "ISA add-on card", 5: "EISA add-on card",
    6: "PCI add-on card", 7: "MCA add-on card", 8: "PCMCIA add-on card", 9: "Proprietary add-on card", 10: "NuBus",
    0xA0: "PC-98/C20 add-on card", 0xA1: "PC-98/C24 add-on card", 0xA2: "PC-98/E add-on card", 0xA3: "PC-98/Local bus add-on card",
}  # fmt: skip
USES = {
    1: "Other",
    2: "Unknown",
    3: "System memory",
    4: "Video memory",
    5: "Flash memory",
    6: "Non-volatile RAM",
    7: "Cache memory",
}
CORRECTIONS = {1: "Other", 2: "Unknown", 3: "none", 4: "Parity", 5: "Single-bit ECC", 6: "Multi-bit ECC", 7: "CRC"}
ERROR_TYPES = dict(
    enumerate(
        [
            "", "Other", "Unknown", "OK", "Bad read", "Parity error", "Single-bit error", "Double-bit error", "Multi-bit error",
            "Nibble error", "Checksum error", "CRC error", "Corrected single-bit error", "Corrected error", "Uncorrectable error",
        ]
    )
)  # fmt: skip
GRANULARITIES = {1: "Other", 2: "Unknown", 3: "Device level", 4: "Memory partition level"}
OPERATIONS = {1: "Other", 2: "Unknown", 3: "Read", 4: "Write", 5: "Partial write"}


def read_structures(root: str = DMI_TABLES) -> list[SmbiosStructure]:
    """The structures of the firmware's table; none where the kernel exposes no DMI (VMs, non-x86)."""
    try:
        with open(f"{root}/DMI", "rb") as f:
            data = f.read()
    except OSError:
        return []
    try:
        with open(f"{root}/smbios_entry_point", "rb") as f:
            length = smbios_table_length(f.read())
    except OSError:
        length = None
    return list(parse_smbios(data[:length] if length else data))


class _Fields:
    """Little-endian fields of a structure's formatted part; None past its length."""

    def __init__(self, s: SmbiosStructure) -> None:
        self.formatted = s.data[: s.header_size]
        self.strings = s.data[s.header_size :].split(b"\0")

    def _unpack(self, fmt: str, offset: int) -> int | None:
        size = struct.calcsize(fmt)
        if offset + size > len(self.formatted):
            return None
        return struct.unpack_from(fmt, self.formatted, offset)[0]

    def byte(self, offset: int) -> int | None:
        return self._unpack("<B", offset)

    def word(self, offset: int) -> int | None:
        return self._unpack("<H", offset)

    def dword(self, offset: int) -> int | None:
        return self._unpack("<I", offset)

    def qword(self, offset: int) -> int | None:
        return self._unpack("<Q", offset)

    def string(self, offset: int) -> str | None:
        index = self.byte(offset)
        if not index:
            return "" if index == 0 else None
        return decode(self.strings[index - 1]) if index - 1 < len(self.strings) else ""


def hex_text(value: int | None, width: int = 4) -> str | None:
    return None if value is None else f"0x{value:0{width}x}"


def _lookup(table: dict, value: int | None) -> str | None:
    return table.get(value) or None if value is not None else None


def _unless(value: int | None, *sentinels: int) -> int | None:
    return None if value is None or value in sentinels else value


def _of_type(structures: Iterable[SmbiosStructure], kind: int) -> Iterator[_Fields]:
    return (_Fields(s) for s in structures if s.type == kind)


def memory_array_rows(structures: Iterable[SmbiosStructure]) -> Iterator[dict]:
    for f in _of_type(structures, 16):
        capacity = f.dword(0x07)
        extended = f.qword(0x0F)
        if capacity is not None and capacity >= 0x80000000:
            max_capacity = extended // (1 << 30) if extended is not None else None  # bytes, to GiB
        else:
            max_capacity = capacity // (1 << 20) if capacity is not None else None  # KiB, to GiB
        yield {
            "handle": hex_text(f.word(0x02)),
            "location": _lookup(LOCATIONS, f.byte(0x04)),
            "use": _lookup(USES, f.byte(0x05)),
            "memory_error_correction": _lookup(CORRECTIONS, f.byte(0x06)),
            "max_capacity": max_capacity,
            "memory_error_info_handle": hex_text(_unless(f.word(0x0B), 0xFFFE, 0xFFFF)),
            "number_memory_devices": f.word(0x0D),
        }


def memory_device_rows(structures: Iterable[SmbiosStructure]) -> Iterator[dict]:
    for f in _of_type(structures, 17):
        size = _unless(f.word(0x0C), 0xFFFF)
        if size == 0x7FFF:
            size = f.dword(0x1C)  # extended size, in MiB
        details = f.word(0x13)
        yield {
            "handle": hex_text(f.word(0x02)),
            "array_handle": hex_text(f.word(0x04)),
            "form_factor": _lookup(FORM_FACTORS, f.byte(0x0E)),
            "total_width": _unless(f.word(0x08), 0xFFFF),
            "data_width": _unless(f.word(0x0A), 0xFFFF),
            "size": size,
            "set": _unless(f.byte(0x0F), 0xFF),
            "device_locator": f.string(0x10),
            "bank_locator": f.string(0x11),
            "memory_type": _lookup(MEMORY_TYPES, f.byte(0x12)),
            "memory_type_details": None
            if details is None
            else " ".join(n for i, n in enumerate(TYPE_DETAILS) if details & (1 << i)),
            "max_speed": _unless(f.word(0x15), 0, 0xFFFF),
            "configured_clock_speed": _unless(f.word(0x20), 0, 0xFFFF),
            "manufacturer": f.string(0x17),
            "serial_number": f.string(0x18),
            "asset_tag": f.string(0x19),
            "part_number": f.string(0x1A),
            "min_voltage": _unless(f.word(0x22), 0),
            "max_voltage": _unless(f.word(0x24), 0),
            "configured_voltage": _unless(f.word(0x26), 0),
        }


def _address_range(f: _Fields, start32: int, extended: int) -> tuple[str | None, str | None]:
    start = f.dword(start32)
    if start is not None and start != 0xFFFFFFFF:
        return hex_text(start, 8), hex_text(f.dword(start32 + 4), 8)
    return hex_text(f.qword(extended), 12), hex_text(f.qword(extended + 8), 12)


def array_mapped_address_rows(structures: Iterable[SmbiosStructure]) -> Iterator[dict]:
    for f in _of_type(structures, 19):
        start, end = _address_range(f, 0x04, 0x0F)
        yield {
            "handle": hex_text(f.word(0x02)),
            "memory_array_handle": hex_text(f.word(0x0C)),
            "starting_address": start,
            "ending_address": end,
            "partition_width": f.byte(0x0E),
        }


def device_mapped_address_rows(structures: Iterable[SmbiosStructure]) -> Iterator[dict]:
    for f in _of_type(structures, 20):
        start, end = _address_range(f, 0x04, 0x13)
        yield {
            "handle": hex_text(f.word(0x02)),
            "memory_device_handle": hex_text(f.word(0x0C)),
            "memory_array_mapped_address_handle": hex_text(f.word(0x0E)),
            "starting_address": start,
            "ending_address": end,
            "partition_row_position": f.byte(0x10),
            "interleave_position": f.byte(0x11),
            "interleave_data_depth": f.byte(0x12),
        }


def memory_error_rows(structures: Iterable[SmbiosStructure]) -> Iterator[dict]:
    for f in _of_type(structures, 18):
        yield {
            "handle": hex_text(f.word(0x02)),
            "error_type": _lookup(ERROR_TYPES, f.byte(0x04)),
            "error_granularity": _lookup(GRANULARITIES, f.byte(0x05)),
            "error_operation": _lookup(OPERATIONS, f.byte(0x06)),
            "vendor_syndrome": hex_text(_unless(f.dword(0x07), 0), 8),
            "memory_array_error_address": hex_text(_unless(f.dword(0x0B), 0x80000000), 8),
            "device_error_address": hex_text(_unless(f.dword(0x0F), 0x80000000), 8),
            "error_resolution": hex_text(_unless(f.dword(0x13), 0x80000000), 8),
        }


def oem_string_rows(structures: Iterable[SmbiosStructure]) -> Iterator[dict]:
    for f in _of_type(structures, 11):
        handle = hex_text(f.word(0x02))
        for number in range(1, (f.byte(0x04) or 0) + 1):
            text = decode(f.strings[number - 1]) if number - 1 < len(f.strings) else ""
            yield {"handle": handle, "number": number, "value": text}
