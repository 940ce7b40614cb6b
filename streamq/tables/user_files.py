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
import re
from collections.abc import Collection, Iterator

from ..host import procfs
from ..host.safefile import read_regular
from ..sql.schema import BIGINT, INTEGER, TEXT, Column, table
from ..text import decode, encode_path, fsdecode
from ._common import PID_WITH_NAMESPACE, lazy_module, namespaces

accounts = lazy_module("streamq.host.accounts")

_MAX_USER_FILE = 64 << 20  # a history file past this is not read (a sparse or runaway file)


def read_user_file(path: str, uid: int, owners: Collection[int] | None = None) -> bytes | None:
    """The content of a file in ``uid``'s home, or None if absent, unsafe or unreadable.

    ``owners``: the uids the file may belong to, by default the user and root; a
    symlink as the last component is refused (a user could point it at /etc/shadow).
    """
    allowed = owners if owners is not None else (uid, 0)
    return read_regular(encode_path(path), max_bytes=_MAX_USER_FILE, owners=allowed, follow=False)


def _lines(data: bytes) -> list[str]:
    return [decode(line.rstrip(b"\r")) for line in data.split(b"\n")]


# --- shell_history ---------------------------------------------------------------------

HISTORY_FILES = (".bash_history", ".zsh_history", ".zhistory", ".history", ".sh_history")
_BASH_TIME = re.compile(r"^#(\d+)$")  # written before each command when HISTTIMEFORMAT is set
_ZSH_EXTENDED = re.compile(r"^: {0,10}(\d{1,11}):\d+;(.*)$", re.DOTALL)  # ": <start>:<elapsed>;<command>"
_ZSH_META = 0x83


def unmetafy(data: bytes) -> bytes:
    """zsh writes bytes 0x83-0xa2 (and NUL) as 0x83 followed by the byte XOR 0x20."""
    if _ZSH_META not in data:
        return data
    out = bytearray()
    it = iter(data)
    for b in it:
        out.append((next(it, 0x20) ^ 0x20) if b == _ZSH_META else b)
    return bytes(out)


def parse_shell_history(data: bytes) -> Iterator[tuple[int | None, str]]:
    """(time, command) pairs of a bash, zsh or sh history file; time is None when not recorded."""
    lines = _lines(data)
    pending: int | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line:
            continue
        if pending is None and (m := _BASH_TIME.match(line)):
            pending = int(m.group(1))
            continue
        if pending is not None:
            yield pending, line
            pending = None
            continue
        m = _ZSH_EXTENDED.match(line)
        if m is None:
            yield None, line
            continue
        command = m.group(2)
        while command.endswith("\\") and i < len(lines):  # zsh keeps multi-line commands as \-newline
            command = command[:-1] + "\n" + lines[i]
            i += 1
        yield int(m.group(1)), command


def shell_history_rows(uid: int, home: str) -> Iterator[tuple]:
    for name in HISTORY_FILES:
        path = os.path.join(home, name)
        data = read_user_file(path, uid)
        if not data:
            continue
        if "zsh" in name or name == ".zhistory":
            data = unmetafy(data)
        for when, command in parse_shell_history(data):
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


# --- authorized_keys and known_hosts -------------------------------------------------------

AUTHORIZED_KEYS_FILES = (".ssh/authorized_keys", ".ssh/authorized_keys2")
# Key types as sshd names them; anything before one of these on a line is the options field.
_KEY_TYPE = re.compile(r"(ssh-|ecdsa-|sk-|rsa-sha2-|x509v3-|pgp-|spki-)[\w@.+-]*$")


def _split_options(line: str) -> tuple[str, str]:
    """Split off the leading options field, whose quoted values may contain spaces."""
    quoted = False
    i = 0
    while i < len(line):
        c = line[i]
        if c == "\\" and quoted:
            i += 2
            continue
        if c == '"':
            quoted = not quoted
        elif c in " \t" and not quoted:
            break
        i += 1
    return line[:i], line[i:].lstrip()


def parse_authorized_key(line: str) -> tuple[str | None, str | None, str | None, str | None] | None:
    """(options, algorithm, key, comment) of one authorized_keys line, None for blanks and comments."""
    line = line.strip()
    if not line or line.startswith("#"):
        return None
    options = None
    first = line.split(None, 1)[0]
    if not _KEY_TYPE.match(first) and not first.isdigit():
        options, line = _split_options(line)
    parts = line.split(None, 2)
    if parts and parts[0].isdigit():
        # SSH protocol 1: bits, exponent, modulus, comment.
        key = " ".join(parts[:3]) if len(parts) >= 3 else line
        rest = line.split(None, 3)
        return options, None, key, rest[3].strip() if len(rest) > 3 else None
    algorithm = parts[0] if parts else None
    key = parts[1] if len(parts) > 1 else None
    comment = parts[2].strip() if len(parts) > 2 else None
    return options, algorithm, key, comment or None


