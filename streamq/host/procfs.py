"""Reading /proc: small pure parsers over bytes plus per-pid readers.

Per-pid readers raise :class:`ProcessGone` when the process exited between
listing /proc and reading it, so a table skips that row and keeps going.
Files are read with ``os.open``/``os.read``: for the small files of /proc that
is about half the cost of ``open().read()``, which matters at 1,000 processes.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from functools import cache
from typing import NamedTuple

from ..errors import ProcessGone
from ..text import decode, decode_path

PROC = "/proc"


def read(path: str | bytes) -> bytes:
    """The whole content of a (virtual) file; /proc may hand it out a page at a time."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks = []
        while chunk := os.read(fd, 131072):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_small(path: str | bytes) -> bytes:
    """One read call, for the files the kernel writes in one go and far under 64 KiB
    (/proc/<pid>/stat, status, io, statm): saves the second, empty read of :func:`read`."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return os.read(fd, 65536)
    finally:
        os.close(fd)


def read_or_none(path: str | bytes) -> bytes | None:
    try:
        return read(path)
    except OSError:
        return None


def read_text(path: str | bytes) -> str | None:
    """A one-line value of /proc, /sys or /etc as stripped text; None when absent, unreadable or empty."""
    data = read_or_none(path)
    if data is None:
        return None
    return decode(data.strip()) or None


def int_or_none(value: bytes | str | None) -> int | None:
    """A decimal number read from a file (surrounding whitespace allowed), or None."""
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def read_int(path: str | bytes) -> int | None:
    """A /proc or /sys file that holds one number, or None."""
    return int_or_none(read_or_none(path))


def readlink_or_none(path: str) -> str | None:
    try:
        return decode(os.fsencode(os.readlink(path)))
    except OSError:
        return None


def readlink_path(path: str) -> str | None:
    """A link's target as path text (:func:`streamq.text.decode_path`), or None.

    The hot path of ``processes``: most targets are ASCII without a backslash and skip the decoding.
    """
    try:
        target = os.readlink(path)
    except OSError:
        return None
    return target if target.isascii() and "\\" not in target else decode_path(target)


def pids(root: str = PROC) -> list[int]:
    return [int(name) for name in os.listdir(root) if name.isdigit()]


@cache
def clock_ticks() -> int:
    return os.sysconf("SC_CLK_TCK")


@cache
def page_size() -> int:
    return os.sysconf("SC_PAGE_SIZE")


def uptime(root: str = PROC) -> float:
    """Seconds since the host booted (the first field of /proc/uptime)."""
    return float(read(f"{root}/uptime").split()[0])


def fd_targets(pid: int, root: str = PROC) -> list[tuple[int, str | None]] | None:
    """(fd, what it points to) of each open file descriptor of ``pid``, by fd; None when gone or not ours."""
    fd_dir = f"{root}/{pid}/fd/"
    try:
        fds = sorted(int(fd) for fd in os.listdir(fd_dir))
    except OSError:
        return None
    return [(fd, readlink_path(f"{fd_dir}{fd}")) for fd in fds]


def boot_time(root: str = PROC) -> int:
    for line in read(f"{root}/stat").splitlines():
        if line.startswith(b"btime "):
            return int(line.split()[1])
    return 0


class Stat(NamedTuple):
    name: str
    state: str
    ppid: int
    pgrp: int
    utime: int
    stime: int
    nice: int
    threads: int
    starttime: int
    vsize: int
    rss_pages: int


def parse_stat(data: bytes) -> Stat:
    """/proc/<pid>/stat. The name may hold spaces and ')', so split at the last ')'."""
    lpar, rpar = data.index(b"("), data.rindex(b")")
    f = data[rpar + 2 :].split()
    return Stat(
        name=decode(data[lpar + 1 : rpar]),
        state=f[0].decode(),
        ppid=int(f[1]),
        pgrp=int(f[2]),
        utime=int(f[11]),
        stime=int(f[12]),
        nice=int(f[16]),
        threads=int(f[17]),
        starttime=int(f[19]),
        vsize=int(f[20]),
        rss_pages=int(f[21]),
    )


def parse_status_ids(data: bytes) -> tuple[list[int], list[int]]:
    """Uid and Gid lines of /proc/<pid>/status: [real, effective, saved, fs] each."""
    uids: list[int] = []
    gids: list[int] = []
    start = data.find(b"\nUid:")
    if start >= 0:
        end = data.index(b"\n", start + 1)
        uids = [int(x) for x in data[start + 5 : end].split()]
        gend = data.find(b"\n", end + 1)
        gline = data[end + 1 : gend if gend >= 0 else None]
        if gline.startswith(b"Gid:"):
            gids = [int(x) for x in gline[4:].split()]
    return uids, gids


def parse_cmdline(data: bytes) -> str:
    """NUL-separated arguments joined by spaces (the trailing NUL dropped)."""
    return decode(data.rstrip(b"\0").replace(b"\0", b" "))


def parse_io(data: bytes) -> dict[str, int]:
    out = {}
    for line in data.splitlines():
        key, _, value = line.partition(b":")
        out[key.decode()] = int(value)
    return out


def parse_cgroup(data: bytes) -> str | None:
    """The unified (v2) cgroup path, else the first controller's path."""
    if data.startswith(b"0::") and data.count(b"\n") == 1:
        return decode(data[3:-1])  # a pure cgroup v2 host's single line: the common case, made quick
    first = None
    for line in data.splitlines():
        parts = line.split(b":", 2)
        if len(parts) != 3:
            continue
        if parts[0] == b"0" and parts[1] == b"":
            return decode(parts[2])
        first = first or decode(parts[2])
    return first


