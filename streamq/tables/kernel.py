"""Kernel tables: mounted filesystems, kernel modules and sysctl values."""

from __future__ import annotations

import os
import re
from fnmatch import fnmatchcase

from ..host import procfs
from ..sql.schema import BIGINT, TEXT, Column, table
from ..text import decode, fsdecode

_OCTAL = re.compile(rb"\\([0-7]{3})")

# statvfs on these can block for minutes on a dead server, or (autofs) mount
# something as a side effect: their block columns stay NULL.
_REMOTE_TYPES = frozenset(
    [
        "nfs",
        "nfs4",
        "cifs",
        "smb3",
        "smbfs",
        "ncpfs",
        "afs",
        "ceph",
        "glusterfs",
        "lustre",
        "9p",
        "davfs",
        "sshfs",
        "autofs",
        "gfs2",
        "ocfs2",
        "beegfs",
    ]
)


def unescape_mount_field(data: bytes) -> bytes:
    """/proc/mounts writes space, tab, newline and backslash as \\040, \\011, \\012, \\134."""
    return _OCTAL.sub(lambda m: bytes([int(m.group(1), 8)]), data)


def parse_mounts(data: bytes) -> list[tuple[str, str, str, str]]:
    """(device, path, type, options) per line of /proc/<pid>/mounts."""
    out = []
    for line in data.splitlines():
        fields = line.split()
        if len(fields) < 4:
            continue
        device, path, fstype, options = (decode(unescape_mount_field(f)) for f in fields[:4])
        out.append((device, path, fstype, options))
    return out


def _statvfs_wanted(fstype: str) -> bool:
    return fstype not in _REMOTE_TYPES and not fstype.startswith("fuse")


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
    for device, path, fstype, options in parse_mounts(procfs.read_or_none("/proc/self/mounts") or b""):
        row = {
            "device": device,
            "device_alias": os.path.realpath(device) if device.startswith("/") else device,
            "path": path,
            "type": fstype,
            "flags": options,
        }
        if want_space and _statvfs_wanted(fstype):
            try:
                st = os.statvfs(path)
            except (OSError, ValueError):
                st = None
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


def parse_proc_modules(data: bytes) -> list[dict]:
    """/proc/modules: name size refcount used_by state address [taints].

    used_by is "-" or a comma-terminated list; the trailing comma is dropped.
    """
    rows = []
    for line in data.splitlines():
        f = line.split()
        if len(f) < 6:
            continue
        try:
            size = int(f[1])
        except ValueError:
            continue
        rows.append(
            {
                "name": decode(f[0]),
                "size": size,
                "used_by": decode(f[3].rstrip(b",")) or "-",
                "status": decode(f[4]),
                "address": decode(f[5]),
            }
        )
    return rows


def sys_module_rows(root: str = "/sys/module") -> list[dict]:
    """Modules as /sys/module shows them, for kernels without /proc/modules.

    A loadable module has an initstate file (live, coming, going); a built-in
    module with parameters or a version has a directory but no initstate.
    """
    rows = []
    try:
        names = sorted(os.listdir(root))
    except OSError:
        return rows
    for name in names:
        base = f"{root}/{name}"
        state = procfs.read_or_none(f"{base}/initstate")
        if state is None:
            rows.append({"name": fsdecode(name), "used_by": "-", "status": "builtin"})
            continue
        try:
            holders = sorted(fsdecode(h) for h in os.listdir(f"{base}/holders"))
        except OSError:
            holders = []
        size = procfs.read_or_none(f"{base}/coresize")
        address = procfs.read_or_none(f"{base}/sections/.text")
        rows.append(
            {
                "name": fsdecode(name),
                "size": int(size) if size and size.strip().isdigit() else None,
                "used_by": ",".join(holders) or "-",
                "status": decode(state.strip()).capitalize(),
                "address": decode(address.strip()) if address else None,
            }
        )
    return rows


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
    yield from parse_proc_modules(data) if data is not None else sys_module_rows()


SYSCTL_ROOT = "/proc/sys"
SYSCTL_CONF_DIRS = ("/etc/sysctl.d", "/run/sysctl.d", "/usr/local/lib/sysctl.d", "/usr/lib/sysctl.d", "/lib/sysctl.d")
SYSCTL_CONF = "/etc/sysctl.conf"


