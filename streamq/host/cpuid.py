"""CPUID without the instruction: the kernel's cpuid driver, or /proc/cpuinfo flags.

Python cannot execute CPUID, so :func:`cpuid_rows` reads CPU 0's registers through the
kernel's cpuid driver (/dev/cpu/0/cpuid, root only: a 16-byte read at offset
``subleaf << 32 | leaf`` returns EAX, EBX, ECX, EDX). Without it :func:`cpuinfo_rows`
derives the vendor, brand, family and feature bits from the first processor of
/proc/cpuinfo. That view is what the kernel enabled, so a bit the kernel masked reads 0,
and the rows that need raw registers (serial, hypervisor_id, sgx0, sgx1) or features the
kernel never prints (spec_ctrl) are left out. Rows follow osquery's cpuid table.
"""

from __future__ import annotations

import os
import struct
from typing import NamedTuple

from ..text import decode


class CpuFeature(NamedTuple):
    name: str  # osquery's feature name
    leaf: int  # CPUID input EAX
    register: str  # eax / ebx / ecx / edx
    bit: int
    flag: str | None  # the /proc/cpuinfo flag the kernel prints for it (None: not printed)


_REGS = ("eax", "ebx", "ecx", "edx")

# The feature bits osquery reports: its name, leaf, register, bit, and the flag the kernel
# prints in /proc/cpuinfo for that bit, which often differs ("-": the kernel never prints it).
_FEATURE_TABLE = """
msr 1 edx 5 msr         pae 1 edx 6 pae         sep 1 edx 11 sep        mtrr 1 edx 12 mtrr
pge 1 edx 13 pge        mca 1 edx 14 mca        pat 1 edx 16 pat        clfsh 1 edx 19 clflush
acpi 1 edx 22 acpi      mmz 1 edx 23 mmx        sse 1 edx 25 sse        sse2 1 edx 26 sse2
ss 1 edx 27 ss          htt 1 edx 28 ht         ia64 1 edx 30 ia64
sse3 1 ecx 0 pni        vmx 1 ecx 5 vmx         smx 1 ecx 6 smx         ssse3 1 ecx 9 ssse3
sdbg 1 ecx 11 sdbg      pdcm 1 ecx 15 pdcm      pcid 1 ecx 17 pcid      dca 1 ecx 18 dca
sse4.1 1 ecx 19 sse4_1  sse4.2 1 ecx 20 sse4_2  aes 1 ecx 25 aes        avx 1 ecx 28 avx
hypervisor 1 ecx 31 hypervisor
sgx 7 ebx 2 sgx         hle 7 ebx 4 hle         avx2 7 ebx 5 avx2       smep 7 ebx 7 smep
bmi2 7 ebx 8 bmi2       erms 7 ebx 9 erms       invpcid 7 ebx 10 invpcid rtm 7 ebx 11 rtm
pqm 7 ebx 12 cqm        mpx 7 ebx 14 mpx        pqe 7 ebx 15 rdt_a      avx512f 7 ebx 16 avx512f
avx512dq 7 ebx 17 avx512dq rdseed 7 ebx 18 rdseed adx 7 ebx 19 adx      smap 7 ebx 20 smap
intel_pt 7 ebx 25 intel_pt sha 7 ebx 29 sha_ni
umip 7 ecx 2 umip       pku 7 ecx 3 pku         ospke 7 ecx 4 ospke     gfni 7 ecx 8 gfni
vaes 7 ecx 9 vaes       sgx_lc 7 ecx 30 sgx_lc  spec_ctrl 7 edx 26 -
svm 0x80000001 ecx 2 svm ibs 0x80000001 ecx 10 ibs skinit 0x80000001 ecx 12 skinit lwp 0x80000001 ecx 15 lwp
"""


def _features(text: str) -> tuple[CpuFeature, ...]:
    f = text.split()
    return tuple(
        CpuFeature(f[i], int(f[i + 1], 0), f[i + 2], int(f[i + 3]), None if f[i + 4] == "-" else f[i + 4])
        for i in range(0, len(f), 5)
    )


CPU_FEATURES = _features(_FEATURE_TABLE)


def cpuid_registers(data: bytes) -> dict[str, int]:
    """The 16 bytes read from /dev/cpu/N/cpuid at offset ``leaf``: EAX, EBX, ECX, EDX."""
    return dict(zip(_REGS, struct.unpack("<4I", data[:16]), strict=True))


