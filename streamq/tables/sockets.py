"""listening_ports and process_open_sockets: sockets joined to the processes holding them.

Three sources are correlated, as osquery does: the socket inodes behind each
process's fds (/proc/<pid>/fd), the network namespace of each process, and the
socket tables of each namespace. The namespace this process lives in is read
with sock_diag (fast, kernel-filtered); other namespaces through
/proc/<pid>/net/*, which shows the namespace of that pid.

Following osquery, a socket no process holds (or whose holder this user may
not inspect) has pid -1 and fd -1.
"""

from __future__ import annotations

import os

from ..host import procfs
from ..host.containerid import ContainerResolver
from ..sql.schema import BIGINT, INTEGER, TEXT, Column, table
from ._common import lazy_module

netsock = lazy_module("streamq.host.sockdiag")

_LISTEN_PROTOCOLS = (netsock.IPPROTO_TCP, netsock.IPPROTO_UDP, netsock.IPPROTO_UDPLITE)
_NO_OWNER = (-1, -1)
_DIR_FD_THRESHOLD = 16  # below this many fds, opening the directory costs more than it saves  # osquery's pid and fd for a socket no visible process holds


def _self_netns() -> str | None:
    return procfs.namespace_inode("self", "net")


def _namespaces(pids, *, include_own: bool = True) -> dict[str | None, int | str]:
    """net namespace -> one pid living in it; this process's namespace maps to 'self'.

    ``include_own``: read our namespace even when none of ``pids`` is in it. A pid
    whose namespace link cannot be read counts as ours (no better guess exists).
    """
    own = _self_netns()
    namespaces: dict[str | None, int | str] = {own: "self"} if include_own else {}
    for pid in pids:
        ns = procfs.namespace_inode(pid, "net")
        if ns is None or ns == own:
            namespaces[own] = "self"
        elif ns not in namespaces:
            namespaces[ns] = pid
    return namespaces


def _owners(pids) -> dict[int, tuple[int, int]]:
    """socket inode -> (pid, fd); the first (lowest-listed) holder wins for shared sockets."""
    owners: dict[int, tuple[int, int]] = {}
    for pid in pids:
        for inode, fd in _socket_fds(pid):
            owners.setdefault(inode, (pid, fd))
    return owners


class _OwnerCache:
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
            self.owner = _owners(pids)
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


_LISTENER_OWNERS = _OwnerCache()


def _socket_fds(pid: int) -> list[tuple[int, int]]:
    """(socket inode, fd) for every socket ``pid`` holds.

    Bytes names skip filename decoding; for a process with many fds, readlink
    relative to the open directory skips a path walk per descriptor. Kernel
    threads (most pids on a quiet host) have no fds and cost one listdir.
    """
    path = b"/proc/%d/fd" % pid
    try:
        names = os.listdir(path)
    except OSError:
        return []  # gone, or not ours to see
    if not names:
        return []
    found = []
    readlink = os.readlink
    if len(names) < _DIR_FD_THRESHOLD:
        for name in names:
            try:
                target = readlink(path + b"/" + name)
            except OSError:
                continue  # closed meanwhile
            if target[:8] == b"socket:[":
                found.append((int(target[8:-1]), int(name)))
        return found
    try:
        dfd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return []
    try:
        for name in names:
            try:
                target = readlink(name, dir_fd=dfd)
            except OSError:
                continue
            if target[:8] == b"socket:[":
                found.append((int(target[8:-1]), int(name)))
    finally:
        os.close(dfd)
    return found


def _inet_sockets(ns_pid: int | str, files, listening: bool) -> list[netsock.InetSocket]:
    """Sockets of the namespace ``ns_pid`` lives in ('self': ours, read with sock_diag)."""
    out: list[netsock.InetSocket] = []
    for name, family, protocol in files:
        if ns_pid == "self" and protocol in (netsock.IPPROTO_TCP, netsock.IPPROTO_UDP):
            states = netsock.ALL_STATES
            if listening:
                states = netsock.LISTEN_STATES if protocol == netsock.IPPROTO_TCP else netsock.UDP_BOUND_STATES
            try:
                socks = netsock.diag_inet(family, protocol, states)
            except OSError:
                pass  # no sock_diag (old kernel, seccomp): read the /proc file instead
            else:
                if listening and protocol == netsock.IPPROTO_UDP:
                    socks = [s for s in socks if s.local_port and not s.remote_port]
                out.extend(socks)
                continue
        data = procfs.read_or_none(f"/proc/{ns_pid}/net/{name}")
        if data:
            out.extend(netsock.parse_inet(data, family, protocol, listening=listening))
    return out


def _unix_sockets(ns_pid: int | str, listening: bool) -> list[netsock.UnixSocket]:
    data = procfs.read_or_none(f"/proc/{ns_pid}/net/unix")
    return netsock.parse_unix(data, listening=listening) if data else []


