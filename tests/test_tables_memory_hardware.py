"""SMBIOS memory tables on a table written in the DMTF format, checked against `dmidecode --from-dump`."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess

import pytest

from streamq.host import smbios_memory
from streamq.host.hwdata import parse_smbios


def structure(kind: int, handle: int, formatted: bytes, strings: list[str] = ()) -> bytes:
    header = struct.pack("<BBH", kind, 4 + len(formatted), handle)
    text = b"".join(s.encode() + b"\0" for s in strings) + b"\0" if strings else b"\0\0"
    return header + formatted + text


def _array() -> bytes:
    # location 3 (motherboard), use 3 (system memory), ECC 6 (multi-bit), 64 GiB in KiB, no error handle, 4 slots
    return structure(16, 0x1000, struct.pack("<BBBIHHQ", 3, 3, 6, 64 << 20, 0xFFFE, 4, 0))


def _device(handle: int, size_mb: int, locator: str, serial: str) -> bytes:
    formatted = struct.pack(
        "<HHHHHBBBBBHHBBBBBIHHHH",
        0x1000,  # array handle
        0xFFFE,  # error information handle
        72, 64,  # total and data width
        size_mb,
        0x09,  # DIMM
        0,  # set
        1, 2,  # device and bank locator strings
        0x1A,  # DDR4
        0x0080,  # synchronous
        3200,  # speed
        3, 4, 5, 6,  # manufacturer, serial, asset tag, part number strings
        2,  # attributes: rank 2
        0,  # extended size
        2933,  # configured speed
        1200, 1200, 1200,  # min, max, configured voltage
    )  # fmt: skip
    return structure(17, handle, formatted, [locator, "BANK 0", "Samsung", serial, "Tag-1", "M393A2K43DB3-CWE"])


def _mapped() -> tuple[bytes, bytes]:
    array = structure(19, 0x1300, struct.pack("<IIHBQQ", 0, (16 << 20) - 1, 0x1000, 2, 0, 0))
    device = structure(20, 0x1400, struct.pack("<IIHHBBBQQ", 0, (16 << 20) - 1, 0x1100, 0x1300, 1, 1, 2, 0, 0))
    return array, device


def smbios_table() -> bytes:
    errors = structure(18, 0x1200, struct.pack("<BBBIIII", 0x0C, 3, 3, 0xDEAD, 0x80000000, 0x1234, 0x80000000))
    oem = structure(11, 0x0B00, struct.pack("<B", 2), ["streamq-oem-1", "Build 42"])
    array_map, device_map = _mapped()
    end = structure(127, 0xFEFF, b"")
    return b"".join(
        [
            _array(),
            _device(0x1100, 16384, "DIMM A1", "SN0001"),
            _device(0x1101, 0, "DIMM A2", "SN0002"),
            errors,
            array_map,
            device_map,
            oem,
            end,
        ]
    )


def write_dump(path, table: bytes) -> None:
    """dmidecode's --dump-bin layout: an SMBIOS 3 entry point at 0, the table at 0x20."""
    entry = bytearray(struct.pack("<5sBBBBBBBIQ", b"_SM3_", 0, 0x18, 3, 2, 0, 1, 0, len(table), 0x20))
    entry[5] = (-sum(entry)) & 0xFF
    path.write_bytes(bytes(entry).ljust(0x20, b"\0") + table)


@pytest.fixture
def dump(tmp_path):
    path = tmp_path / "dmi.bin"
    write_dump(path, smbios_table())
    return path


def dmidecode(dump, kind: int) -> list[dict[str, str]]:
    if not shutil.which("dmidecode"):
        pytest.skip("dmidecode is not installed")
    out = subprocess.run(
        ["dmidecode", "--from-dump", str(dump), "-t", str(kind)], capture_output=True, text=True, check=True
    ).stdout
    records = []
    for block in out.split("\nHandle ")[1:]:
        record = {"handle": block.split(",")[0].lower()}
        record.update(dict(re.findall(r"^\t([^:\t]+): (.*)$", block, re.M)))
        records.append(record)
    return records


def _structures(dump):
    return list(parse_smbios(dump.read_bytes()[0x20:]))


