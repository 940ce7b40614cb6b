"""System tables: what this host is (system_info), runs (os_version) and booted (kernel_info).

Everything is read from /proc, /sys and /etc at query time (see
:mod:`streamq.host.sysinfo`); hardware columns come from /sys/class/dmi/id and
are NULL on hosts without DMI (VMs, ARM boards).
"""

from __future__ import annotations

import os
import socket

from ..host import procfs
from ..sql.schema import BIGINT, INTEGER, TEXT, Column, table
from ._common import NAMESPACE_COLUMNS, lazy_module, namespaces

sysinfo = lazy_module("streamq.host.sysinfo")


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
    cpus = sysinfo.parse_cpuinfo(procfs.read_or_none("/proc/cpuinfo") or b"")
    first = cpus[0] if cpus else {}
    cores = {(c.get("physical id"), c.get("core id")) for c in cpus if "core id" in c}
    sockets = {c["physical id"] for c in cpus if "physical id" in c}
    vendor = sysinfo.dmi("sys_vendor")
    model, version = sysinfo.dmi("product_name"), sysinfo.dmi("product_version")
    if vendor and vendor.lower() == "lenovo":
        model, version = version, model  # Lenovo keeps the model name in the version field
    yield {
        "hostname": host,
        "uuid": sysinfo.host_uuid(),
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
        "hardware_serial": sysinfo.dmi("product_serial"),
        "board_vendor": sysinfo.dmi("board_vendor"),
        "board_model": sysinfo.dmi("board_name"),
        "board_version": sysinfo.dmi("board_version"),
        "board_serial": sysinfo.dmi("board_serial"),
        "computer_name": host,
        "local_hostname": host,
    }


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
        row = os_version_row(sysinfo.parse_os_release(data))
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
    row = sysinfo.parse_kernel_cmdline(procfs.read_or_none("/proc/cmdline") or b"")
    if row["path"] is None and os.path.exists(f"/boot/vmlinuz-{release}"):
        row["path"] = f"/boot/vmlinuz-{release}"
    row["version"] = release
    yield row
