"""Local accounts: pure parsers for /etc/passwd, /etc/group and /etc/shadow.

The tables read the files, not NSS: that is what ``getent`` shows for local
accounts, it costs no library calls per user, and the same code can read a
container's files through ``/proc/<pid>/root`` (osquery's ``pid_with_namespace``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import NamedTuple

from ..text import decode, fsdecode
from . import procfs

_ID_LIMIT = 1 << 32  # uid_t and gid_t are unsigned 32-bit


class User(NamedTuple):
    name: str
    uid: int
    gid: int
    gecos: str
    home: str
    shell: str


class Group(NamedTuple):
    name: str
    gid: int
    members: tuple[str, ...]


class Shadow(NamedTuple):
    name: str
    password_status: str
    hash_alg: str | None
    last_change: int | None
    min: int | None
    max: int | None
    warning: int | None
    inactive: int | None
    expire: int | None
    flag: int | None


def _id(field: bytes) -> int | None:
    try:
        value = int(field)
    except ValueError:
        return None
    return value if 0 <= value < _ID_LIMIT else None


def _records(data: bytes, fields: int) -> list[list[bytes]]:
    """Colon-separated records; comments, NIS compat lines (+/-) and short lines are skipped."""
    out = []
    for line in data.splitlines():
        if not line or line[:1] in (b"#", b"+", b"-"):
            continue
        parts = line.split(b":", fields - 1)
        if len(parts) >= fields and parts[0]:
            out.append(parts)
    return out


def parse_passwd(data: bytes) -> list[User]:
    users = []
    for name, _pw, uid, gid, gecos, home, shell in _records(data, 7):
        uid_, gid_ = _id(uid), _id(gid)
        if uid_ is None or gid_ is None:
            continue
        users.append(User(decode(name), uid_, gid_, decode(gecos), decode(home), decode(shell)))
    return users


def parse_group(data: bytes) -> list[Group]:
    groups = []
    for name, _pw, gid, members in _records(data, 4):
        gid_ = _id(gid)
        if gid_ is None:
            continue
        names = tuple(decode(m.strip()) for m in members.split(b",") if m.strip())
        groups.append(Group(decode(name), gid_, names))
    return groups


# What crypt(3) names the scheme: "$6$..." is SHA-512, "$y$..." yescrypt, "$2b$..." bcrypt.
_HASH_ALG = re.compile(rb"^\$(\w+)\$")


def password_status(hashed: bytes) -> str:
    """osquery's reading of a shadow password field, which never reveals the hash."""
    if hashed == b"!!":
        return "not_set"  # useradd without passwd on Red Hat systems
    if hashed[:1] in (b"!", b"*", b"x"):
        return "locked"
    if not hashed:
        return "empty"
    return "active"


def _days(field: bytes | None) -> int | None:
    # Empty shadow fields mean "no limit" / "never"; glibc reports -1, we report NULL.
    if not field:
        return None
    try:
        return int(field)
    except ValueError:
        return None


def parse_shadow(data: bytes) -> list[Shadow]:
    rows = []
    for line in data.splitlines():
        if not line or line[:1] in (b"#", b"+", b"-"):
            continue
        parts = line.split(b":", 8)
        if len(parts) < 2 or not parts[0]:
            continue
        parts += [b""] * (9 - len(parts))
        alg = _HASH_ALG.match(parts[1])
        rows.append(
            Shadow(
                decode(parts[0]),
                password_status(parts[1]),
                decode(alg.group(1)) if alg else None,
                *(_days(f) for f in parts[2:9]),
            )
        )
    return rows


def host_ids(pid: int | None) -> dict[int, tuple[int, int]] | None:
    """The process's user namespace uid map as {first inside id: (first outside id, count)},
    or None when it shares ours, so files it owns can be checked by their host uid."""
    data = procfs.read_or_none(f"/proc/{pid}/uid_map") if pid else None
    if not data or data.split() == [b"0", b"0", b"4294967295"]:
        return None
    ranges = {}
    for line in data.splitlines():
        try:
            inside, outside, count = (int(f) for f in line.split())
        except ValueError:
            continue
        ranges[inside] = (outside, count)
    return ranges


def to_host_uid(uid: int, ranges: dict[int, tuple[int, int]] | None) -> int | None:
    if ranges is None:
        return uid
    for inside, (outside, count) in ranges.items():
        if inside <= uid < inside + count:
            return outside + uid - inside
    return None


def read_users(root: str = "", uids: Iterable[object] | None = None) -> list[User]:
    """Users of ``root``/etc/passwd, optionally only those whose uid is in ``uids``."""
    data = procfs.read_or_none(f"{root}/etc/passwd")
    users = parse_passwd(data) if data else []
    if uids is not None:
        wanted = set(uids)
        users = [u for u in users if u.uid in wanted]
    return users


def read_groups(root: str = "") -> list[Group]:
    data = procfs.read_or_none(f"{root}/etc/group")
    return parse_group(data) if data else []


def user_homes(uids: Iterable[object] | None = None, *, root: str = "") -> list[tuple[int, str]]:
    """(uid, home directory) of each account in ``root``/etc/passwd, optionally only for ``uids``;
    duplicates dropped."""
    wanted = None if uids is None else {u for u in uids if isinstance(u, int)}
    homes = {
        (user.uid, user.home): None
        for user in read_users(root)
        if user.home.startswith("/") and (wanted is None or user.uid in wanted)
    }
    return list(homes)


def nss_users() -> list[User]:
    """Every account the name service switch knows (local files first, then LDAP, systemd...)."""
    import pwd

    return [
        User(fsdecode(p.pw_name), p.pw_uid, p.pw_gid, fsdecode(p.pw_gecos), fsdecode(p.pw_dir), fsdecode(p.pw_shell))
        for p in pwd.getpwall()
    ]


class IdNames:
    """uid/gid -> name, each looked up once; osquery shows the number when there is no name."""

    def __init__(self) -> None:
        self._users: dict[int, str] = {}
        self._groups: dict[int, str] = {}

    def user(self, uid: int) -> str:
        if uid not in self._users:
            import pwd

            try:
                self._users[uid] = pwd.getpwuid(uid).pw_name
            except KeyError:
                self._users[uid] = str(uid)
        return self._users[uid]

    def group(self, gid: int) -> str:
        if gid not in self._groups:
            import grp

            try:
                self._groups[gid] = grp.getgrgid(gid).gr_name
            except KeyError:
                self._groups[gid] = str(gid)
        return self._groups[gid]
