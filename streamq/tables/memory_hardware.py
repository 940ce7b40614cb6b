"""Memory hardware from the firmware's SMBIOS table: arrays, modules, mapped addresses, errors, OEM strings.

No rows where the kernel exposes no DMI table (most VMs and non-x86 machines).
"""

from __future__ import annotations

from ..sql.schema import INTEGER, TEXT, Column, table
from ._common import lazy_module

smbios = lazy_module("streamq.host.smbios_memory")


def _structures():
    return smbios.read_structures()


@table(
    "memory_arrays",
    "Physical memory arrays (SMBIOS type 16): where the memory sits, its use, error correction and capacity.",
    [
        Column("handle", TEXT, "SMBIOS handle of the array, hex."),
        Column("location", TEXT, "Where the array is, e.g. System board or motherboard."),
        Column("use", TEXT, "What the array is for, e.g. System memory."),
        Column("memory_error_correction", TEXT, "Error correction: none, Parity, Single-bit ECC, Multi-bit ECC..."),
        Column("max_capacity", INTEGER, "Largest memory the array takes, GiB."),
        Column("memory_error_info_handle", TEXT, "Handle of the error information structure, if any."),
        Column("number_memory_devices", INTEGER, "Number of slots or sockets."),
    ],
    examples=("SELECT * FROM memory_arrays",),
    cost=5,
)
def gen_memory_arrays(ctx):
    yield from smbios.memory_array_rows(_structures())


@table(
    "memory_devices",
    "Memory modules and slots (SMBIOS type 17): size, type, speed, maker and part number.",
    [
        Column("handle", TEXT, "SMBIOS handle of the device, hex."),
        Column("array_handle", TEXT, "Handle of the array it belongs to."),
        Column("form_factor", TEXT, "DIMM, SODIMM, Chip..."),
        Column("total_width", INTEGER, "Total width in bits, with error correction bits."),
        Column("data_width", INTEGER, "Data width in bits."),
        Column("size", INTEGER, "Size in MiB; 0 for an empty slot."),
        Column("set", INTEGER, "Set the device belongs to (devices of a set are used together)."),
        Column("device_locator", TEXT, "Slot label, e.g. DIMM A1."),
        Column("bank_locator", TEXT, "Bank label."),
        Column("memory_type", TEXT, "DDR4, LPDDR4, DRAM..."),
        Column(
            "memory_type_details", TEXT, "Type detail flags, space-separated (Synchronous, Registered (Buffered)...)."
        ),
        Column("max_speed", INTEGER, "Maximum speed in MT/s."),
        Column("configured_clock_speed", INTEGER, "Configured speed in MT/s."),
        Column("manufacturer", TEXT, "Manufacturer."),
        Column("serial_number", TEXT, "Serial number."),
        Column("asset_tag", TEXT, "Asset tag."),
        Column("part_number", TEXT, "Part number."),
        Column("min_voltage", INTEGER, "Minimum voltage in millivolts."),
        Column("max_voltage", INTEGER, "Maximum voltage in millivolts."),
        Column("configured_voltage", INTEGER, "Configured voltage in millivolts."),
    ],
    examples=("SELECT device_locator, size, memory_type, configured_clock_speed FROM memory_devices WHERE size > 0",),
    cost=20,
)
def gen_memory_devices(ctx):
    yield from smbios.memory_device_rows(_structures())


@table(
    "memory_array_mapped_addresses",
    "Address ranges each memory array is mapped to (SMBIOS type 19).",
    [
        Column("handle", TEXT, "SMBIOS handle, hex."),
        Column("memory_array_handle", TEXT, "Handle of the array mapped."),
        Column("starting_address", TEXT, "First address (KiB units in the 32-bit form, bytes in the extended), hex."),
        Column("ending_address", TEXT, "Last address, hex."),
        Column("partition_width", INTEGER, "Number of devices that form one row of the partition."),
    ],
    examples=("SELECT * FROM memory_array_mapped_addresses",),
    cost=5,
)
def gen_memory_array_mapped_addresses(ctx):
    yield from smbios.array_mapped_address_rows(_structures())


@table(
    "memory_device_mapped_addresses",
    "Address ranges each memory device is mapped to (SMBIOS type 20).",
    [
        Column("handle", TEXT, "SMBIOS handle, hex."),
        Column("memory_device_handle", TEXT, "Handle of the memory device."),
        Column("memory_array_mapped_address_handle", TEXT, "Handle of the array mapping it is part of."),
        Column("starting_address", TEXT, "First address, hex."),
        Column("ending_address", TEXT, "Last address, hex."),
        Column("partition_row_position", INTEGER, "Position of the device in a row (255: unknown)."),
        Column("interleave_position", INTEGER, "Position in an interleave (0: not interleaved)."),
        Column("interleave_data_depth", INTEGER, "Rows transferred from the device in one interleave."),
    ],
    examples=("SELECT * FROM memory_device_mapped_addresses",),
    cost=5,
)
def gen_memory_device_mapped_addresses(ctx):
    yield from smbios.device_mapped_address_rows(_structures())


@table(
    "memory_error_info",
    "Memory errors the firmware recorded (SMBIOS type 18).",
    [
        Column("handle", TEXT, "SMBIOS handle, hex."),
        Column("error_type", TEXT, "OK, Single-bit error, Corrected error..."),
        Column("error_granularity", TEXT, "Device level or Memory partition level."),
        Column("error_operation", TEXT, "Read, Write or Partial write."),
        Column("vendor_syndrome", TEXT, "Vendor syndrome, hex."),
        Column("memory_array_error_address", TEXT, "Address of the error in the array, hex."),
        Column("device_error_address", TEXT, "Address of the error in the device, hex."),
        Column("error_resolution", TEXT, "Range within which the error is known, hex."),
    ],
    examples=("SELECT * FROM memory_error_info WHERE error_type != 'OK'",),
    cost=5,
)
def gen_memory_error_info(ctx):
    yield from smbios.memory_error_rows(_structures())


@table(
    "oem_strings",
    "Free-form strings the system maker put in the firmware (SMBIOS type 11).",
    [
        Column("handle", TEXT, "SMBIOS handle, hex."),
        Column("number", INTEGER, "String number, from 1."),
        Column("value", TEXT, "The string."),
    ],
    examples=("SELECT * FROM oem_strings",),
    cost=5,
)
def gen_oem_strings(ctx):
    yield from smbios.oem_string_rows(_structures())
