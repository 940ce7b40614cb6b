"""Audit events -> rows of osquery's audit tables (user_events, process_file_events,
selinux_events, apparmor_events, seccomp_events), as plain dicts.

Values follow osquery's: record types as numbers (user_events) or names (selinux,
apparmor), process_file_events' ids as text, seccomp's arch, syscall and action
as names. Unlike osquery, a seccomp action keeps its name when it carries data
(ERRNO with an errno is ERRNO), and process_file_events reports the file
operations any loaded rule (``auditctl -w PATH -p wa``) records, rather than
installing rules of its own.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from .auditlog import (
    APPARMOR_TYPES,
    AUDIT_CWD,
    AUDIT_PATH,
    AUDIT_SECCOMP,
    AUDIT_SYSCALL,
    SELINUX_TYPES,
    Record,
    is_user_message,
    number,
    parse_fields,
)
from .syscalls import X86_64

ARCH_X86_64, ARCH_AARCH64 = 0xC000003E, 0xC00000B7
ARCHES = {
    ARCH_X86_64: "X86_64", 0x40000003: "I386", ARCH_AARCH64: "AARCH64", 0x40000028: "ARM",
    0xC0000015: "PPC64LE", 0x80000015: "PPC64", 0x80000016: "S390X", 0xC00000F3: "RISCV64",
}  # fmt: skip
# aarch64 (and other asm-generic arches): only the file operations, for process_file_events.
_GENERIC_FILE_SYSCALLS = {
    5: "setxattr", 6: "lsetxattr", 7: "fsetxattr", 14: "removexattr", 15: "lremovexattr", 16: "fremovexattr",
    33: "mknodat", 34: "mkdirat", 35: "unlinkat", 36: "symlinkat", 37: "linkat", 38: "renameat",
    45: "truncate", 46: "ftruncate", 52: "fchmod", 53: "fchmodat", 54: "fchownat", 55: "fchown",
    56: "openat", 64: "write", 66: "writev", 68: "pwrite64", 70: "pwritev", 88: "utimensat",
    265: "open_by_handle_at", 276: "renameat2", 287: "pwritev2", 437: "openat2",
}  # fmt: skip
SECCOMP_ACTIONS = {
    0x80000000: "KILL_PROCESS", 0x00000000: "KILL_THREAD", 0x00030000: "TRAP", 0x00050000: "ERRNO",
    0x7FC00000: "USER_NOTIF", 0x7FF00000: "TRACE", 0x7FFC0000: "LOG", 0x7FFF0000: "ALLOW",
}  # fmt: skip
_FILE_OPERATIONS = {
    "open": "open", "openat": "open", "openat2": "open", "open_by_handle_at": "open", "creat": "open+truncate",
    "write": "write", "pwrite64": "write", "writev": "write", "pwritev": "write", "pwritev2": "write",
    "truncate": "truncate", "ftruncate": "truncate",
    "unlink": "unlink", "unlinkat": "unlink", "rmdir": "rmdir",
    "rename": "rename", "renameat": "rename", "renameat2": "rename",
    "link": "link", "linkat": "link", "symlink": "symlink", "symlinkat": "symlink",
    "mkdir": "mkdir", "mkdirat": "mkdir", "mknod": "mknod", "mknodat": "mknod",
    "chmod": "chmod", "fchmod": "chmod", "fchmodat": "chmod", "fchmodat2": "chmod",
    "chown": "chown", "fchown": "chown", "lchown": "chown", "fchownat": "chown",
    "setxattr": "setxattr", "lsetxattr": "setxattr", "fsetxattr": "setxattr",
    "removexattr": "removexattr", "lremovexattr": "removexattr", "fremovexattr": "removexattr",
    "utime": "utime", "utimes": "utime", "utimensat": "utime", "futimesat": "utime",
}  # fmt: skip
_O_TRUNC = 0o1000
_OPEN_FLAGS_ARG = {"open": "a1", "openat": "a2"}
_IDS = ("uid", "gid", "auid", "euid", "egid", "fsuid", "fsgid", "suid", "sgid")
_APPARMOR_TEXT = ("apparmor", "operation", "profile", "name", "comm", "denied_mask", "capname", "requested_mask",
                  "info", "error", "namespace", "label")  # fmt: skip
_APPARMOR_NUMBERS = ("parent", "pid", "fsuid", "ouid", "capability")


def syscall_name(arch: int | None, nr: int | None) -> str | None:
    if nr is None:
        return None
    if arch == ARCH_X86_64:
        return X86_64.get(nr)
    return _GENERIC_FILE_SYSCALLS.get(nr) if arch == ARCH_AARCH64 else None


def rows(event: list[Record], uptime: int) -> Iterator[tuple[str, dict]]:
    """(table, row) for every row one event makes."""
    for record in event:
        kind = record.type
        if is_user_message(kind):
            yield "user_events", user_row(record, uptime)
        if kind in SELINUX_TYPES and not (kind == 1400 and "apparmor=" in record.body):
            yield "selinux_events", {"type": SELINUX_TYPES[kind], "message": record.raw, "uptime": uptime}
        elif kind in APPARMOR_TYPES or (kind == 1400 and "apparmor=" in record.body):
            yield "apparmor_events", apparmor_row(record, uptime)
        elif kind == AUDIT_SECCOMP:
            yield "seccomp_events", seccomp_row(record, uptime)
    if any(r.type == AUDIT_PATH for r in event):
        row = file_row(event, uptime)
        if row is not None:
            yield "process_file_events", row


def user_row(record: Record, uptime: int) -> dict:
    f = parse_fields(record.body)
    return {
        "uid": number(f, "uid"),
        "auid": number(f, "auid"),
        "pid": number(f, "pid"),
        "message": f.get("msg"),
        "type": record.type,
        "path": f.get("exe"),
        "address": f.get("addr"),
        "terminal": f.get("terminal"),
        "uptime": uptime,
    }


def apparmor_row(record: Record, uptime: int) -> dict:
    f = parse_fields(record.body)
    row: dict = {"type": APPARMOR_TYPES.get(record.type, "AVC"), "message": record.raw, "uptime": uptime}
    row.update({key: f.get(key) for key in _APPARMOR_TEXT})
    row.update({key: number(f, key) for key in _APPARMOR_NUMBERS})
    return row


def seccomp_row(record: Record, uptime: int) -> dict:
    f = parse_fields(record.body)
    arch, nr, code = number(f, "arch", 16), number(f, "syscall"), number(f, "code", 16)
    name = syscall_name(arch, nr) if arch == ARCH_X86_64 else None
    return {
        "uptime": uptime,
        **{key: number(f, key) for key in ("auid", "uid", "gid", "ses", "pid")},
        "comm": f.get("comm"),
        "exe": f.get("exe"),
        "sig": number(f, "sig"),
        "arch": ARCHES.get(arch, f.get("arch")) if arch is not None else None,
        "syscall": name or (str(nr) if nr is not None else None),
        "compat": number(f, "compat"),
        "ip": f.get("ip"),
        "code": None if code is None else SECCOMP_ACTIONS.get(code & 0xFFFF0000, f.get("code")),
    }


def file_row(event: list[Record], uptime: int) -> dict | None:
    """The file operation of a syscall event with PATH records; None for other syscalls."""
    syscall = next((r for r in event if r.type == AUDIT_SYSCALL), None)
    if syscall is None:
        return None
    f = parse_fields(syscall.body)
    name = syscall_name(number(f, "arch", 16), number(f, "syscall"))
    operation = _FILE_OPERATIONS.get(name or "")
    if operation is None:
        return None
    if name in _OPEN_FLAGS_ARG and (number(f, _OPEN_FLAGS_ARG[name], 16) or 0) & _O_TRUNC:
        operation = "open+truncate"
    cwd_record = next((r for r in event if r.type == AUDIT_CWD), None)
    cwd = parse_fields(cwd_record.body).get("cwd") if cwd_record is not None else None
    path, dest = _paths(name, [parse_fields(r.body) for r in event if r.type == AUDIT_PATH], cwd)
    return {
        "operation": operation,
        "pid": number(f, "pid"),
        "ppid": number(f, "ppid"),
        "executable": f.get("exe"),
        "partial": "false" if cwd is not None and path is not None else "true",
        "cwd": cwd,
        "path": path,
        "dest_path": dest,
        **{key: f.get(key) for key in _IDS},
        "uptime": uptime,
    }


def _paths(syscall: str | None, items: list[dict], cwd: str | None) -> tuple[str | None, str | None]:
    """(path, dest_path): for rename the old and new names, for link the existing file and
    the new name, else the object of the call (the last item that is not a parent dir)."""
    by_type: dict[str, str] = {}
    for item in items:
        if item.get("name") is not None:
            by_type.setdefault(item.get("nametype") or "", item["name"])
    objects = [i["name"] for i in items if i.get("name") is not None and i.get("nametype") != "PARENT"]
    if syscall in ("rename", "renameat", "renameat2"):
        return _absolute(by_type.get("DELETE"), cwd), _absolute(by_type.get("CREATE"), cwd)
    if syscall in ("link", "linkat"):
        return _absolute(by_type.get("NORMAL"), cwd), _absolute(by_type.get("CREATE"), cwd)
    return _absolute(objects[-1] if objects else None, cwd), None


def _absolute(name: str | None, cwd: str | None) -> str | None:
    if name is None:
        return None
    if not name.startswith("/") and cwd:
        name = os.path.join(cwd, name)
    return os.path.normpath(name)
