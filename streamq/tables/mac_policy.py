"""Mandatory access control state: SELinux settings from selinuxfs, AppArmor profiles from securityfs.

Both read the kernel's own files (host/macpolicy); a kernel without the module
(or with the file system not mounted) gives no rows.
"""

from __future__ import annotations

from ..sql.schema import TEXT, Column, table
from ._common import lazy_module

procfs = lazy_module("streamq.host.procfs")
macpolicy = lazy_module("streamq.host.macpolicy")


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
    root = macpolicy.selinuxfs_mount(procfs.read_or_none("/proc/self/mounts") or b"")
    if root is not None:
        yield from macpolicy.selinux_rows(root)


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
    for row in macpolicy.apparmor_rows():
        if paths is None or row["path"] in paths:
            yield row
