"""The msr reader on files laid out as the msr driver's: each register at its address as 8 little-endian bytes."""

from __future__ import annotations

import struct

from streamq.host import msr


def write_register(path, address: int, value: int) -> None:
    with open(path, "r+b") as f:
        f.seek(address)
        f.write(struct.pack("<Q", value))


def test_msr_reads_each_register_at_its_address(tmp_path):
    for cpu in (0, 1):
        (tmp_path / str(cpu)).mkdir()
        path = tmp_path / str(cpu) / "msr"
        # A file stands in for the device: byte offset = register number, so adjacent
        # registers overlap here; the test writes only registers 8 or more apart.
        path.write_bytes(b"\0" * 0x619)
        write_register(path, 0x1A0, (1 << 38) if cpu else 0)
        write_register(path, 0x199, 0x12_2A00)  # only the low 16 bits are the request
        write_register(path, 0x3A, 0x5)
        write_register(path, 0x606, 0xFFFF_FFFF_FFFF_FFFF)
    (tmp_path / "microcode").mkdir()  # not a cpu
    rows = msr.msr_rows(str(tmp_path))
    assert [r["processor_number"] for r in rows] == [0, 1]
    assert (rows[0]["turbo_disabled"], rows[1]["turbo_disabled"]) == (0, 1)
    assert rows[0]["perf_ctl"] == 0x2A00 and rows[0]["feature_control"] == 5
    assert rows[0]["rapl_power_units"] == -1  # a signed BIGINT, as osquery stores it
    assert rows[0]["rapl_energy_status"] == 0


def test_a_register_past_the_end_is_null(tmp_path):
    (tmp_path / "0").mkdir()
    (tmp_path / "0" / "msr").write_bytes(b"\0" * 0x200)
    (row,) = msr.msr_rows(str(tmp_path))
    assert row["rapl_power_units"] is None and row["platform_info"] == 0