def cpuid_text(*regs: int) -> str:
    """Registers as the ASCII they hold (vendor and brand strings), NULs and padding dropped."""
    return decode(b"".join(struct.pack("<I", r) for r in regs).rstrip(b"\0")).strip()


class CpuidDevice:
    """CPU 0's cpuid driver node: one 16-byte pread per (leaf, sub-leaf)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def __call__(self, leaf: int, subleaf: int = 0) -> dict[str, int]:
        return cpuid_registers(os.pread(self.fd, 16, subleaf << 32 | leaf))

    def close(self) -> None:
        os.close(self.fd)


def open_device(path: str = "/dev/cpu/0/cpuid") -> CpuidDevice | None:
    try:
        return CpuidDevice(os.open(path, os.O_RDONLY | os.O_CLOEXEC))
    except OSError:
        return None


def _cpuid_row(feature: str, value: str | None, register: str, bit: int, leaf: str) -> dict:
    return {"feature": feature, "value": value, "output_register": register, "output_bit": bit, "input_eax": leaf}


def cpuid_rows(cpuid):
    """osquery's cpuid rows from a ``cpuid(leaf, subleaf) -> {eax, ebx, ecx, edx}`` function."""
    top = cpuid(0)
    if top["eax"] < 1:
        return
    max_basic, max_ext = top["eax"], cpuid(0x80000000)["eax"]
    yield _cpuid_row("vendor", cpuid_text(top["ebx"], top["edx"], top["ecx"]), "ebx,edx,ecx", 0, "0")
    if max_ext >= 0x80000004:
        regs = [cpuid(leaf)[r] for leaf in (0x80000002, 0x80000003, 0x80000004) for r in ("eax", "ebx", "ecx", "edx")]
        yield _cpuid_row("product_name", cpuid_text(*regs), "eax,ebx,ecx,edx", 0, "0x80000002")
    leaf1 = cpuid(1)
    if leaf1["ecx"] >> 31 & 1:  # leaf 0x40000000 only means something under a hypervisor
        hv = cpuid(0x40000000)
        yield _cpuid_row("hypervisor_id", cpuid_text(hv["ebx"], hv["ecx"], hv["edx"]), "ebx,ecx,edx", 0, "0x40000000")
    leaf3 = cpuid(3) if max_basic >= 3 else {"eax": 0, "edx": 0}
    serial = f"{leaf1['eax']:08x}{leaf3['eax']:08x}{leaf3['edx']:08x}"
    yield _cpuid_row("serial", serial, "eax,eax,edx", 0, "1,3")
    yield _cpuid_row("family", f"{leaf1['eax'] & 0xF00:04x}", "eax", 0, "1")
    cache: dict[int, dict[str, int]] = {}
    for f in CPU_FEATURES:
        in_range = f.leaf <= (max_ext if f.leaf >= 0x80000000 else max_basic)
        regs = cache.setdefault(f.leaf, cpuid(f.leaf) if in_range else {"eax": 0, "ebx": 0, "ecx": 0, "edx": 0})
        yield _cpuid_row(f.name, str(regs[f.register] >> f.bit & 1), f.register, f.bit, str(f.leaf))
    if max_basic >= 0x12:
        for sub, leaf in ((0, "18"), (1, "18,1")):
            r = cpuid(0x12, sub)
            yield _cpuid_row(
                f"sgx{sub}", "".join(f"{r[x]:08x}" for x in ("eax", "ebx", "ecx", "edx")), "eax,ebx,ecx,edx", 0, leaf
            )


def cpuinfo_rows(data: bytes):
    """The same rows derived from the first processor of /proc/cpuinfo (x86 only: it needs "flags")."""
    info: dict[str, str] = {}
    for line in data.split(b"\n\n", 1)[0].split(b"\n"):
        key, sep, value = line.partition(b":")
        if sep:
            info[decode(key.strip())] = decode(value.strip())
    if "flags" not in info:
        return
    flags = set(info["flags"].split())
    yield _cpuid_row("vendor", info.get("vendor_id"), "ebx,edx,ecx", 0, "0")
    yield _cpuid_row("product_name", info.get("model name"), "eax,ebx,ecx,edx", 0, "0x80000002")
    family = info.get("cpu family", "")
    if family.isdigit():
        yield _cpuid_row("family", f"{min(int(family), 15) << 8:04x}", "eax", 0, "1")  # base family: 15 when extended
    for f in CPU_FEATURES:
        if f.flag is not None:
            yield _cpuid_row(f.name, "1" if f.flag in flags else "0", f.register, f.bit, str(f.leaf))
