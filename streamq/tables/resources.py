"""Resource tables: load, memory, CPUs and their time, and streamq's own resource limits.

Everything is read from /proc and /sys at query time (see :mod:`streamq.host.sysinfo`).
"""

from __future__ import annotations

import struct

from ..host import procfs
from ..sql.schema import BIGINT, INTEGER, TEXT, Column, table
from ._common import lazy_module

sysdevices = lazy_module("streamq.host.sysdevices")
sysinfo = lazy_module("streamq.host.sysinfo")


@table(
    "load_average",
    "System load averages over 1, 5 and 15 minutes.",
    [
        Column("period", TEXT, "Averaging period: 1m, 5m or 15m."),
        Column("average", TEXT, "Load average as a decimal number with six places."),
    ],
    examples=("SELECT period, average FROM load_average",),
    cost=3,
)
def gen_load_average(ctx):
    fields = (procfs.read_or_none("/proc/loadavg") or b"").split()
    for period, value in zip(("1m", "5m", "15m"), fields[:3]):
        yield {"period": period, "average": f"{float(value):.6f}"}


_MEMINFO_COLUMNS = {
    "memory_total": "MemTotal",
    "memory_free": "MemFree",
    "memory_available": "MemAvailable",
    "buffers": "Buffers",
    "cached": "Cached",
    "swap_cached": "SwapCached",
    "active": "Active",
    "inactive": "Inactive",
    "swap_total": "SwapTotal",
    "swap_free": "SwapFree",
}


@table(
    "memory_info",
    "Main memory and swap usage from /proc/meminfo, in bytes.",
    [
        Column("memory_total", BIGINT, "Usable RAM in bytes."),
        Column("memory_free", BIGINT, "RAM not used for anything, in bytes."),
        Column("memory_available", BIGINT, "RAM available for new work without swapping, in bytes."),
        Column("buffers", BIGINT, "Bytes in block device buffers."),
        Column("cached", BIGINT, "Bytes in the page cache (not counting swap cache)."),
        Column("swap_cached", BIGINT, "Bytes of swapped-out memory also still in RAM."),
        Column("active", BIGINT, "Bytes of recently used memory, not reclaimed unless needed."),
        Column("inactive", BIGINT, "Bytes of less recently used memory, first to be reclaimed."),
        Column("swap_total", BIGINT, "Total swap space in bytes."),
        Column("swap_free", BIGINT, "Unused swap space in bytes."),
    ],
    examples=("SELECT memory_total, memory_available FROM memory_info",),
    cost=1,
)
def gen_memory_info(ctx):
    info = sysinfo.parse_meminfo(procfs.read_or_none("/proc/meminfo") or b"")
    yield {column: info.get(key) for column, key in _MEMINFO_COLUMNS.items()}


@table(
    "cpu_info",
    "One row per CPU package (socket): model, vendor, core counts and clock speeds; none without SMBIOS.",
    [
        Column("device_id", TEXT, "Physical package ID of the socket."),
        Column("model", TEXT, "CPU model name."),
        Column("manufacturer", TEXT, "CPU vendor ID, e.g. GenuineIntel."),
        Column("processor_type", TEXT, "Processor type code as in SMBIOS; 3 means a central processor."),
        Column("cpu_status", INTEGER, "1 when at least one CPU of the package is online, else 0."),
        Column("number_of_cores", TEXT, "Physical cores in the package."),
        Column("logical_processors", INTEGER, "Logical CPUs (hardware threads) in the package."),
        Column("address_width", TEXT, "Address width in bits of the running kernel's word size."),
        Column("current_clock_speed", INTEGER, "Current clock speed of the package's first CPU, in MHz."),
        Column("max_clock_speed", INTEGER, "Maximum clock speed from cpufreq, in MHz; NULL without cpufreq."),
        Column("socket_designation", TEXT, "Name of the socket, from the physical package ID."),
    ],
    examples=("SELECT model, number_of_cores, logical_processors FROM cpu_info",),
    cost=2,
)
def gen_cpu_info(ctx):
    # osquery reads this table from SMBIOS processor structures and gives no rows without
    # them (a VM without SMBIOS, or not root): the same here, so no row of guesses.
    if not sysdevices.smbios_processors():
        return
    packages: dict[str, list[dict[str, str]]] = {}
    for cpu in sysinfo.parse_cpuinfo(procfs.read_or_none("/proc/cpuinfo") or b""):
        if "processor" in cpu:
            packages.setdefault(cpu.get("physical id", "0"), []).append(cpu)
    online = sysinfo.cpu_list(procfs.read_text(f"{sysinfo.CPU_SYS}/online") or "")
    width = str(8 * struct.calcsize("P"))
    for package, cpus in packages.items():
        first = cpus[0]
        numbers = [procfs.int_or_none(c.get("processor")) for c in cpus]
        max_khz = [
            procfs.int_or_none(procfs.read_text(f"{sysinfo.CPU_SYS}/cpu{n}/cpufreq/cpuinfo_max_freq")) for n in numbers
        ]
        mhz = first.get("cpu MHz")
        yield {
            "device_id": package,
            "model": first.get("model name"),
            "manufacturer": first.get("vendor_id"),
            "processor_type": "3",
            "cpu_status": int(any(n in online for n in numbers)) if online else 1,
            "number_of_cores": first.get("cpu cores") or str(len({c.get("core id") for c in cpus})),
            "logical_processors": len(cpus),
            "address_width": width,
            "current_clock_speed": round(float(mhz)) if mhz else None,
            "max_clock_speed": max((k for k in max_khz if k), default=0) // 1000 or None,
            "socket_designation": f"CPU {package}",
        }


@table(
    "cpu_time",
    "Time each CPU core spent per state since boot, in clock ticks (USER_HZ), from /proc/stat.",
    [
        Column("core", INTEGER, "CPU number."),
        Column("user", BIGINT, "Ticks in user mode."),
        Column("nice", BIGINT, "Ticks in user mode at low priority (positive nice)."),
        Column("system", BIGINT, "Ticks in kernel mode."),
        Column("idle", BIGINT, "Ticks idle."),
        Column("iowait", BIGINT, "Ticks idle while waiting for I/O."),
        Column("irq", BIGINT, "Ticks servicing hardware interrupts."),
        Column("softirq", BIGINT, "Ticks servicing software interrupts."),
        Column("steal", BIGINT, "Ticks taken by the hypervisor for other guests."),
        Column("guest", BIGINT, "Ticks running a guest virtual CPU."),
        Column("guest_nice", BIGINT, "Ticks running a low-priority guest virtual CPU."),
    ],
    examples=("SELECT core, user, system, idle FROM cpu_time",),
    cost=4,
)
def gen_cpu_time(ctx):
    yield from sysinfo.parse_cpu_times(procfs.read_or_none("/proc/stat") or b"")


@table(
    "ulimit_info",
    "Resource limits (getrlimit) of the streamq process itself, soft and hard.",
    [
        Column("type", TEXT, "Resource name, e.g. nofile, stack, core."),
        Column("soft_limit", TEXT, "Current (soft) limit as a number, or unlimited."),
        Column("hard_limit", TEXT, "Ceiling for the soft limit as a number, or unlimited."),
    ],
    examples=("SELECT type, soft_limit, hard_limit FROM ulimit_info WHERE type = 'nofile'",),
    cost=16,
)
def gen_ulimit_info(ctx):
    import resource

    def show(value: int) -> str:
        return "unlimited" if value == resource.RLIM_INFINITY else str(value)

    for name, soft, hard in sysinfo.rlimits():
        yield {"type": name, "soft_limit": show(soft), "hard_limit": show(hard)}
