"""Inter-process objects the kernel lists in /proc: System V shared memory, keys, pipes.

The parsers take the file's bytes, so tests can feed captured text; the
readers take the /proc root as a parameter.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from typing import NamedTuple

from ..text import decode

PROC = "/proc"

# Flags the kernel keeps in the mode word of a shared memory segment (linux/shm.h).
SHM_DEST = 0o1000  # marked for removal once the last process detaches
SHM_LOCKED = 0o2000  # locked in memory (SHM_LOCK)

_SHM_FIELDS = ("key", "shmid", "perms", "size", "cpid", "lpid", "nattch", "uid", "gid", "cuid", "cgid")


def lsperms(mode: int) -> str:
    """Four octal digits of a mode word, as osquery writes IPC permissions ("0600", "1600")."""
    return "".join(str((mode >> shift) & 7) for shift in (9, 6, 3, 0))


def parse_sysvipc_shm(data: bytes) -> list[dict]:
    """Rows of /proc/sysvipc/shm, whose header line names the columns; perms is octal."""
    lines = data.splitlines()
    if not lines:
        return []
    header = decode(lines[0]).split()
    rows = []
    for line in lines[1:]:
        fields = line.split()
        if len(fields) != len(header):
            continue
        values = dict(zip(header, fields))
        try:
            row = {name: int(values[name], 8 if name == "perms" else 10) for name in _SHM_FIELDS}
            row.update({t: int(values[t]) for t in ("atime", "dtime", "ctime") if t in values})
        except (KeyError, ValueError):
            continue
        rows.append(row)
    return rows


class Key(NamedTuple):
    serial_number: str
    flags: str
    usage: int
    timeout: str
    permissions: str
    uid: int
    gid: int
    type: str
    description: str


def parse_proc_keys(data: bytes) -> list[Key]:
    """/proc/keys: serial flags usage timeout perm uid gid type description[: summary].

    The description may hold spaces, so the line is split eight times only.
    """
    keys = []
    for line in data.splitlines():
        fields = decode(line).split(None, 8)
        if len(fields) < 9:
            continue
        try:
            keys.append(Key(*fields[:2], int(fields[2]), *fields[3:5], int(fields[5]), int(fields[6]), *fields[7:]))
        except ValueError:
            continue
    return keys


class Pipe(NamedTuple):
    pid: int
    fd: int
    mode: str
    inode: int
    type: str  # "anonymous" or "named"


def fd_mode(link_mode: int) -> str:
    """The open mode of a descriptor: /proc/<pid>/fd/<n> links carry r and w bits as opened."""
    mode = ""
    if link_mode & (stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH):
        mode += "r"
    if link_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH):
        mode += "w"
    return mode


def pipe_inode(target: str) -> int | None:
    """The inode of an anonymous pipe's link target, "pipe:[12345]"."""
    if target.startswith("pipe:[") and target.endswith("]"):
        try:
            return int(target[6:-1])
        except ValueError:
            return None
    return None


def process_pipes(pid: int, root: str = PROC) -> Iterator[Pipe]:
    """The pipes (anonymous and FIFOs) among a process's open descriptors."""
    fd_dir = f"{root}/{pid}/fd"
    try:
        fds = os.listdir(fd_dir)
    except OSError:
        return
    for name in fds:
        pipe = _pipe_of(pid, fd_dir, name)
        if pipe is not None:
            yield pipe


def _pipe_of(pid: int, fd_dir: str, name: str) -> Pipe | None:
    link = f"{fd_dir}/{name}"
    try:
        target = os.readlink(link)
        mode = fd_mode(os.lstat(link).st_mode)
    except OSError:
        return None
    inode = pipe_inode(target)
    if inode is not None:
        return Pipe(pid, int(name), mode, inode, "anonymous")
    if not target.startswith("/"):  # socket:[..], anon_inode:..: not a FIFO
        return None
    try:
        st = os.stat(link)  # follows the descriptor itself, also when the FIFO was unlinked
    except OSError:
        return None
    if not stat.S_ISFIFO(st.st_mode):
        return None
    return Pipe(pid, int(name), mode, st.st_ino, "named")


def pipe_rows(pipes: list[Pipe]) -> Iterator[dict]:
    """One row per (end, partner end) of each pipe, as osquery pairs them.

    Ends of one inode are partners when their modes differ or one is "rw"; an
    end with no other end of its inode gets a row with NULL partner columns.
    """
    by_inode: dict[int, list[Pipe]] = {}
    for p in pipes:
        by_inode.setdefault(p.inode, []).append(p)
    for p in pipes:
        base = {"pid": p.pid, "fd": p.fd, "mode": p.mode, "inode": p.inode, "type": p.type}
        ends = by_inode[p.inode]
        if len(ends) == 1:
            yield {**base, "partner_pid": None, "partner_fd": None, "partner_mode": None}
            continue
        for other in ends:
            if other is p or not (other.mode != p.mode or p.mode == "rw"):
                continue
            yield {**base, "partner_pid": other.pid, "partner_fd": other.fd, "partner_mode": other.mode}
