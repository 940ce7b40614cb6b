"""System identity and resources from /proc, /sys and /etc: CPU, memory, os-release, DMI.

Pure parsers over bytes (``parse_*``) and the few one-line readers the system
tables share. Hardware values come from /sys/class/dmi/id and are None on
hosts without DMI (VMs, ARM boards).
"""

from __future__ import annotations

from ..text import decode
from . import procfs

DMI = "/sys/class/dmi/id"


CPU_SYS = "/sys/devices/system/cpu"


def dmi(name: str) -> str | None:
    """One DMI identity string (sys_vendor, product_uuid, bios_version...), or None."""
    return procfs.read_text(f"{DMI}/{name}")


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


def host_uuid() -> str | None:
    """The DMI product uuid, else /etc/machine-id written as a uuid (osquery_info.uuid uses it too)."""
    uuid = procfs.read_text(f"{DMI}/product_uuid")
    if uuid:
        return uuid
    machine_id = procfs.read_text("/etc/machine-id")
    if machine_id and len(machine_id) == 32:
        m = machine_id.lower()
        return f"{m[:8]}-{m[8:12]}-{m[12:16]}-{m[16:20]}-{m[20:]}"
    return None


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


def cpu_list(text: str) -> set[int]:
    """A kernel CPU list such as 0-3,6 as a set of numbers."""
    out: set[int] = set()
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        if lo.strip().isdigit():
            out.update(range(int(lo), int(hi or lo) + 1))
    return out


CPU_TIME_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal", "guest", "guest_nice")


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
        row.update(zip(CPU_TIME_FIELDS, values))
        rows.append(row)
    return rows


# getrlimit resources by osquery's short names (as in `ulimit` and limits.conf).
RLIMITS = (
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


def rlimits() -> list[tuple[str, int, int]]:
    """(osquery's short name, soft, hard) of this process's resource limits (RLIM_INFINITY for unlimited)."""
    import resource

    found = []
    for name, attr in RLIMITS:
        if not hasattr(resource, attr):
            continue
        try:
            soft, hard = resource.getrlimit(getattr(resource, attr))
        except (OSError, ValueError):
            continue
        found.append((name, soft, hard))
    return found
