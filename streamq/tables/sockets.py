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

from functools import cache

from ..host import procfs
from ..sql.schema import BIGINT, INTEGER, TEXT, Column, table
from ._common import lazy_module

containerid = lazy_module("streamq.host.containerid")
netsock = lazy_module("streamq.host.sockdiag")
sockowners = lazy_module("streamq.host.sockowners")

_NO_OWNER = (-1, -1)  # osquery's pid and fd for a socket no visible process holds


@cache
def _listener_owners():
    """Listeners keep their holder for long: remember owners between queries (see OwnerCache)."""
    return sockowners.OwnerCache()


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
    listen_protocols = (netsock.IPPROTO_TCP, netsock.IPPROTO_UDP, netsock.IPPROTO_UDPLITE)
    files = [f for f in netsock.INET_FILES if f[2] in listen_protocols]
    found = [
        (
            ns,
            netsock.namespace_inet_sockets(ns_pid, files, listening=True),
            netsock.namespace_unix_sockets(ns_pid, listening=True),
        )
        for ns, ns_pid in sockowners.net_namespaces(pids).items()
    ]
    owners: dict[int, tuple[int, int]] = {}
    if ctx.used("pid") or ctx.used("fd"):
        inodes = {s.inode for _, inet, unix in found for s in (*inet, *unix)}
        owners = _listener_owners().resolve(inodes, pids)
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
    owners = sockowners.owners(pids)
    if wanted is not None and not owners:
        return  # the asked-for processes hold no sockets (or are gone)
    container = _container_of(ctx)
    for ns, ns_pid in sockowners.net_namespaces(pids, include_own=wanted is None).items():
        for s in netsock.namespace_inet_sockets(ns_pid, netsock.INET_FILES, listening=False):
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
        for u in netsock.namespace_unix_sockets(ns_pid, listening=False):
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
    resolver = containerid.ContainerResolver()
    seen: dict[int, tuple] = {}

    def container(pid: int) -> tuple:
        found = seen.get(pid)
        if found is None:
            ref = resolver.of_pid(pid) if pid > 0 else None
            found = seen[pid] = tuple(ref) if ref is not None else _NO_CONTAINER
        return found

    return container
