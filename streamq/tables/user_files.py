"""Files that configure or record what users do: shell_history, authorized_keys,
known_hosts, crontab, sudoers.

Files in home directories belong to their users, who may point them anywhere,
so they are opened without following a final symlink, without blocking on a
FIFO, and are read only when they are regular files owned by that user or by
root. A user can then not make a query running as root read, say, /etc/shadow
by linking it as their ~/.bash_history.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from ..host import procfs
from ..sql.schema import BIGINT, INTEGER, TEXT, Column, table
from ..text import encode_path
from ._common import PID_WITH_NAMESPACE, lazy_module, namespaces

accounts = lazy_module("streamq.host.accounts")
safefile = lazy_module("streamq.host.safefile")
userfiles = lazy_module("streamq.host.userfiles")


def shell_history_rows(uid: int, home: str) -> Iterator[tuple]:
    for name in userfiles.HISTORY_FILES:
        path = os.path.join(home, name)
        data = safefile.read_user_file(path, uid)
        if not data:
            continue
        if "zsh" in name or name == ".zhistory":
            data = userfiles.unmetafy(data)
        for when, command in userfiles.parse_shell_history(data):
            yield (uid, when, command, path)


@table(
    "shell_history",
    "Commands from each local user's shell history files (bash, zsh, sh).",
    [
        Column("uid", BIGINT, "ID of the user whose home holds the history file.", additional=True),
        Column("time", INTEGER, "When the command started, seconds since the Unix epoch; NULL if not recorded."),
        Column("command", TEXT, "The command line as the shell saved it."),
        Column("history_file", TEXT, "Path of the history file."),
    ],
    examples=(
        "SELECT uid, time, command FROM shell_history WHERE uid = 0",
        "SELECT history_file, count(*) FROM shell_history GROUP BY history_file",
    ),
    cost=5000,
)
def gen_shell_history(ctx):
    for user in accounts.read_users(uids=ctx.eq("uid")):
        yield from shell_history_rows(user.uid, user.home)


def authorized_keys_rows(uid: int, home: str, *, root: str = "", pid: int = 0) -> Iterator[tuple]:
    owners = None
    if pid:  # the container's uid 0 and the user may be other uids on the host (a user namespace)
        ranges = accounts.host_ids(pid)
        owners = {accounts.to_host_uid(u, ranges) for u in (uid, 0)}
    for name in userfiles.AUTHORIZED_KEYS_FILES:
        path = os.path.join(home, name)
        data = safefile.read_user_file(root + path, uid, owners)
        if not data:
            continue
        for line in userfiles.text_lines(data):
            parsed = userfiles.parse_authorized_key(line)
            if parsed is not None:
                yield (uid, parsed[1], parsed[2], parsed[0], parsed[3], path, pid)


@table(
    "authorized_keys",
    "Public keys that may log in as each local user, from ~/.ssh/authorized_keys and authorized_keys2.",
    [
        Column("uid", BIGINT, "ID of the user the key logs in as.", additional=True),
        Column("algorithm", TEXT, "Key type, e.g. ssh-ed25519 or ssh-rsa."),
        Column("key", TEXT, "The base64-encoded public key."),
        Column("options", TEXT, "The options field before the key (from=, command=...), if any."),
        Column("comment", TEXT, "The comment after the key, often user@host."),
        Column("key_file", TEXT, "Path of the file the key is in."),
        PID_WITH_NAMESPACE,
    ],
    examples=("SELECT uid, algorithm, comment, key_file FROM authorized_keys",),
    cost=500,
)
def gen_authorized_keys(ctx):
    for pid, root, _mnt in namespaces(ctx):
        for user in accounts.read_users(root, ctx.eq("uid")):
            yield from authorized_keys_rows(user.uid, user.home, root=root, pid=pid)


def known_hosts_rows(uid: int, home: str) -> Iterator[tuple]:
    path = os.path.join(home, ".ssh/known_hosts")
    data = safefile.read_user_file(path, uid)
    if not data:
        return
    for line in userfiles.text_lines(data):
        line = line.strip()
        if line and not line.startswith("#"):
            yield (uid, line, path)


@table(
    "known_hosts",
    "Host keys each local user has accepted, from ~/.ssh/known_hosts.",
    [
        Column("uid", BIGINT, "ID of the user whose file it is.", index=True),
        Column("key", TEXT, "The whole entry: host patterns (or their hash), key type, key and comment."),
        Column("key_file", TEXT, "Path of the known_hosts file."),
    ],
    examples=("SELECT uid, key_file, count(*) FROM known_hosts GROUP BY uid, key_file",),
    cost=500,
)
def gen_known_hosts(ctx):
    for user in accounts.read_users(uids=ctx.eq("uid")):
        yield from known_hosts_rows(user.uid, user.home)


def crontab_rows(path: str, *, root: str = "", pid: int = 0) -> Iterator[tuple]:
    data = procfs.read_or_none(encode_path(root + path))
    if data:
        for job in userfiles.parse_crontab(data):
            yield (*job, path, pid)


@table(
    "crontab",
    "Scheduled jobs from the system crontab, /etc/cron.d and the users' crontabs.",
    [
        Column("event", TEXT, "A special schedule such as @reboot or @daily, instead of the time fields."),
        Column("minute", TEXT, "Minute field."),
        Column("hour", TEXT, "Hour field."),
        Column("day_of_month", TEXT, "Day of the month field."),
        Column("month", TEXT, "Month field."),
        Column("day_of_week", TEXT, "Day of the week field."),
        Column("command", TEXT, "The rest of the line; in system crontabs it begins with the user to run as."),
        Column("path", TEXT, "File the job is in."),
        PID_WITH_NAMESPACE,
    ],
    examples=("SELECT event, minute, hour, command, path FROM crontab",),
    cost=50,
)
def gen_crontab(ctx):
    for pid, root, _mnt in namespaces(ctx):
        for path in userfiles.crontab_files(root):
            yield from crontab_rows(path, root=root, pid=pid)


@table(
    "sudoers",
    "Rules of /etc/sudoers and of the files it includes.",
    [
        Column("source", TEXT, "File the rule is in."),
        Column(
            "header", TEXT, "First word of the rule: a user, %group, alias keyword, Defaults, or include/includedir."
        ),
        Column("rule_details", TEXT, "The rest of the rule, whitespace collapsed."),
    ],
    examples=("SELECT header, rule_details, source FROM sudoers",),
    cost=50,
)
def gen_sudoers(ctx):
    yield from userfiles.sudoers_rows(userfiles.SUDOERS)