def sysctl_name(relpath: str) -> str:
    """kernel/ostype -> kernel.ostype; a dot inside a component (eth0.100) becomes "/", as sysctl(8) writes it."""
    return ".".join(part.replace(".", "/") for part in relpath.split("/"))


def sysctl_relpath(name: str) -> str:
    """The reverse of :func:`sysctl_name`."""
    return "/".join(part.replace("/", ".") for part in name.split("."))


def parse_sysctl_conf(text: str) -> dict[str, str]:
    """sysctl.d(5) lines: "key = value", # and ; comments, a leading - (ignore errors) dropped.

    A key whose first separator is "/" uses "/" between components; it is
    rewritten to the dotted form.
    """
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#;" or "=" not in line:
            continue
        key, _, value = line.partition("=")
        key = key.strip().lstrip("-").strip()
        if "/" in key and ("." not in key or key.index("/") < key.index(".")):
            key = sysctl_name(key.strip("/"))
        out[key] = value.strip()
    return out


def sysctl_config(dirs: tuple[str, ...] = SYSCTL_CONF_DIRS, conf: str = SYSCTL_CONF) -> dict[str, str]:
    """Configured values the way systemd-sysctl applies them: *.conf files by name, the
    first directory winning for a name, /etc/sysctl.conf last."""
    chosen: dict[str, str] = {}
    for d in dirs:
        try:
            names = os.listdir(d)
        except OSError:
            continue
        for name in names:
            if name.endswith(".conf"):
                chosen.setdefault(name, f"{d}/{name}")
    config: dict[str, str] = {}
    for path in [chosen[n] for n in sorted(chosen)] + [conf]:
        data = procfs.read_or_none(path)
        if data is not None:
            config.update(parse_sysctl_conf(decode(data)))
    return config


def _config_value(config: dict[str, str], name: str) -> str | None:
    if name in config:
        return config[name]
    for key, value in config.items():
        if "*" in key and fnmatchcase(name, key):
            return value
    return None


def _walk_sysctl(root: str, relpath: str, dev: int | None = None):
    """(relpath, value bytes) for each readable file below root/relpath, directories first, sorted.

    Other filesystems mounted inside (binfmt_misc, often behind autofs) are not
    entered: they hold no sysctls, and entering an automount point would mount it.
    """
    path = f"{root}/{relpath}" if relpath else root
    try:
        dev = os.stat(root).st_dev if dev is None else dev
        entries = sorted(os.scandir(path), key=lambda e: (not e.is_dir(follow_symlinks=False), e.name))
    except OSError:
        return
    for entry in entries:
        rel = f"{relpath}/{entry.name}" if relpath else entry.name
        if entry.is_dir(follow_symlinks=False):
            try:
                same_fs = entry.stat(follow_symlinks=False).st_dev == dev
            except OSError:
                continue
            if same_fs:
                yield from _walk_sysctl(root, rel, dev)
        else:
            data = _read_sysctl(entry.path)
            if data is not None:
                yield rel, data


def _read_sysctl(path: str) -> bytes | None:
    try:
        return procfs.read(path)
    except OSError:
        return None  # write-only (vm.compact_memory), root-only or refusing reads


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
    config = sysctl_config() if ctx.used("config_value") else {}
    for relpath, data in _sysctl_items(ctx):
        name = sysctl_name(relpath)
        value = decode(data).strip()
        yield {
            "name": name,
            "subsystem": name.split(".", 1)[0],
            "current_value": value,
            "config_value": _config_value(config, name),
            "type": _value_type(value),
        }


def _sysctl_items(ctx):
    names = ctx.eq("name")
    if names is not None:
        for name in names:
            relpath = sysctl_relpath(name) if isinstance(name, str) else ""
            parts = relpath.split("/")
            if "" in parts or ".." in parts or "." in parts or not os.path.isfile(f"{SYSCTL_ROOT}/{relpath}"):
                continue
            data = _read_sysctl(f"{SYSCTL_ROOT}/{relpath}")
            if data is not None:
                yield relpath, data
        return
    subsystems = ctx.eq("subsystem")
    if subsystems is None:
        yield from _walk_sysctl(SYSCTL_ROOT, "")
        return
    for sub in subsystems:
        if isinstance(sub, str) and sub and "/" not in sub and sub not in (".", ".."):
            yield from _walk_sysctl(SYSCTL_ROOT, sub)
