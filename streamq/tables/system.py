"""System tables: identity, OS release, kernel, CPU, memory, limits and systemd units.

Everything is read from /proc, /sys and /etc at query time; hardware columns
come from /sys/class/dmi/id and are NULL on hosts without DMI (VMs, ARM boards).
"""

from __future__ import annotations

import os
import socket
import struct

from ..host import hwdata, procfs
from ..sql.schema import BIGINT, INTEGER, TEXT, Column, table
from ..text import decode
from ._common import NAMESPACE_COLUMNS, namespaces

DMI = "/sys/class/dmi/id"
CPU_SYS = "/sys/devices/system/cpu"
SMBIOS_TABLES = "/sys/firmware/dmi/tables"


def _sys_text(path: str) -> str | None:
    """A one-line sysfs/etc value, stripped; None when absent, unreadable or empty."""
    data = procfs.read_or_none(path)
    if data is None:
        return None
    value = decode(data.strip())
    return value or None


def parse_cpuinfo(data: bytes) -> list[dict[str, str]]:
    """/proc/cpuinfo as one dict per processor block ("key<tabs>: value" lines)."""
    blocks: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in data.splitlines():
        key, sep, value = line.partition(b":")
        if not sep:
            if not line.strip() and current:
                blocks.append(current)
                current = {}
            continue
        current[decode(key.strip())] = decode(value.strip())
    if current:
        blocks.append(current)
    return blocks


def parse_meminfo(data: bytes) -> dict[str, int]:
    """/proc/meminfo in bytes (the kernel writes kB, meaning KiB)."""
    out = {}
    for line in data.splitlines():
        key, _, rest = line.partition(b":")
        fields = rest.split()
        if not fields:
            continue
        try:
            value = int(fields[0])
        except ValueError:
            continue
        out[key.decode(errors="replace")] = value * 1024 if fields[1:2] == [b"kB"] else value
    return out


def parse_os_release(data: bytes) -> dict[str, str]:
    """os-release(5): KEY=value lines, values optionally shell-quoted."""
    import shlex

    out = {}
    for line in decode(data).splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        try:
            parts = shlex.split(value)
        except ValueError:
            continue  # unbalanced quotes: skip the line, as os-release readers do
        out[key.strip()] = " ".join(parts)
    return out