def authorized_keys_rows(uid: int, home: str, *, root: str = "", pid: int = 0) -> Iterator[tuple]:
    owners = None
    if pid:  # the container's uid 0 and the user may be other uids on the host (a user namespace)
        ranges = accounts.host_ids(pid)
        owners = {accounts.to_host_uid(u, ranges) for u in (uid, 0)}
    for name in AUTHORIZED_KEYS_FILES:
        path = os.path.join(home, name)
        data = read_user_file(root + path, uid, owners)
        if not data:
            continue
        for line in _lines(data):
            parsed = parse_authorized_key(line)
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
    data = read_user_file(path, uid)
    if not data:
        return
    for line in _lines(data):
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


# --- crontab ------------------------------------------------------------------------------

SYSTEM_CRONTAB = "/etc/crontab"
CRON_DIRS = ("/etc/cron.d", "/var/spool/cron", "/var/spool/cron/crontabs")
_CRON_ENV = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\s*=")  # SHELL=/bin/sh, MAILTO = root


def parse_crontab(data: bytes) -> Iterator[tuple[str | None, ...]]:
    """(event, minute, hour, day_of_month, month, day_of_week, command) per job line.

    As in osquery, the command of a system crontab (/etc/crontab, /etc/cron.d)
    starts with the user field: the format is the same up to there.
    """
    for line in _lines(data):
        line = line.strip()
        if not line or line.startswith("#") or _CRON_ENV.match(line):
            continue
        if line.startswith("@"):
            parts = line.split(None, 1)
            if len(parts) == 2:
                yield (parts[0], None, None, None, None, None, parts[1])
            continue
        parts = line.split(None, 5)
        if len(parts) == 6:
            yield (None, *parts)


def crontab_files(root: str = "") -> list[str]:
    """Crontab paths as the (possibly namespaced) system sees them."""
    paths = [SYSTEM_CRONTAB]
    for directory in CRON_DIRS:
        try:
            names = sorted(os.listdir(root + directory))
        except OSError:
            continue
        paths += [f"{directory}/{decode_path(n)}" for n in names if os.path.isfile(os.path.join(root + directory, n))]
    return paths


def crontab_rows(path: str, *, root: str = "", pid: int = 0) -> Iterator[tuple]:
    data = procfs.read_or_none(encode_path(root + path))
    if data:
        for job in parse_crontab(data):
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
        for path in crontab_files(root):
            yield from crontab_rows(path, root=root, pid=pid)


# --- sudoers ------------------------------------------------------------------------------

SUDOERS = "/etc/sudoers"
_MAX_NEST = 128  # sudoers(5): at most 128 nested include files
_INCLUDE = re.compile(r"^([#@])(include|includedir)\s+(.+)$")


def _logical_lines(data: bytes) -> Iterator[str]:
    """Lines with backslash-newline continuations joined, as sudo reads them."""
    held = ""
    for line in _lines(data):
        if line.endswith("\\"):
            held += line[:-1]
            continue
        yield held + line
        held = ""
    if held:
        yield held


def _include_path(raw: str, source: str) -> str:
    path = raw.strip()
    if len(path) >= 2 and path[0] == path[-1] == '"':
        path = path[1:-1].replace('\\"', '"')
    if "%h" in path:  # sudoers(5): %h is the short host name
        import socket

        path = path.replace("%h", socket.gethostname().split(".")[0])
    return path if path.startswith("/") else os.path.join(os.path.dirname(source), path)


def sudoers_rows(path: str, *, depth: int = 1, seen: frozenset[str] = frozenset()) -> Iterator[tuple]:
    """(source, header, rule_details) for each rule of ``path`` and of the files it includes.

    An include gets its own row (header ``include``/``includedir``, as osquery
    writes them; ``@include``/``@includedir`` keep their ``@``) before the
    included rules.
    """
    if depth > _MAX_NEST or path in seen:
        return
    data = procfs.read_or_none(encode_path(path))
    if data is None:
        return
    seen = seen | {path}
    for line in _logical_lines(data):
        line = line.strip()
        m = _INCLUDE.match(line)
        if m:
            sigil, directive, target = m.groups()
            target = _include_path(target, path)
            yield (path, directive if sigil == "#" else sigil + directive, target)
            if directive == "include":
                yield from sudoers_rows(target, depth=depth + 1, seen=seen)
            else:
                yield from _sudoers_dir(target, depth + 1, seen)
            continue
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        yield (path, parts[0], " ".join(parts[1:]))


def _sudoers_dir(directory: str, depth: int, seen: frozenset[str]) -> Iterator[tuple]:
    try:
        names = sorted(os.listdir(encode_path(directory)))
    except OSError:
        return
    for raw in names:
        name = decode_path(raw)
        # sudoers(5): files whose names end in ~ or contain a dot are skipped (editor backups, .dpkg-old).
        if "." in name or name.endswith("~"):
            continue
        full = os.path.join(directory, name)
        if os.path.isfile(encode_path(full)):
            yield from sudoers_rows(full, depth=depth, seen=seen)


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
    yield from sudoers_rows(SUDOERS)
