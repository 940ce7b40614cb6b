"""socket_events by polling sock_diag: listen, connect, accept and close.

Each poll dumps TCP and UDP (IPv4 and IPv6) and listening unix sockets over one
netlink socket kept open, and diffs the result against the previous poll by
socket inode and state. Addresses are decoded only for the sockets that make a
row, so a quiet poll costs about a microsecond per socket.

Owners come from a cache of inode -> (pid, fd). An inode missing from it
triggers at most one /proc/*/fd walk per poll, which visits first the processes
that appeared since the previous walk, then those known to hold sockets, then
the rest, and stops as soon as every new inode is found. Inodes no process
claims (other pid namespaces, closed already) are remembered as unowned, so
they are not searched for again.

A socket that lives shorter than the poll interval is never seen: that is the
price of polling, and why the interval is configurable ([sources.socket]).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass

from ..config.options import SourceOptions, duration, option
from ..host import procfs, sockowners
from ..host.containerid import Container, ContainerResolver
from ..host.sockdiag import (
    AF_UNIX,
    IPPROTO_TCP,
    IPPROTO_UDP,
    TCP_STATES,
)
from ..host.socket_snapshot import (
    _CONNECTED,
    ESTABLISHED,
    LISTEN,
    Sock,
    SockDiag,
    ntop,
    proc_snapshot,
)
from .base import Source, SourceUnavailable


def reportable(s: Sock) -> bool:
    """Whether a socket in this state is a listen/connect/accept worth a row (and a close later)."""
    if s.family == AF_UNIX:
        return s.state == LISTEN
    if s.protocol == IPPROTO_TCP:
        return s.state == LISTEN or s.state in _CONNECTED
    return s.lport != 0  # UDP: bound (listen) or connected


def classify(s: Sock, before: Sock | None, listening_ports) -> str | None:
    """The action for a socket that is new (``before`` None) or changed state, or None.

    ``listening_ports`` is a set, or a callable returning it (computed only when needed).
    """
    if not reportable(s):
        return None
    if before is not None and reportable(before) and (before.state == s.state or before.state in _CONNECTED):
        return None  # SYN_SENT -> ESTABLISHED is the same connect; no new row
    if s.family == AF_UNIX or s.state == LISTEN:
        return "listen"
    if s.protocol == IPPROTO_UDP:
        return "connect" if s.state == ESTABLISHED else "listen"
    if callable(listening_ports):
        listening_ports = listening_ports()
    if s.state == ESTABLISHED and s.lport in listening_ports:
        return "accept"
    return "connect"


def diff(old: dict[int, Sock], new: dict[int, Sock], reported: set[int]) -> Iterator[tuple[str, int, Sock]]:
    """(action, inode, socket) for what changed between two polls.

    ``reported`` holds the inodes that had a row (or were reportable at start):
    only those get a close row, whatever state they went through since.
    """
    cache: list[set[int]] = []

    def listening() -> set[int]:
        if not cache:
            cache.append({s.lport for s in new.values() if s.state == LISTEN and s.family != AF_UNIX})
        return cache[0]

    previous = old.get
    for inode, s in new.items():
        before = previous(inode)
        if before is s or (before is not None and before.state == s.state):
            continue
        action = classify(s, before, listening)
        if action is not None:
            reported.add(inode)
            yield action, inode, s
    for inode in old.keys() - new.keys():
        if inode in reported:
            reported.discard(inode)
            yield "close", inode, old[inode]


class Owners:
    """socket inode -> (pid, fd), filled by bounded /proc/*/fd walks.

    Each process's fd -> socket inode (0: not a socket) is remembered from the
    last walk, so a walk reads only the links of fds it has not seen before, or
    whose socket has gone since (the number may have been reused). A socket put
    on an fd number that last held a file escapes this quick walk; then one
    full walk (every link read again) follows, so a poll costs two walks at most.
    """

    def __init__(self, proc: str = procfs.PROC) -> None:
        self.proc = proc
        self.owner: dict[int, tuple[int, int] | None] = {}  # None: searched, nobody holds it
        self._fds: dict[int, dict[bytes, int]] = {}  # pid -> fd name -> socket inode or 0
        self._exe: dict[int, str | None] = {}
        self._container: dict[int, Container | None] = {}
        self._containers = ContainerResolver(proc)
        self.walks = 0

    def resolve(self, inodes: set[int], live: dict | set = frozenset()) -> None:
        """Find owners for ``inodes`` not yet in the cache; ``live``: the sockets that exist now."""
        wanted = {i for i in inodes if i not in self.owner}
        if not wanted:
            return
        pids = procfs.pids(self.proc)
        holders = {o[0] for o in self.owner.values() if o is not None}
        fresh = [p for p in pids if p not in self._fds]
        order = fresh + [p for p in pids if p in holders and p not in fresh]
        order += [p for p in pids if p not in holders and p not in fresh]
        for pid in set(self._fds) - set(pids):
            del self._fds[pid]  # exited: its number may come back as another process
            self._exe.pop(pid, None)
            self._container.pop(pid, None)
        for quick in (True, False):
            self.walks += 1
            for pid in order:
                for inode, fd in self._walk(pid, live, quick):
                    if inode in wanted or self.owner.get(inode, 0) is None:
                        self.owner[inode] = (pid, fd)
                        wanted.discard(inode)
                if not wanted:
                    return
        for inode in wanted:
            self.owner[inode] = None

    def _walk(self, pid: int, live, quick: bool) -> list[tuple[int, int]]:
        """(inode, fd) of the sockets ``pid`` holds; links are read only for fds that need a look."""
        now: dict[bytes, int] = {}
        found = sockowners.socket_fds(pid, self.proc, before=self._fds.get(pid) if quick else None, live=live, now=now)
        self._fds[pid] = now
        return found

    def forget(self, inodes) -> None:
        for inode in inodes:
            self.owner.pop(inode, None)

    def exe(self, pid: int) -> str | None:
        path = self._exe.get(pid)
        if path is None:
            path = procfs.readlink_or_none(f"{self.proc}/{pid}/exe")
            if path is not None and path.endswith(" (deleted)"):
                path = path[:-10]
            if len(self._exe) > 4096:
                self._exe.clear()  # pids get reused: keep the cache small rather than exact
            self._exe[pid] = path
        return path

    def container(self, pid: int) -> Container | None:
        """The container ``pid`` runs in, remembered like its executable (a close row's
        process may be gone by the time the row is made)."""
        if pid not in self._container:
            if len(self._container) > 4096:
                self._container.clear()
            self._container[pid] = self._containers.of_pid(pid)
        return self._container[pid]


def socket_event_row(
    action: str, inode: int, s: Sock, owner: tuple[int, int] | None, exe: str | None, container: Container | None = None
) -> dict:
    row = {
        "action": action,
        "family": s.family,
        "protocol": s.protocol if s.family != AF_UNIX else None,
        "socket": str(inode),
        "uid": s.uid,
        "success": 1,
        "status": "CLOSE" if action == "close" else _state_name(s),
        "uptime": int(time.clock_gettime(time.CLOCK_BOOTTIME)),
    }
    if owner is not None:
        row["pid"], row["fd"] = owner[0], str(owner[1])
    if container is not None:
        row["container_id"], row["container_runtime"], row["pod_uid"] = container
    if s.family == AF_UNIX:
        row["path"] = s.addrs
    else:
        row["path"] = exe
        row["local_address"] = ntop(s.family, s.addrs[:16])
        row["remote_address"] = ntop(s.family, s.addrs[16:32])
        row["local_port"], row["remote_port"] = s.lport, s.rport
    return row


def _state_name(s: Sock) -> str | None:
    if s.protocol == IPPROTO_TCP or s.family == AF_UNIX:
        return TCP_STATES[s.state] if s.state < len(TCP_STATES) else None
    return "ESTABLISHED" if s.state == ESTABLISHED else None


@dataclass(frozen=True)
class SocketOptions(SourceOptions):
    interval: float = option(0.25, duration, doc="Between listener polls.")
    connections_interval: float = option(1.0, duration, doc="Between polls of TCP connections.")


class SocketSource(Source):
    """socket_events by polling sock_diag: listeners every interval, connections less often."""

    name = "socket"
    kind = "poll"
    Options = SocketOptions

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.owners = Owners()
        self.reported: set[int] = set()
        self.polls = 0

    async def run(self) -> None:
        interval = max(self.options.interval, 0.01)
        # Connections are diffed every connections_interval, listeners every interval.
        self.full_every = max(1, round(self.options.connections_interval / interval))
        diag: SockDiag | None
        try:
            diag = SockDiag()
            take = diag.snapshot
            self.status.mode = f"sock_diag every {interval * 1000:g} ms"
        except OSError as err:
            diag = None
            take = proc_snapshot
            if not os.path.exists("/proc/net/tcp"):
                raise SourceUnavailable(f"sock_diag: {err.strerror}, and /proc/net/tcp is absent") from err
            self.status.mode = f"polling /proc/net every {interval * 1000:g} ms (sock_diag: {err.strerror})"
        try:
            known = await asyncio.to_thread(self._baseline, take)
            next_at = time.monotonic()
            while True:
                next_at += interval
                delay = next_at - time.monotonic()
                if delay < 0:  # a slow poll: skip the missed ticks instead of bursting
                    next_at = time.monotonic()
                    delay = 0
                await asyncio.sleep(delay)
                known = await asyncio.to_thread(self._poll, take, known)
        finally:
            if diag is not None:
                diag.close()

    def _baseline(self, take) -> dict[int, Sock]:
        """The sockets open at start: no rows, but their owners are found so a close names them."""
        current = take(None)
        self.reported = {inode for inode, s in current.items() if reportable(s)}
        self.owners.resolve(self.reported, current)
        return current

    def _poll(self, take, known: dict[int, Sock]) -> dict[int, Sock]:
        """One diff; runs in a worker thread (the /proc walk may take milliseconds)."""
        self.polls += 1
        full = self.polls % getattr(self, "full_every", 1) == 0
        current = take(known, full=full) if take is not proc_snapshot else take(known)
        changes = list(diff(known, current, self.reported))
        if changes:
            self.owners.resolve({inode for action, inode, _ in changes if action != "close"}, current)
            append = self.ring.append
            for action, inode, s in changes:
                owner = self.owners.owner.get(inode)
                exe = self.owners.exe(owner[0]) if owner is not None and s.family != AF_UNIX else None
                container = self.owners.container(owner[0]) if owner is not None else None
                append(socket_event_row(action, inode, s, owner, exe, container))
        if len(current) != len(known) or changes:
            self.owners.forget(known.keys() - current.keys())
        return current