def test_memory_devices_match_dmidecode(dump):
    rows = list(smbios_memory.memory_device_rows(_structures(dump)))
    theirs = dmidecode(dump, 17)
    assert len(rows) == len(theirs) == 2
    for row, d in zip(rows, theirs):
        assert row["handle"] == d["handle"]
        assert row["array_handle"] == d["Array Handle"].lower()
        assert row["device_locator"] == d["Locator"] and row["bank_locator"] == d["Bank Locator"]
        assert row["form_factor"] == d["Form Factor"] and row["memory_type"] == d["Type"]
        assert f"{row['total_width']} bits" == d["Total Width"] and f"{row['data_width']} bits" == d["Data Width"]
    full, empty = rows
    assert full["size"] == 16384 and theirs[0]["Size"] == "16 GB"
    assert empty["size"] == 0 and theirs[1]["Size"] == "No Module Installed"
    assert (full["max_speed"], theirs[0]["Speed"]) == (3200, "3200 MT/s")
    assert (full["configured_clock_speed"], theirs[0]["Configured Memory Speed"]) == (2933, "2933 MT/s")
    assert (full["manufacturer"], full["serial_number"], full["part_number"]) == (
        theirs[0]["Manufacturer"],
        theirs[0]["Serial Number"],
        theirs[0]["Part Number"],
    )
    assert full["memory_type_details"] == theirs[0]["Type Detail"] == "Synchronous"
    assert (full["configured_voltage"], theirs[0]["Configured Voltage"]) == (1200, "1.2 V")


def test_memory_arrays_match_dmidecode(dump):
    (row,) = smbios_memory.memory_array_rows(_structures(dump))
    (d,) = dmidecode(dump, 16)
    assert row["handle"] == d["handle"]
    assert (row["location"], d["Location"]) == ("System board or motherboard", "System Board Or Motherboard")
    assert row["use"].lower() == d["Use"].lower() and row["memory_error_correction"] == d["Error Correction Type"]
    assert f"{row['max_capacity']} GB" == d["Maximum Capacity"]
    assert row["number_memory_devices"] == int(d["Number Of Devices"])
    assert row["memory_error_info_handle"] is None and d["Error Information Handle"] == "Not Provided"


def test_mapped_addresses_errors_and_oem_strings(dump):
    structures = _structures(dump)
    (arr,) = smbios_memory.array_mapped_address_rows(structures)
    (d,) = dmidecode(dump, 19)
    assert (arr["memory_array_handle"], arr["partition_width"]) == (
        d["Physical Array Handle"].lower(),
        int(d["Partition Width"]),
    )
    assert (arr["starting_address"], arr["ending_address"]) == ("0x00000000", "0x00ffffff")  # KiB units: 0 - 16 GiB
    assert d["Range Size"] == "16 GB"
    (dev,) = smbios_memory.device_mapped_address_rows(structures)
    (d,) = dmidecode(dump, 20)
    assert dev["memory_device_handle"] == d["Physical Device Handle"].lower()
    assert dev["memory_array_mapped_address_handle"] == d["Memory Array Mapped Address Handle"].lower()
    assert (dev["partition_row_position"], dev["interleave_position"], dev["interleave_data_depth"]) == (1, 1, 2)
    (err,) = smbios_memory.memory_error_rows(structures)
    (d,) = dmidecode(dump, 18)
    # osquery's words, dmidecode's capitals
    assert [err["error_type"], err["error_granularity"], err["error_operation"]] == [
        "Corrected single-bit error",
        "Device level",
        "Read",
    ]
    assert [v.lower() for v in (d["Type"], d["Granularity"], d["Operation"])] == [
        "corrected single-bit error",
        "device level",
        "read",
    ]
    assert err["vendor_syndrome"] == "0x0000dead" and d["Vendor Syndrome"] == "0x0000DEAD"
    assert err["memory_array_error_address"] is None and err["device_error_address"] == "0x00001234"
    oem = list(smbios_memory.oem_string_rows(structures))
    (d,) = dmidecode(dump, 11)
    assert [(r["number"], r["value"]) for r in oem] == [(1, d["String 1"]), (2, d["String 2"])]
    assert {r["handle"] for r in oem} == {"0x0b00"}


def test_no_dmi_means_no_rows(conn):
    if smbios_memory.read_structures():
        pytest.skip("this machine exposes a DMI table")
    for name in ("memory_arrays", "memory_devices", "memory_error_info", "oem_strings"):
        assert conn.query(f"SELECT * FROM {name}") == []
