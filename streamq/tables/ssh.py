"""OpenSSH client settings and the private keys in users' ~/.ssh directories."""

from __future__ import annotations

import os

from ..sql.schema import BIGINT, INTEGER, TEXT, Column, table
from ._common import PID_WITH_NAMESPACE, lazy_module, namespaces

accounts = lazy_module("streamq.host.accounts")
safefile = lazy_module("streamq.host.safefile")
sshfiles = lazy_module("streamq.host.sshfiles")

SYSTEM_SSH_CONFIG = "/etc/ssh/ssh_config"
_MAX_FILE = 1 << 20  # a key or client config past 1 MiB is not one


def read_user_file(path: str, owners) -> bytes | None:
    """A file in a user's home, refused when it is a symlink or owned by someone else."""
    return safefile.read_regular(os.fsencode(path), max_bytes=_MAX_FILE, owners=owners, follow=False)


def _owners(uid: int, pid: int) -> set[int]:
    if not pid:
        return {uid, 0}
    ranges = accounts.host_ids(pid)  # a container's uids are other uids on the host
    return {accounts.to_host_uid(u, ranges) for u in (uid, 0)}


def ssh_config_rows(uid: int, path: str, data: bytes | None):
    for block, option in sshfiles.parse_ssh_config(data or b""):
        yield {"uid": uid, "block": block, "option": option, "ssh_config_file": path}


@table(
    "ssh_configs",
    "OpenSSH client options from /etc/ssh/ssh_config and each user's ~/.ssh/config, by Host or Match block.",
    [
        Column("uid", BIGINT, "ID of the user whose config it is (0 for the system-wide file).", additional=True),
        Column("block", TEXT, "The Host or Match line the option is under, lowercased; empty before any."),
        Column("option", TEXT, "The option line, lowercased."),
        Column("ssh_config_file", TEXT, "Path of the config file."),
    ],
    examples=("SELECT * FROM ssh_configs WHERE option LIKE 'proxycommand %'",),
    cost=200,
)
def gen_ssh_configs(ctx):
    for user in accounts.read_users(uids=ctx.eq("uid")):
        path = os.path.join(user.home, ".ssh/config")
        yield from ssh_config_rows(user.uid, path, read_user_file(path, {user.uid, 0}))
    uids = ctx.eq("uid")
    if uids is None or 0 in uids:
        yield from ssh_config_rows(0, SYSTEM_SSH_CONFIG, read_user_file(SYSTEM_SSH_CONFIG, None))


def user_key_rows(uid: int, home: str, *, root: str = "", pid: int = 0):
    directory = os.path.join(home, ".ssh")
    try:
        names = sorted(os.listdir(root + directory))
    except OSError:
        return
    owners = _owners(uid, pid)
    for name in names:
        path = os.path.join(directory, name)
        data = read_user_file(root + path, owners)
        if not data or not sshfiles.is_private_key(data):
            continue
        key = sshfiles.describe_key(data)
        yield {
            "uid": uid,
            "path": path,
            "encrypted": key.encrypted,
            "key_type": key.key_type,
            "key_group_name": key.group,
            "key_length": key.bits,
            "key_security_bits": key.security_bits,
            "pid_with_namespace": pid,
        }


@table(
    "user_ssh_keys",
    "Private keys in each user's ~/.ssh directory: whether they are encrypted, their type and strength.",
    [
        Column("uid", BIGINT, "ID of the user whose home holds the key.", additional=True),
        Column("path", TEXT, "Path of the key file.", index=True),
        Column("encrypted", INTEGER, "1 when the key is protected by a passphrase."),
        Column("key_type", TEXT, "rsa, dsa, ec, ed25519 or ed448; NULL when encrypted or unknown."),
        Column("key_group_name", TEXT, "Curve of an EC key, in OpenSSL's name (prime256v1, secp384r1)."),
        Column("key_length", INTEGER, "Key size in bits as OpenSSL gives it (253 for Ed25519)."),
        Column("key_security_bits", INTEGER, "Bits of security per NIST SP 800-57, as OpenSSL rounds them."),
        PID_WITH_NAMESPACE,
    ],
    examples=("SELECT uid, path, key_type, key_length FROM user_ssh_keys WHERE encrypted = 0",),
    cost=200,
)
def gen_user_ssh_keys(ctx):
    for pid, root, _mnt in namespaces(ctx):
        for user in accounts.read_users(root, ctx.eq("uid")):
            yield from user_key_rows(user.uid, user.home, root=root, pid=pid)
