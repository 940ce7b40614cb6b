"""Mandatory access control state as the kernel shows it: SELinux's selinuxfs, AppArmor's
profiles in securityfs. A kernel without the module (or without the file system mounted)
gives nothing.
"""

from __future__ import annotations

import os

from ..text import decode
from . import dirs, procfs

APPARMOR_PROFILES = "/sys/kernel/security/apparmor/policy/profiles"
SELINUX_ROOT_KEYS = ("checkreqprot", "deny_unknown", "enforce", "mls", "policyvers", "reject_unknown")
SELINUX_SCOPES = ("booleans", "policy_capabilities", "initial_contexts")


def selinuxfs_mount(mounts: bytes) -> str | None:
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[2] == b"selinuxfs":
            return decode(fields[1])
    return None


def _read_text(path: str) -> str | None:
    data = procfs.read_or_none(path)
    return None if data is None else decode(data).rstrip("\n\0")


def _boolean(raw: str | None) -> str | None:
    """A boolean file holds "<current> <pending>"; osquery shows on/off when both agree."""
    return {"0 0": "off", "1 1": "on"}.get(raw or "", raw)


def selinux_rows(root: str):
    for key in SELINUX_ROOT_KEYS:
        yield {"scope": "", "key": key, "value": _read_text(f"{root}/{key}")}
    for scope in SELINUX_SCOPES:
        for key in dirs.names(f"{root}/{scope}"):
            path = f"{root}/{scope}/{key}"
            if os.path.isdir(path):
                continue
            value = _read_text(path)
            yield {"scope": scope, "key": key, "value": _boolean(value) if scope == "booleans" else value}
    for klass in dirs.names(f"{root}/class"):  # class/<class>/perms/<permission>: one row per permission
        for permission in dirs.names(f"{root}/class/{klass}/perms"):
            yield {"scope": "class", "key": klass, "value": permission}


def apparmor_rows(root: str = APPARMOR_PROFILES):
    for entry in dirs.names(root):
        path = f"{root}/{entry}"
        yield {
            "path": path,
            "name": _read_text(f"{path}/name"),
            "attach": _read_text(f"{path}/attach"),
            "mode": _read_text(f"{path}/mode"),
            "sha1": _read_text(f"{path}/sha1"),
            "sha256": _read_text(f"{path}/sha256"),
        }