def parse_environ(data: bytes) -> list[tuple[str, str]]:
    pairs = []
    for item in data.split(b"\0"):
        if not item:
            continue
        key, _, value = item.partition(b"=")
        pairs.append((decode(key), decode(value)))
    return pairs


def stat_of(pid: int, root: str = PROC) -> Stat:
    """The parsed stat of ``pid``; ProcessGone if it no longer exists."""
    try:
        return parse_stat(read_small(f"{root}/{pid}/stat"))
    except (FileNotFoundError, ProcessLookupError) as err:
        raise ProcessGone(pid) from err


def namespace_inode(pid: int | str, kind: str, root: str = PROC) -> str | None:
    """The inode number of a process's namespace, as text (osquery's form)."""
    link = readlink_or_none(f"{root}/{pid}/ns/{kind}")
    if link is None:
        return None
    return link[link.find("[") + 1 : -1] if "[" in link else link


def read_once(path: str | bytes, size: int = 65536) -> bytes:
    """The whole content of a /proc file that the kernel hands out in one read when
    the buffer is big enough (cmdline, environ, single-record files like cgroup), so a
    short read is the end: this saves :func:`read`'s extra, empty read. Not for
    multi-record files (maps, /proc/net/*), which come a page at a time."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        data = os.read(fd, size)
        if len(data) < size:
            return data
        chunks = [data]
        while chunk := os.read(fd, 131072):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def is_thread_group_leader(pid: int) -> bool:
    """Whether ``pid`` is a process, not one of its threads (whose /proc/<tid> exists but is not listed)."""
    try:
        data = read_small(f"{PROC}/{pid}/status")
    except OSError:
        return False
    start = data.find(b"\nTgid:")
    return start >= 0 and int(data[start + 6 : data.index(b"\n", start + 1)]) == pid


def parse_io_bytes(data: bytes) -> tuple[int | None, int | None]:
    """read_bytes and write_bytes of /proc/<pid>/io, which the kernel prints in a fixed order."""
    f = data.split()
    if len(f) >= 12 and f[8] == b"read_bytes:" and f[10] == b"write_bytes:":
        return int(f[9]), int(f[11])
    io = parse_io(data)
    return io.get("read_bytes"), io.get("write_bytes")


def parse_maps(data: bytes) -> Iterator[tuple]:
    """Lines of /proc/<pid>/maps as (start, end, permissions, offset, device, inode, path, pseudo)."""
    for line in data.splitlines():
        parts = line.split(None, 5)
        if len(parts) < 5:
            continue
        start, sep, end = parts[0].partition(b"-")
        try:
            offset, inode = int(parts[2], 16), int(parts[4])
        except ValueError:
            continue
        if not sep:
            continue
        path = decode(parts[5]) if len(parts) > 5 else None
        yield (
            "0x" + start.decode(),
            "0x" + end.decode(),
            parts[1].decode(),
            offset,
            parts[3].decode(),
            inode,
            path,
            1 if inode == 0 and path else 0,
        )
