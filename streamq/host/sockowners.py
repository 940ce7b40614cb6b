"""Which process holds each socket, and which process stands for each network namespace.

A socket's holder is found from the other side: the socket inodes behind every
process's fds (/proc/<pid>/fd/N -> socket:[inode]), as osquery does.
"""

from __future__ import annotations

import os
from collections.abc import Container, Mapping

from . import procfs

_DIR_FD_THRESHOLD = 16  # below this many fds, opening the directory costs more than it saves


def self_netns() -> str | None:
    """The inode of this process's network namespace."""
    return procfs.namespace_inode("self", "net")


def net_namespaces(pids, *, include_own: bool = True) -> dict[str | None, int | str]:
    """net namespace -> one pid living in it; this process's namespace maps to 'self'.

    ``include_own``: read our namespace even when none of ``pids`` is in it. A pid
    whose namespace link cannot be read counts as ours (no better guess exists).
    """
    own = self_netns()
    namespaces: dict[str | None, int | str] = {own: "self"} if include_own else {}
    for pid in pids:
        ns = procfs.namespace_inode(pid, "net")
        if ns is None or ns == own:
            namespaces[own] = "self"
        elif ns not in namespaces:
            namespaces[ns] = pid
    return namespaces


def owners(pids) -> dict[int, tuple[int, int]]:
    """socket inode -> (pid, fd); the first (lowest-listed) holder wins for shared sockets."""
    found: dict[int, tuple[int, int]] = {}
    for pid in pids:
        for inode, fd in socket_fds(pid):
            found.setdefault(inode, (pid, fd))
    return found


class OwnerCache:
    """socket inode -> (pid, fd), kept between queries and checked before use.

    Finding a socket's holder means reading every fd link of every process (about
    1,900 readlinks here). Between two queries most sockets keep their holder, so a
    remembered owner is confirmed with one readlink of its fd; only an inode seen
    for the first time costs a full walk. Inodes a walk could not place (held by a
    process we may not inspect) are remembered too, so they do not force a walk
    on every query.
    """

    def __init__(self) -> None:
        self.owner: dict[int, tuple[int, int]] = {}
        self.unplaced: set[int] = set()

    def resolve(self, inodes: set[int], pids) -> dict[int, tuple[int, int]]:
        found: dict[int, tuple[int, int]] = {}
        unknown = False
        by_pid: dict[int, list[tuple[int, int]]] = {}
        for inode in inodes:
            cached = self.owner.get(inode)
            if cached is not None:
                by_pid.setdefault(cached[0], []).append((inode, cached[1]))
            elif inode not in self.unplaced:
                unknown = True
        for pid, held in by_pid.items():
            confirmed = _confirm(pid, held)
            for inode, fd in held:
                if inode in confirmed:
                    found[inode] = (pid, fd)
                else:
                    del self.owner[inode]
                    unknown = True
        if unknown:
            self.owner = owners(pids)
            found = {inode: self.owner[inode] for inode in inodes if inode in self.owner}
            self.unplaced = inodes - found.keys()
        else:
            self.unplaced &= inodes  # forget sockets that are gone
        return found


def _confirm(pid: int, held: list[tuple[int, int]]) -> set[int]:
    """The inodes of ``held`` (inode, fd) that ``pid`` still holds at that fd."""
    try:
        dfd = os.open(b"/proc/%d/fd" % pid, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return set()
    readlink = os.readlink
    confirmed = set()
    try:
        for inode, fd in held:
            try:
                if readlink(b"%d" % fd, dir_fd=dfd) == b"socket:[%d]" % inode:
                    confirmed.add(inode)
            except OSError:
                pass
    finally:
        os.close(dfd)
    return confirmed


def socket_fds(
    pid: int,
    proc: str = procfs.PROC,
    *,
    before: Mapping[bytes, int] | None = None,
    live: Container[int] = frozenset(),
    now: dict[bytes, int] | None = None,
) -> list[tuple[int, int]]:
    """(socket inode, fd) for every socket ``pid`` holds.

    Bytes names skip filename decoding; for a process with many fds, readlink
    relative to the open directory skips a path walk per descriptor. Kernel
    threads (most pids on a quiet host) have no fds and cost one listdir.

    A caller that walks the same process again (the socket source, every poll)
    passes ``now``, filled with fd name -> socket inode (0: not a socket), and
    gives it back next time as ``before``: a link is then read only for an fd
    that is new, or whose socket is not in ``live`` (its number may be reused).
    """
    path = b"%s/%d/fd" % (os.fsencode(proc), pid)
    try:
        names = os.listdir(path)
    except OSError:
        return []  # gone, or not ours to see
    if not names:
        return []
    dfd = None
    if len(names) >= _DIR_FD_THRESHOLD:
        try:
            dfd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            return []
    prefix = path + b"/"
    readlink = os.readlink
    found = []
    try:
        for name in names:
            inode = before.get(name) if before is not None else None
            if inode is None or (inode and inode not in live):
                try:
                    target = readlink(prefix + name) if dfd is None else readlink(name, dir_fd=dfd)
                except OSError:
                    continue  # closed meanwhile
                inode = int(target[8:-1]) if target[:8] == b"socket:[" else 0
            if inode:
                found.append((inode, int(name)))
            if now is not None:
                now[name] = inode
    finally:
        if dfd is not None:
            os.close(dfd)
    return found
