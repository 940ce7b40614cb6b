"""Kernel tables: mounted filesystems, kernel modules and sysctl values (see :mod:`streamq.host.kernelfs`)."""

from __future__ import annotations

import os

from ..host import procfs
from ..sql.schema import BIGINT, TEXT, Column, table
from ..text import decode
from ._common import lazy_module

kernelfs = lazy_module("streamq.host.kernelfs")


@table(
    "mounts",
    "Mounted filesystems of streamq's mount namespace, with their size and free space.",
    [
        Column("device", TEXT, "Mounted device or source as the kernel reports it."),
        Column("device_alias", TEXT, "The device path with symbolic links resolved."),
        Column("path", TEXT, "Mount point."),
        Column("type", TEXT, "Filesystem type."),
        Column("blocks_size", BIGINT, "Size of one block in bytes (the unit of the block columns)."),
        Column("blocks", BIGINT, "Size of the filesystem in blocks; NULL for network and FUSE filesystems."),
        Column("blocks_free", BIGINT, "Free blocks."),
        Column("blocks_available", BIGINT, "Free blocks available to unprivileged users."),
        Column("inodes", BIGINT, "Number of inodes."),
        Column("inodes_free", BIGINT, "Free inodes."),
        Column("flags", TEXT, "Mount options, comma-separated."),
    ],
    examples=(
        "SELECT path, type, blocks * blocks_size AS bytes FROM mounts WHERE type = 'ext4'",
        "SELECT device, path, flags FROM mounts",
    ),
    cost=50,
)
def gen_mounts(ctx):
    want_space = any(
        ctx.used(c) for c in ("blocks_size", "blocks", "blocks_free", "blocks_available", "inodes", "inodes_free")
    )
    for device, path, fstype, options in kernelfs.parse_mounts(procfs.read_or_none("/proc/self/mounts") or b""):
        row = {
            "device": device,
            "device_alias": os.path.realpath(device) if device.startswith("/") else device,
            "path": path,
            "type": fstype,
            "flags": options,
        }
        st = kernelfs.mount_space(path, fstype) if want_space else None
        if st is not None:
            row.update(
                blocks_size=st.f_frsize or st.f_bsize,
                blocks=st.f_blocks,
                blocks_free=st.f_bfree,
                blocks_available=st.f_bavail,
                inodes=st.f_files,
                inodes_free=st.f_ffree,
            )
        yield row


@table(
    "kernel_modules",
    "Kernel modules: loaded ones from /proc/modules, else what /sys/module lists (built-ins included).",
    [
        Column("name", TEXT, "Module name."),
        Column("size", BIGINT, "Size of the loaded module in bytes; NULL for built-in modules."),
        Column("used_by", TEXT, "Modules that depend on this one, comma-separated, or - for none."),
        Column("status", TEXT, "Live, Loading or Unloading for a loadable module; builtin for one compiled in."),
        Column("address", TEXT, "Load address in kernel memory (zero unless read by root); NULL for built-ins."),
    ],
    examples=("SELECT name, size, status FROM kernel_modules", "SELECT count(*) FROM kernel_modules"),
    cost=100,
)
def gen_kernel_modules(ctx):
    data = procfs.read_or_none("/proc/modules")
    yield from kernelfs.parse_proc_modules(data) if data is not None else kernelfs.sys_module_rows()


def _value_type(value: str) -> str:
    try:
        int(value)
    except ValueError:
        return "string"
    return "int"


@table(
    "system_controls",
    "Kernel parameters (sysctl) from /proc/sys, with the values configured in sysctl.conf files.",
    [
        Column("name", TEXT, "Parameter name in sysctl(8) form, e.g. kernel.ostype.", index=True),
        Column("oid", TEXT, "Numeric identifier; Linux has none, so always NULL.", additional=True),
        Column("subsystem", TEXT, "First part of the name, e.g. kernel, net, vm.", additional=True),
        Column("current_value", TEXT, "Current value as the kernel prints it, whitespace trimmed."),
        Column("config_value", TEXT, "Value set in /etc/sysctl.conf or a sysctl.d file; NULL when not configured."),
        Column("type", TEXT, "int when the current value is one integer, else string."),
    ],
    examples=(
        "SELECT name, current_value FROM system_controls WHERE name = 'kernel.ostype'",
        "SELECT name, current_value, config_value FROM system_controls WHERE config_value IS NOT NULL",
    ),
    cost=2000,
)
def gen_system_controls(ctx):
    config = kernelfs.sysctl_config() if ctx.used("config_value") else {}
    for relpath, data in _sysctl_items(ctx):
        name = kernelfs.sysctl_name(relpath)
        value = decode(data).strip()
        yield {
            "name": name,
            "subsystem": name.split(".", 1)[0],
            "current_value": value,
            "config_value": kernelfs.config_value(config, name),
            "type": _value_type(value),
        }


def _sysctl_items(ctx):
    names = ctx.eq("name")
    if names is not None:
        for name in names:
            relpath = kernelfs.sysctl_relpath(name) if isinstance(name, str) else ""
            parts = relpath.split("/")
            if "" in parts or ".." in parts or "." in parts or not os.path.isfile(f"{kernelfs.SYSCTL_ROOT}/{relpath}"):
                continue
            data = kernelfs.read_sysctl(f"{kernelfs.SYSCTL_ROOT}/{relpath}")
            if data is not None:
                yield relpath, data
        return
    subsystems = ctx.eq("subsystem")
    if subsystems is None:
        yield from kernelfs.walk_sysctl(kernelfs.SYSCTL_ROOT, "")
        return
    for sub in subsystems:
        if isinstance(sub, str) and sub and "/" not in sub and sub not in (".", ".."):
            yield from kernelfs.walk_sysctl(kernelfs.SYSCTL_ROOT, sub)