@table(
    "listening_ports",
    "Sockets waiting for peers: TCP in LISTEN, bound unconnected UDP, and unix sockets bound to a path.",
    [
        Column("pid", INTEGER, "Process holding the socket, -1 if none could be found."),
        Column("port", INTEGER, "Local port; 0 for unix sockets."),
        Column("protocol", INTEGER, "IP protocol number (6 TCP, 17 UDP, 136 UDP-Lite); 0 for unix sockets."),
        Column("family", INTEGER, "Address family: 2 IPv4, 10 IPv6, 1 unix."),
        Column("address", TEXT, "Local address the socket is bound to, e.g. 0.0.0.0 or ::."),
        Column("fd", BIGINT, "File descriptor number in the holding process, -1 if unknown."),
        Column("socket", BIGINT, "Socket inode number."),
        Column("path", TEXT, "Path of a unix socket ('@' starts an abstract name)."),
        Column("net_namespace", TEXT, "Inode number of the socket's network namespace."),
    ],
    examples=(
        "SELECT pid, port, protocol, address FROM listening_ports WHERE family IN (2, 10)",
        "SELECT DISTINCT p.name, l.port, p.pid FROM processes AS p JOIN listening_ports AS l "
        "ON p.pid = l.pid WHERE l.address = '0.0.0.0'",
    ),
    cost=100,
)
def gen_listening_ports(ctx):
    pids = procfs.pids()
    files = [f for f in netsock.INET_FILES if f[2] in _LISTEN_PROTOCOLS]
    found = [
        (ns, _inet_sockets(ns_pid, files, listening=True), _unix_sockets(ns_pid, listening=True))
        for ns, ns_pid in _namespaces(pids).items()
    ]
    owners: dict[int, tuple[int, int]] = {}
    if ctx.used("pid") or ctx.used("fd"):
        inodes = {s.inode for _, inet, unix in found for s in (*inet, *unix)}
        owners = _LISTENER_OWNERS.resolve(inodes, pids)
    for ns, inet, unix in found:
        for s in inet:
            pid, fd = owners.get(s.inode, _NO_OWNER)
            yield (pid, s.local_port, s.protocol, s.family, s.local_address, fd, s.inode, None, ns)
        for u in unix:
            pid, fd = owners.get(u.inode, _NO_OWNER)
            yield (pid, 0, 0, netsock.AF_UNIX, None, fd, u.inode, u.path, ns)


@table(
    "process_open_sockets",
    "Every socket (TCP, UDP, raw, ICMP, unix; IPv4 and IPv6) and the process holding it.",
    [
        Column("pid", INTEGER, "Process holding the socket, -1 if none could be found.", additional=True),
        Column("fd", BIGINT, "File descriptor number in the holding process, -1 if unknown."),
        Column("socket", BIGINT, "Socket inode number (0 for TIME_WAIT entries, which have none)."),
        Column("family", INTEGER, "Address family: 2 IPv4, 10 IPv6, 1 unix."),
        Column("protocol", INTEGER, "IP protocol number (6 TCP, 17 UDP, 255 raw...); 0 for unix sockets."),
        Column("local_address", TEXT, "Local address."),
        Column("remote_address", TEXT, "Peer address (0.0.0.0 or :: when not connected)."),
        Column("local_port", INTEGER, "Local port (for raw sockets, the IP protocol they receive)."),
        Column("remote_port", INTEGER, "Peer port, 0 when not connected."),
        Column("path", TEXT, "Path of a unix socket ('@' starts an abstract name)."),
        Column("state", TEXT, "TCP state (LISTEN, ESTABLISHED, TIME_WAIT...) or unix state; NULL for UDP/raw."),
        Column("net_namespace", TEXT, "Inode number of the socket's network namespace."),
        Column("container_id", TEXT, "Container the holding process runs in, from its cgroup (NULL on the host)."),
        Column("container_runtime", TEXT, "docker, containerd, cri-o, podman, systemd-nspawn, lxc or cri."),
        Column("pod_uid", TEXT, "Kubernetes pod uid, when the cgroup names one."),
    ],
    examples=(
        "SELECT pid, local_address, local_port, remote_address, remote_port, state "
        "FROM process_open_sockets WHERE family IN (2, 10)",
        "SELECT container_id, local_port FROM process_open_sockets WHERE container_id IS NOT NULL",
        "SELECT * FROM process_open_sockets WHERE pid = 1",
    ),
    cost=2000,
)
def gen_process_open_sockets(ctx):
    wanted = ctx.eq("pid")
    if wanted is not None and -1 in wanted:
        wanted = None  # the sockets nobody holds are only found by looking at everything
    pids = [p for p in wanted if isinstance(p, int) and p > 0] if wanted is not None else procfs.pids()
    owners = _owners(pids)
    if wanted is not None and not owners:
        return  # the asked-for processes hold no sockets (or are gone)
    container = _container_of(ctx)
    for ns, ns_pid in _namespaces(pids, include_own=wanted is None).items():
        for s in _inet_sockets(ns_pid, netsock.INET_FILES, listening=False):
            owner = owners.get(s.inode)
            if owner is None:
                if wanted is not None:
                    continue  # filtering by pid: only the sockets those pids hold
                owner = _NO_OWNER
            yield (
                owner[0],
                owner[1],
                s.inode,
                s.family,
                s.protocol,
                s.local_address,
                s.remote_address,
                s.local_port,
                s.remote_port,
                None,
                s.state,
                ns,
                *container(owner[0]),
            )
        for u in _unix_sockets(ns_pid, listening=False):
            owner = owners.get(u.inode)
            if owner is None:
                if wanted is not None:
                    continue
                owner = _NO_OWNER
            yield (
                owner[0],
                owner[1],
                u.inode,
                netsock.AF_UNIX,
                0,
                None,
                None,
                0,
                0,
                u.path,
                u.state,
                ns,
                *container(owner[0]),
            )


_NO_CONTAINER = (None, None, None)


def _container_of(ctx):
    """pid -> (container_id, container_runtime, pod_uid); one cgroup read per pid and query,
    none when the query reads none of the three columns."""
    if not any(ctx.used(c) for c in ("container_id", "container_runtime", "pod_uid")):
        return lambda pid: _NO_CONTAINER
    resolver = ContainerResolver()
    seen: dict[int, tuple] = {}

    def container(pid: int) -> tuple:
        found = seen.get(pid)
        if found is None:
            ref = resolver.of_pid(pid) if pid > 0 else None
            found = seen[pid] = tuple(ref) if ref is not None else _NO_CONTAINER
        return found

    return container
