"""Mandatory access control state: SELinux settings from selinuxfs, AppArmor profiles from securityfs.

Both read the kernel's own files; a kernel without the module (or with the
file system not mounted) gives no rows.
"""

from __future__ import annotations

import os

from ..sql.schema import TEXT, Column, table
from ..text import decode
from ._common import lazy_module

procfs = lazy_module("streamq.host.procfs")

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


def _listdir(path: str) -> list[str]:
    try:
        return sorted(os.listdir(path))
    except OSError:
        return []


def selinux_rows(root: str):
    for key in SELINUX_ROOT_KEYS:
        yield {"scope": "", "key": key, "value": _read_text(f"{root}/{key}")}
    for scope in SELINUX_SCOPES:
        for key in _listdir(f"{root}/{scope}"):
            path = f"{root}/{scope}/{key}"
            if os.path.isdir(path):
                continue
            value = _read_text(path)
            yield {"scope": scope, "key": key, "value": _boolean(value) if scope == "booleans" else value}
    for klass in _listdir(f"{root}/class"):  # class/<class>/perms/<permission>: one row per permission
        for permission in _listdir(f"{root}/class/{klass}/perms"):
            yield {"scope": "class", "key": klass, "value": permission}


@table(
    "selinux_settings",
    "SELinux settings from selinuxfs: enforcing mode, policy version, booleans, capabilities, classes.",
    [
        Column(
            "scope",
            TEXT,
            "Where the key is: empty for the root, booleans, policy_capabilities, initial_contexts or class.",
        ),
        Column("key", TEXT, "Key name (for class: the class)."),
        Column("value", TEXT, "Value (booleans: on or off; class: one permission)."),
    ],
    examples=("SELECT value FROM selinux_settings WHERE scope = '' AND key = 'enforce'",),
    cost=2000,
)
def gen_selinux_settings(ctx):
    root = selinuxfs_mount(procfs.read_or_none("/proc/self/mounts") or b"")
    if root is not None:
        yield from selinux_rows(root)


def apparmor_rows(root: str = APPARMOR_PROFILES):
    for entry in _listdir(root):
        path = f"{root}/{entry}"
        yield {
            "path": path,
            "name": _read_text(f"{path}/name"),
            "attach": _read_text(f"{path}/attach"),
            "mode": _read_text(f"{path}/mode"),
            "sha1": _read_text(f"{path}/sha1"),
            "sha256": _read_text(f"{path}/sha256"),
        }


@table(
    "apparmor_profiles",
    "AppArmor profiles loaded in the kernel, with their mode (enforce, complain...) and hashes.",
    [
        Column("path", TEXT, "The profile's directory in securityfs.", index=True),
        Column("name", TEXT, "Profile name."),
        Column("attach", TEXT, "Which executables the profile attaches to."),
        Column("mode", TEXT, "enforce, complain, kill or unconfined."),
        Column("sha1", TEXT, "SHA-1 of the loaded policy, where the kernel hashes with SHA-1."),
        Column("sha256", TEXT, "SHA-256 of the loaded policy, where the kernel hashes with SHA-256."),
    ],
    examples=("SELECT name, mode FROM apparmor_profiles WHERE mode = 'complain'",),
    cost=200,
)
def gen_apparmor_profiles(ctx):
    paths = ctx.eq("path")
    for row in apparmor_rows():
        if paths is None or row["path"] in paths:
            yield row
