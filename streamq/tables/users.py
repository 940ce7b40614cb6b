"""Accounts and logins: users, groups, user_groups, shadow, logged_in_users, last.

Accounts come from the local files (see :mod:`streamq.host.accounts`); logins from
the utmp and wtmp record files (see :mod:`streamq.host.utmp`).
"""

from __future__ import annotations

from ..host import procfs
from ..sql.schema import BIGINT, INTEGER, TEXT, Column, table
from ._common import PID_WITH_NAMESPACE, lazy_module, namespaces

accounts = lazy_module("streamq.host.accounts")
utmp = lazy_module("streamq.host.utmp")


def _signed(value: int) -> int:
    """An unsigned 32-bit id as the C int it also is (4294967294 is -2)."""
    return value - (1 << 32) if value >= 1 << 31 else value


@table(
    "users",
    "Local user accounts from /etc/passwd.",
    [
        Column("uid", BIGINT, "User ID.", index=True),
        Column("gid", BIGINT, "Primary group ID."),
        Column("uid_signed", BIGINT, "User ID read as a signed 32-bit number."),
        Column("gid_signed", BIGINT, "Primary group ID read as a signed 32-bit number."),
        Column("username", TEXT, "Login name.", additional=True),
        Column("description", TEXT, "The GECOS field: usually the full name."),
        Column("directory", TEXT, "Home directory."),
        Column("shell", TEXT, "Login shell."),
        Column("uuid", TEXT, "Account UUID; Linux accounts have none, so always NULL.", index=True),
        PID_WITH_NAMESPACE,
        Column(
            "include_remote",
            INTEGER,
            "Set to 1 to list every account the name service knows (LDAP, systemd...), not only local ones.",
            additional=True,
            hidden=True,
        ),
    ],
    examples=(
        "SELECT uid, username, shell FROM users WHERE uid = 0",
        "SELECT username, directory FROM users WHERE shell NOT LIKE '%nologin' AND shell NOT LIKE '%false'",
    ),
    cost=50,
)
def gen_users(ctx):
    if ctx.eq("uuid") is not None:
        return  # no Linux account has a UUID, so nothing can match
    remote = ctx.eq("include_remote")
    if remote and any(remote):
        yield from _user_rows(ctx, accounts.nss_users(), pid=0, remote=1)
        return
    for ns in namespaces(ctx):
        yield from _user_rows(ctx, accounts.read_users(ns.root), pid=ns.pid, remote=0)


def _user_rows(ctx, users, *, pid: int, remote: int):
    uids = ctx.eq("uid")
    names = ctx.eq("username")
    for u in users:
        if uids is not None and u.uid not in uids:
            continue
        if names is not None and u.name not in names:
            continue
        yield (
            u.uid,
            u.gid,
            _signed(u.uid),
            _signed(u.gid),
            u.name,
            u.gecos,
            u.home,
            u.shell,
            None,
            pid,
            remote,
        )


@table(
    "groups",
    "Local groups from /etc/group.",
    [
        Column("gid", BIGINT, "Group ID.", index=True),
        Column("gid_signed", BIGINT, "Group ID read as a signed 32-bit number."),
        Column("groupname", TEXT, "Group name."),
        PID_WITH_NAMESPACE,
    ],
    examples=("SELECT gid, groupname FROM groups WHERE gid < 1000 ORDER BY gid",),
    cost=60,
)
def gen_groups(ctx):
    gids = ctx.eq("gid")
    for ns in namespaces(ctx):
        for g in accounts.read_groups(ns.root):
            if gids is None or g.gid in gids:
                yield (g.gid, _signed(g.gid), g.name, ns.pid)


@table(
    "user_groups",
    "Which groups each local user belongs to: the primary group and every supplementary one.",
    [
        Column("uid", BIGINT, "User ID.", index=True),
        Column("gid", BIGINT, "ID of a group the user is in.", index=True),
    ],
    examples=(
        "SELECT g.groupname FROM user_groups ug JOIN groups g USING (gid) WHERE ug.uid = 0",
        "SELECT u.username FROM users u JOIN user_groups ug USING (uid) WHERE ug.gid = 27",
    ),
    cost=100,
)
def gen_user_groups(ctx):
    users = accounts.read_users(uids=ctx.eq("uid"))
    gids = ctx.eq("gid")
    member_of: dict[str, list[int]] = {}
    for g in accounts.read_groups():
        for name in g.members:
            member_of.setdefault(name, []).append(g.gid)
    for u in users:
        # getgrouplist(3) order: the primary group first, then /etc/group order, no repeats.
        for gid in dict.fromkeys([u.gid, *member_of.get(u.name, ())]):
            if gids is None or gid in gids:
                yield (u.uid, gid)