def _int_or_none(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


@table(
    "system_info",
    "Identity and hardware summary of this host: names, CPU, memory and the DMI vendor strings.",
    [
        Column("hostname", TEXT, "Host name as the kernel reports it (uname nodename)."),
        Column("uuid", TEXT, "Hardware UUID from DMI, else the systemd machine ID written as a UUID."),
        Column("cpu_type", TEXT, "CPU architecture (uname machine), e.g. x86_64."),
        Column("cpu_subtype", TEXT, "CPU model number from /proc/cpuinfo."),
        Column("cpu_brand", TEXT, "CPU marketing name."),
        Column("cpu_physical_cores", INTEGER, "Number of physical cores (distinct socket and core ID pairs)."),
        Column("cpu_logical_cores", INTEGER, "Number of online logical CPUs."),
        Column("cpu_sockets", INTEGER, "Number of CPU packages (sockets)."),
        Column("cpu_microcode", TEXT, "Microcode revision of the first CPU."),
        Column("physical_memory", BIGINT, "Usable physical memory in bytes."),
        Column("hardware_vendor", TEXT, "System manufacturer from DMI."),
        Column("hardware_model", TEXT, "System product name from DMI."),
        Column("hardware_version", TEXT, "System product version from DMI."),
        Column("hardware_serial", TEXT, "System serial number from DMI (readable by root only)."),
        Column("board_vendor", TEXT, "Mainboard manufacturer from DMI."),
        Column("board_model", TEXT, "Mainboard product name from DMI."),
        Column("board_version", TEXT, "Mainboard version from DMI."),
        Column("board_serial", TEXT, "Mainboard serial number from DMI (readable by root only)."),
        Column("computer_name", TEXT, "Friendly host name; the same as hostname on Linux."),
        Column("local_hostname", TEXT, "Local host name; the same as hostname on Linux."),
    ],
    examples=("SELECT hostname, cpu_brand, physical_memory FROM system_info",),
    cost=1,
)
def gen_system_info(ctx):
    # gethostname, not getfqdn: a canonical-name lookup may wait on DNS.
    host = socket.gethostname()
    cpus = parse_cpuinfo(procfs.read_or_none("/proc/cpuinfo") or b"")
    first = cpus[0] if cpus else {}
    cores = {(c.get("physical id"), c.get("core id")) for c in cpus if "core id" in c}
    sockets = {c["physical id"] for c in cpus if "physical id" in c}
    vendor = _sys_text(f"{DMI}/sys_vendor")
    model, version = _sys_text(f"{DMI}/product_name"), _sys_text(f"{DMI}/product_version")
    if vendor and vendor.lower() == "lenovo":
        model, version = version, model  # Lenovo keeps the model name in the version field
    yield {
        "hostname": host,
        "uuid": host_uuid(),
        "cpu_type": os.uname().machine,
        "cpu_subtype": first.get("model"),
        "cpu_brand": first.get("model name") or first.get("Model") or first.get("cpu model"),
        "cpu_physical_cores": len(cores) or None,
        "cpu_logical_cores": os.sysconf("SC_NPROCESSORS_ONLN"),
        "cpu_sockets": len(sockets) or None,
        "cpu_microcode": first.get("microcode"),
        "physical_memory": os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"),
        "hardware_vendor": vendor,
        "hardware_model": model,
        "hardware_version": version,
        "hardware_serial": _sys_text(f"{DMI}/product_serial"),
        "board_vendor": _sys_text(f"{DMI}/board_vendor"),
        "board_model": _sys_text(f"{DMI}/board_name"),
        "board_version": _sys_text(f"{DMI}/board_version"),
        "board_serial": _sys_text(f"{DMI}/board_serial"),
        "computer_name": host,
        "local_hostname": host,
    }


def host_uuid() -> str | None:
    """The DMI product uuid, else /etc/machine-id written as a uuid (osquery_info.uuid uses it too)."""
    uuid = _sys_text(f"{DMI}/product_uuid")
    if uuid:
        return uuid
    machine_id = _sys_text("/etc/machine-id")
    if machine_id and len(machine_id) == 32:
        m = machine_id.lower()
        return f"{m[:8]}-{m[8:12]}-{m[12:16]}-{m[16:20]}-{m[20:]}"
    return None


@table(
    "os_version",
    "The operating system release, from os-release.",
    [
        Column("name", TEXT, "Distribution name (NAME)."),
        Column("version", TEXT, "Version string (VERSION, else VERSION_ID)."),
        Column("major", INTEGER, "First number of VERSION_ID."),
        Column("minor", INTEGER, "Second number of VERSION_ID, NULL when it has none."),
        Column("patch", INTEGER, "Third number of VERSION_ID, NULL when it has none."),
        Column("build", TEXT, "Build identifier (BUILD_ID)."),
        Column("platform", TEXT, "Distribution ID (ID), e.g. debian."),
        Column("platform_like", TEXT, "Related distribution IDs (ID_LIKE)."),
        Column("codename", TEXT, "Release code name (VERSION_CODENAME)."),
        Column("arch", TEXT, "Machine architecture (uname machine)."),
        *NAMESPACE_COLUMNS,
    ],
    examples=(
        "SELECT name, version, major, arch FROM os_version",
        "SELECT name, version FROM os_version WHERE pid_with_namespace = 1",
    ),
    cost=1,
)
def gen_os_version(ctx):
    for ns in namespaces(ctx):
        data = procfs.read_or_none(f"{ns.root}/etc/os-release") or procfs.read_or_none(f"{ns.root}/usr/lib/os-release")
        if data is None:
            continue
        row = os_version_row(parse_os_release(data))
        row["pid_with_namespace"] = ns.pid
        row["mount_namespace_id"] = ns.mount_namespace_id
        yield row


def os_version_row(release: dict[str, str]) -> dict:
    numbers = []
    for part in release.get("VERSION_ID", "").split("."):
        digits = "".join(ch for ch in part if ch.isdigit()) if part[:1].isdigit() else ""
        if not digits:
            break
        numbers.append(int(digits))
    numbers += [None] * (3 - len(numbers))
    return {
        "name": release.get("NAME"),
        "version": release.get("VERSION") or release.get("VERSION_ID"),
        "major": numbers[0],
        "minor": numbers[1],
        "patch": numbers[2],
        "build": release.get("BUILD_ID"),
        "platform": release.get("ID"),
        "platform_like": release.get("ID_LIKE"),
        "codename": release.get("VERSION_CODENAME") or release.get("UBUNTU_CODENAME"),
        "arch": os.uname().machine,
    }


@table(
    "kernel_info",
    "The running kernel: release, boot arguments, image path and root device.",
    [
        Column("version", TEXT, "Kernel release (uname -r)."),
        Column("arguments", TEXT, "Kernel command line without the BOOT_IMAGE= and root= arguments."),
        Column("path", TEXT, "Path of the kernel image (BOOT_IMAGE=, else /boot/vmlinuz-<release> if present)."),
        Column("device", TEXT, "Root device from the root= argument."),
    ],
    examples=("SELECT version, path, device FROM kernel_info",),
    cost=1,
)
def gen_kernel_info(ctx):
    release = os.uname().release
    row = parse_kernel_cmdline(procfs.read_or_none("/proc/cmdline") or b"")
    if row["path"] is None and os.path.exists(f"/boot/vmlinuz-{release}"):
        row["path"] = f"/boot/vmlinuz-{release}"
    row["version"] = release
    yield row


def parse_kernel_cmdline(data: bytes) -> dict:
    """Split /proc/cmdline into osquery's path (BOOT_IMAGE=), device (root=) and the rest."""
    path = device = None
    rest = []
    for arg in decode(data).split():
        if arg.startswith("BOOT_IMAGE=") and path is None:
            path = arg[11:]
        elif arg.startswith("root=") and device is None:
            device = arg[5:]
        else:
            rest.append(arg)
    return {"arguments": " ".join(rest), "path": path, "device": device}


@table(
    "platform_info",
    "Firmware (BIOS or UEFI) identity from DMI; no row on hosts without DMI.",
    [
        Column("vendor", TEXT, "Firmware vendor."),
        Column("version", TEXT, "Firmware version."),
        Column("date", TEXT, "Firmware release date as the firmware writes it."),
        Column("revision", TEXT, "Firmware release number (major.minor)."),
        Column("extra", TEXT, "Extra firmware information; not available from sysfs."),
        Column("firmware_type", TEXT, "uefi when booted through EFI, else bios."),
        Column("address", TEXT, "Firmware runtime segment address; not available from sysfs."),
        Column("size", TEXT, "Firmware ROM size; not available from sysfs."),
        Column("volume_size", INTEGER, "Firmware volume size; not available from sysfs."),
    ],
    examples=("SELECT vendor, version, date, firmware_type FROM platform_info",),
    cost=1,
)
def gen_platform_info(ctx):
    vendor, version = _sys_text(f"{DMI}/bios_vendor"), _sys_text(f"{DMI}/bios_version")
    date, revision = _sys_text(f"{DMI}/bios_date"), _sys_text(f"{DMI}/bios_release")
    if vendor is None and version is None and date is None:
        return
    yield {
        "vendor": vendor,
        "version": version,
        "date": date,
        "revision": revision,
        "firmware_type": "uefi" if os.path.isdir("/sys/firmware/efi") else "bios",
    }


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
    info = parse_meminfo(procfs.read_or_none("/proc/meminfo") or b"")
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
    if not smbios_processors():
        return
    packages: dict[str, list[dict[str, str]]] = {}
    for cpu in parse_cpuinfo(procfs.read_or_none("/proc/cpuinfo") or b""):
        if "processor" in cpu:
            packages.setdefault(cpu.get("physical id", "0"), []).append(cpu)
    online = _cpu_list(_sys_text(f"{CPU_SYS}/online") or "")
    width = str(8 * struct.calcsize("P"))
    for package, cpus in packages.items():
        first = cpus[0]
        numbers = [_int_or_none(c.get("processor")) for c in cpus]
        max_khz = [_int_or_none(_sys_text(f"{CPU_SYS}/cpu{n}/cpufreq/cpuinfo_max_freq")) for n in numbers]
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


def smbios_processors(tables: str = SMBIOS_TABLES) -> int:
    """How many SMBIOS processor structures (type 4) the firmware's table holds; 0 if unreadable."""
    data = procfs.read_or_none(f"{tables}/DMI")
    if not data:
        return 0
    entry = procfs.read_or_none(f"{tables}/smbios_entry_point")
    length = hwdata.smbios_table_length(entry) if entry else None
    return sum(1 for s in hwdata.parse_smbios(data[:length] if length else data) if s.type == 4)


def _cpu_list(text: str) -> set[int]:
    """A kernel CPU list such as 0-3,6 as a set of numbers."""
    out: set[int] = set()
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        if lo.strip().isdigit():
            out.update(range(int(lo), int(hi or lo) + 1))
    return out


_CPU_TIME_COLUMNS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal", "guest", "guest_nice")


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
    yield from parse_cpu_times(procfs.read_or_none("/proc/stat") or b"")


def parse_cpu_times(data: bytes) -> list[dict]:
    """The per-core cpuN lines of /proc/stat (the aggregate "cpu" line is left out)."""
    rows = []
    for line in data.splitlines():
        if not line.startswith(b"cpu") or line.startswith(b"cpu "):
            continue
        fields = line.split()
        try:
            row = {"core": int(fields[0][3:])}
            values = [int(v) for v in fields[1:11]]
        except ValueError:
            continue
        values += [0] * (10 - len(values))  # old kernels lack steal/guest columns
        row.update(zip(_CPU_TIME_COLUMNS, values))
        rows.append(row)
    return rows


# getrlimit resources by osquery's short names (as in `ulimit` and limits.conf).
_RLIMITS = (
    ("as", "RLIMIT_AS"),
    ("core", "RLIMIT_CORE"),
    ("cpu", "RLIMIT_CPU"),
    ("data", "RLIMIT_DATA"),
    ("fsize", "RLIMIT_FSIZE"),
    ("locks", "RLIMIT_LOCKS"),
    ("memlock", "RLIMIT_MEMLOCK"),
    ("msgqueue", "RLIMIT_MSGQUEUE"),
    ("nice", "RLIMIT_NICE"),
    ("nofile", "RLIMIT_NOFILE"),
    ("nproc", "RLIMIT_NPROC"),
    ("rss", "RLIMIT_RSS"),
    ("rtprio", "RLIMIT_RTPRIO"),
    ("rttime", "RLIMIT_RTTIME"),
    ("sigpending", "RLIMIT_SIGPENDING"),
    ("stack", "RLIMIT_STACK"),
)


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

    for name, attr in _RLIMITS:
        if not hasattr(resource, attr):
            continue
        try:
            soft, hard = resource.getrlimit(getattr(resource, attr))
        except (OSError, ValueError):
            continue
        yield {"type": name, "soft_limit": show(soft), "hard_limit": show(hard)}


@table(
    "systemd_units",
    "systemd units: live states from systemd over D-Bus when it runs as PID 1, else from the unit files.",
    [
        Column("id", TEXT, "Unit name, e.g. ssh.service."),
        Column("description", TEXT, "Description= of the unit."),
        Column("load_state", TEXT, "loaded, masked, or error when the unit file cannot be read."),
        Column(
            "active_state",
            TEXT,
            "systemd's ActiveState over D-Bus; inactive when systemd is not running (or has not loaded the unit);"
            " NULL when systemd runs but its bus did not answer.",
        ),
        Column(
            "sub_state",
            TEXT,
            "systemd's SubState over D-Bus; dead when it is not running; NULL when its bus did not answer.",
        ),
        Column(
            "unit_file_state",
            TEXT,
            "enabled, enabled-runtime, disabled, static, indirect, generated, transient, masked or masked-runtime.",
        ),
        Column("following", TEXT, "Unit this one follows; only known to a running systemd."),
        Column("object_path", TEXT, "D-Bus object path systemd uses for the unit."),
        Column("job_id", BIGINT, "Queued job ID; 0 when no job is queued."),
        Column("job_type", TEXT, "Type of the queued job; NULL when none."),
        Column("job_path", TEXT, "D-Bus object path of the queued job; NULL when none."),
        Column("fragment_path", TEXT, "Path of the unit file."),
        Column("user", TEXT, "User= a service runs as; NULL when not set."),
        Column("source_path", TEXT, "SourcePath= of a generated unit (the file it was made from)."),
    ],
    examples=(
        "SELECT id, description, unit_file_state FROM systemd_units WHERE id LIKE '%.service'",
        "SELECT unit_file_state, count(*) FROM systemd_units GROUP BY 1",
    ),
    cost=300,
)
def gen_systemd_units(ctx):
    from ..host import unitfiles

    yield from unitfiles.unit_rows()
