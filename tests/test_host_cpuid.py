"""host/cpuid: rows from captured /proc/cpuinfo bytes and from CPUID registers the test makes up."""

from __future__ import annotations

import struct

from streamq.host import cpuid


def test_cpuinfo_rows_from_captured_bytes():
    data = (
        b"processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel name\t: AMD EPYC 7B13\n"
        b"flags\t\t: fpu pni sse4_1 avx2 svm\n\nprocessor\t: 1\nvendor_id\t: Other\n"
    )
    rows = {r["feature"]: r for r in cpuid.cpuinfo_rows(data)}
    assert rows["vendor"]["value"] == "AuthenticAMD" and rows["product_name"]["value"] == "AMD EPYC 7B13"
    assert rows["family"]["value"] == "0f00"
    assert [rows[n]["value"] for n in ("sse3", "sse4.1", "avx2", "svm", "avx")] == ["1", "1", "1", "1", "0"]
    assert rows["svm"]["input_eax"] == str(0x80000001) and "spec_ctrl" not in rows
    assert list(cpuid.cpuinfo_rows(b"processor\t: 0\nFeatures\t: fp asimd\n")) == []


def test_cpuid_rows_from_registers():
    def regs(text: bytes) -> tuple[int, ...]:
        return struct.unpack("<4I", text.ljust(16, b"\0"))

    leaves = {
        0: (0x16, *struct.unpack("<3I", b"GenuntelineI")),
        1: (0x50657, 0, 1 << 31 | 1, 1 << 26),
        7: (0, 1 << 5, 0, 0),
        0x80000000: (0x80000004, 0, 0, 0),
        0x80000002: regs(b"Test CPU"),
        0x80000003: regs(b""),
        0x80000004: regs(b""),
        0x40000000: (0, *struct.unpack("<3I", b"KVMKVMKVM\0\0\0")),
    }

    def fake(leaf, subleaf=0):
        return dict(zip(("eax", "ebx", "ecx", "edx"), leaves.get(leaf, (0, 0, 0, 0)), strict=True))

    rows = {r["feature"]: r["value"] for r in cpuid.cpuid_rows(fake)}
    assert rows["vendor"] == "GenuineIntel" and rows["product_name"] == "Test CPU"
    assert rows["hypervisor_id"] == "KVMKVMKVM" and rows["family"] == "0600"
    assert (rows["sse3"], rows["sse2"], rows["avx2"], rows["avx"]) == ("1", "1", "1", "0")
    assert rows["sgx0"] == "0" * 32
