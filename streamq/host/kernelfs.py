"""The kernel's state in /proc and /sys: mounts, modules and sysctl values, and the sysctl.d files.

Pure parsers over bytes (``parse_*``) and the readers the kernel tables use.
"""

from __future__ import annotations

import os
import re
from fnmatch import fnmatchcase

from ..text import decode, fsdecode
from . import procfs

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


def mount_space(path: str, fstype: str) -> os.statvfs_result | None:
    """statvfs of a mount point, or None for network and FUSE filesystems (a dead server would block it)."""
    if fstype in _REMOTE_TYPES or fstype.startswith("fuse"):
        return None
    try:
        return os.statvfs(path)
    except (OSError, ValueError):
        return None


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


def config_value(config: dict[str, str], name: str) -> str | None:
    """The configured value of sysctl ``name``: its own key, else the first glob key (net.ipv4.conf.*.x) matching it."""
    if name in config:
        return config[name]
    for key, value in config.items():
        if "*" in key and fnmatchcase(name, key):
            return value
    return None


def walk_sysctl(root: str, relpath: str, dev: int | None = None):
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
                yield from walk_sysctl(root, rel, dev)
        else:
            data = read_sysctl(entry.path)
            if data is not None:
                yield rel, data


def read_sysctl(path: str) -> bytes | None:
    """A sysctl file's value, or None for those that refuse reads."""
    try:
        return procfs.read(path)
    except OSError:
        return None  # write-only (vm.compact_memory), root-only or refusing reads