@table(
    "shadow",
    "Password aging and status of local accounts from /etc/shadow (needs root); the hashes stay hidden.",
    [
        Column("password_status", TEXT, "active, locked, empty (no password needed) or not_set."),
        Column("hash_alg", TEXT, "The crypt scheme id of the hash (1 MD5, 5 SHA-256, 6 SHA-512, y yescrypt...)."),
        Column("last_change", BIGINT, "Day of the last password change, counted in days since 1970-01-01."),
        Column("min", BIGINT, "Days before the password may be changed again."),
        Column("max", BIGINT, "Days after which the password must be changed."),
        Column("warning", BIGINT, "Days of warning before the password expires."),
        Column("inactive", BIGINT, "Days after expiry before the account is disabled."),
        Column("expire", BIGINT, "Day the account expires, counted in days since 1970-01-01."),
        Column("flag", BIGINT, "Reserved field."),
        Column("username", TEXT, "Login name.", index=True),
    ],
    examples=("SELECT username, password_status, hash_alg FROM shadow WHERE password_status = 'active'",),
    cost=50,
)
def gen_shadow(ctx):
    data = procfs.read_or_none("/etc/shadow")
    if not data:
        return  # absent, or not root
    names = ctx.eq("username")
    for s in accounts.parse_shadow(data):
        if names is None or s.name in names:
            yield (*s[1:], s.name)


# osquery's names for ut_type (the values of <utmp.h>: EMPTY 0 ... ACCOUNTING 9), one set per table.
# Plain numbers, so that importing this module does not import the utmp reader.
_LOGIN_TYPES = dict(
    enumerate(("empty", "runlevel", "boot_time", "new_time", "old_time", "init", "login", "user", "dead", "accounting"))
)
_LAST_TYPES = dict(
    enumerate(
        (
            *("empty", "run-level", "boot-time", "new-time", "old-time"),
            *("init-process", "login-process", "user-process", "dead-process", "accounting"),
        )
    )
)


@table(
    "logged_in_users",
    "Current sessions and terminal lines from the utmp file.",
    [
        Column("type", TEXT, "Record kind: user (a logged-in session), login, init, dead, boot_time, runlevel..."),
        Column("user", TEXT, "Login name."),
        Column("tty", TEXT, "Terminal line, e.g. pts/0."),
        Column("host", TEXT, "Remote host name or address the session came from."),
        Column("time", BIGINT, "When the record was written, seconds since the Unix epoch."),
        Column("pid", INTEGER, "Process ID of the login shell or getty."),
    ],
    examples=("SELECT user, tty, host, time FROM logged_in_users WHERE type = 'user'",),
    cost=10,
)
def gen_logged_in_users(ctx):
    yield from logged_in_rows(utmp.UTMP)


def logged_in_rows(path: str):
    for r in utmp.read_utmp(path):
        if r.pid == 1:
            continue  # init's own runlevel and boot records, which osquery leaves out too
        yield (_LOGIN_TYPES.get(r.type, "unknown"), r.user, r.line, r.host, r.time, r.pid)


@table(
    "last",
    "Login history from the wtmp file: logins, logouts, boots and shutdowns.",
    [
        Column("username", TEXT, "Login name, or reboot / shutdown for system records."),
        Column("tty", TEXT, "Terminal line, e.g. pts/0 (~ for system records)."),
        Column("pid", INTEGER, "Process ID of the session."),
        Column("type", INTEGER, "The record's ut_type number (7 login, 8 logout, 2 boot...)."),
        Column("type_name", TEXT, "The record's type as a name, e.g. user-process or dead-process."),
        Column("time", INTEGER, "When the record was written, seconds since the Unix epoch."),
        Column("host", TEXT, "Remote host of a login, or the kernel release for a boot record."),
    ],
    examples=("SELECT username, tty, host, time FROM last WHERE type = 7 ORDER BY time DESC LIMIT 10",),
    cost=1000,
)
def gen_last(ctx):
    yield from last_rows(utmp.WTMP)


def last_rows(path: str):
    for r in utmp.read_utmp(path):
        yield (r.user, r.line, r.pid, r.type, _LAST_TYPES.get(r.type, "unknown"), r.time, r.host)
