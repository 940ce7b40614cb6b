"""Per-process tables: processes, process_open_files, process_envs,
process_memory_map and process_namespaces, all read from /proc.

Only the files the query's columns need are read (``ctx.used``): ``SELECT pid,
name`` reads one small file per process, ``SELECT *`` eight. Every table takes
``WHERE pid = ...`` / ``IN (...)`` without scanning /proc. A process that exits
mid-scan, or whose files this user may not read, loses its rows, never the query.
"""

from __future__ import annotations

from collections.abc import Callable

from ..errors import ProcessGone
from ..host import procfs
from ..sql.schema import BIGINT, INTEGER, TEXT, Column, table
from ..text import decode
from ._common import lazy_module

containerid = lazy_module("streamq.host.containerid")

# Which /proc files feed which columns of `processes`.
_STAT_COLUMNS = (
    "state", "resident_size", "total_size", "user_time", "system_time",
    "start_time", "parent", "pgroup", "threads", "nice",
)  # fmt: skip
_STATUS_COLUMNS = ("uid", "gid", "euid", "egid", "suid", "sgid")
_IO_COLUMNS = ("disk_bytes_read", "disk_bytes_written")


@table(
    "processes",
    "All running processes on the host.",
    [
        Column("pid", BIGINT, "Process ID.", index=True),
        Column("name", TEXT, "Process name (the kernel's comm, at most 15 bytes)."),
        Column("path", TEXT, "Path of the executed binary."),
        Column("cmdline", TEXT, "Command line, arguments joined by spaces."),
        Column("state", TEXT, "Scheduler state letter (R, S, D, Z, T, I...)."),
        Column("cwd", TEXT, "Current working directory."),
        Column("root", TEXT, "Root directory as the process sees it."),
        Column("uid", BIGINT, "Real user ID."),
        Column("gid", BIGINT, "Real group ID."),
        Column("euid", BIGINT, "Effective user ID."),
        Column("egid", BIGINT, "Effective group ID."),
        Column("suid", BIGINT, "Saved user ID."),
        Column("sgid", BIGINT, "Saved group ID."),
        Column("on_disk", INTEGER, "1 if the binary still exists on disk, 0 if deleted, -1 if unknown."),
        Column("wired_size", BIGINT, "Bytes of unpageable memory; always 0 on Linux."),
        Column("resident_size", BIGINT, "Bytes of resident memory."),
        Column("total_size", BIGINT, "Bytes of virtual memory."),
        Column("user_time", BIGINT, "CPU time in user mode, milliseconds."),
        Column("system_time", BIGINT, "CPU time in kernel mode, milliseconds."),
        Column("disk_bytes_read", BIGINT, "Bytes read from storage."),
        Column("disk_bytes_written", BIGINT, "Bytes written to storage."),
        Column("start_time", BIGINT, "Start time, seconds since the Unix epoch."),
        Column("parent", BIGINT, "Parent process ID."),
        Column("pgroup", BIGINT, "Process group ID."),
        Column("threads", INTEGER, "Number of threads."),
        Column("nice", INTEGER, "Nice value (-20 to 19)."),
        Column("cgroup_path", TEXT, "cgroup of the process (the unified hierarchy's path)."),
        Column("container_id", TEXT, "Container the process runs in, from its cgroup (NULL on the host)."),
        Column("container_runtime", TEXT, "docker, containerd, cri-o, podman, systemd-nspawn, lxc or cri."),
        Column("pod_uid", TEXT, "Kubernetes pod uid, when the cgroup names one."),
    ],
    examples=(
        "SELECT pid, name, cmdline FROM processes WHERE pid = 1",
        "SELECT container_id, count(*) FROM processes WHERE container_id IS NOT NULL GROUP BY 1",
        "SELECT name, count(*) FROM processes GROUP BY name ORDER BY 2 DESC",
    ),
    cost=1000,
)
def gen_processes(ctx):
    read_row = _row_reader(ctx.used)
    for pid in _pids(ctx):
        try:
            yield read_row(pid)
        except ProcessGone:
            continue  # exited between listing /proc and reading it


def _pids(ctx) -> list[int]:
    """The pids a query asks for (pushed-down ``=`` / ``IN``), else every process.

    A pushed-down value may name a thread (its /proc/<tid> exists but is not
    listed); it is dropped so that ``WHERE pid = N`` agrees with a full scan.
    """
    values = ctx.eq("pid")
    if values is None:
        return procfs.pids()
    pids = []
    for value in values:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, int) and value > 0 and procfs.is_thread_group_leader(value):
            pids.append(value)
    return pids


def _row_reader(used: Callable[[str], bool]) -> Callable[[int], tuple]:
    """A function pid -> row tuple that reads only what the used columns need.

    This is the hot path of ``SELECT * FROM processes`` (1,000 processes in about
    the time of a plain Python scan of the same files), hence the closure over
    plain booleans and the row built as a tuple in column order.
    """
    need_stat = any(used(c) for c in _STAT_COLUMNS)
    need_exe = used("path") or used("on_disk")
    need_cmdline, need_cwd, need_root = used("cmdline"), used("cwd"), used("root")
    need_status = any(used(c) for c in _STATUS_COLUMNS)
    need_io = any(used(c) for c in _IO_COLUMNS)
    need_cgroup = used("cgroup_path")
    need_container = used("container_id") or used("container_runtime") or used("pod_uid")
    containers = containerid.ContainerResolver() if need_container else None
    boot = procfs.boot_time() if used("start_time") else 0
    hz = procfs.clock_ticks()
    page = procfs.page_size()
    read_small, read_once, link = procfs.read_small, procfs.read_once, procfs.readlink_path

    def read_row(pid: int) -> tuple:
        base = f"/proc/{pid}/"
        # stat (or, when no stat column is read, the cheaper comm) also proves the process exists.
        try:
            data = read_small(base + "stat" if need_stat else base + "comm")
        except OSError as err:
            raise ProcessGone(pid) from err
        state = parent = pgroup = threads = nice = rss = vsize = utime = stime = start = None
        if need_stat:
            rpar = data.rindex(b")")
            name = decode(data[data.index(b"(") + 1 : rpar])
            f = data[rpar + 2 :].split()
            state, parent, pgroup = f[0].decode(), int(f[1]), int(f[2])
            utime, stime = int(f[11]) * 1000 // hz, int(f[12]) * 1000 // hz
            nice, threads = int(f[16]), int(f[17])
            start = boot + int(f[19]) // hz if boot else None
            vsize, rss = int(f[20]), int(f[21]) * page
        else:
            name = decode(data[:-1])
        path = None
        on_disk = -1
        if need_exe:
            path = link(base + "exe")
            if path is not None:
                on_disk = 1
                if path.endswith(" (deleted)"):
                    path, on_disk = path[:-10], 0
        cmdline = None
        if need_cmdline:
            try:
                cmdline = procfs.parse_cmdline(read_once(base + "cmdline"))
            except OSError:
                pass
        ids = (None,) * 6
        if need_status:
            try:
                uids, gids = procfs.parse_status_ids(read_small(base + "status"))
            except OSError:
                uids = gids = ()
            if len(uids) >= 3 and len(gids) >= 3:
                ids = (uids[0], gids[0], uids[1], gids[1], uids[2], gids[2])
        read_bytes = written = None
        if need_io:
            try:
                read_bytes, written = procfs.parse_io_bytes(read_small(base + "io"))
            except OSError:
                pass  # other users' io needs ptrace access; the columns stay NULL
        cgroup = None
        container = _NO_CONTAINER
        if need_cgroup or containers is not None:
            try:
                data = read_once(base + "cgroup")
            except OSError:
                data = b""
            cgroup = procfs.parse_cgroup(data) if need_cgroup else None
            found = containers.of_cgroup_file(data) if containers is not None else None
            container = _NO_CONTAINER if found is None else found
        return (
            pid, name, path, cmdline, state,
            link(base + "cwd") if need_cwd else None,
            link(base + "root") if need_root else None,
            *ids, on_disk, 0, rss, vsize, utime, stime, read_bytes, written, start,
            parent, pgroup, threads, nice, cgroup, *container,
        )  # fmt: skip

    return read_row


_NO_CONTAINER = (None, None, None)


@table(
    "process_open_files",
    "Files that processes hold open, one row per file descriptor whose target is a path.",
    [
        Column("pid", BIGINT, "Process ID.", index=True),
        Column("fd", BIGINT, "File descriptor number within the process."),
        Column("path", TEXT, "Path the descriptor refers to; ends in ' (deleted)' if the file was removed."),
    ],
    examples=(
        "SELECT fd, path FROM process_open_files WHERE pid = 1",
        "SELECT pid, count(*) FROM process_open_files GROUP BY pid ORDER BY 2 DESC LIMIT 5",
    ),
    cost=20000,
)
def gen_process_open_files(ctx):
    for pid in _pids(ctx):
        for fd, target in procfs.fd_targets(pid) or ():  # None: gone, or another user's process without root
            # Like osquery, leave out sockets, pipes and anon inodes; we keep only real paths
            # (which also drops namespace handles such as "net:[4026531840]").
            if target is not None and target.startswith("/"):
                yield (pid, fd, target)


@table(
    "process_envs",
    "Environment variables each process started with.",
    [
        Column("pid", INTEGER, "Process ID.", index=True),
        Column("key", TEXT, "Variable name."),
        Column("value", TEXT, "Variable value; empty if the entry had no '='."),
    ],
    examples=(
        "SELECT key, value FROM process_envs WHERE pid = 1",
        "SELECT pid, value FROM process_envs WHERE key = 'LD_PRELOAD'",
    ),
    cost=30000,
)
def gen_process_envs(ctx):
    for pid in _pids(ctx):
        try:
            data = procfs.read_once(f"/proc/{pid}/environ")
        except OSError:
            continue  # gone, or not ours to read
        for key, value in procfs.parse_environ(data):
            yield (pid, key, value)


@table(
    "process_memory_map",
    "Memory regions mapped into each process, from /proc/<pid>/maps.",
    [
        Column("pid", INTEGER, "Process ID.", index=True),
        Column("start", TEXT, "Start address of the region, as hex text (0x...)."),
        Column("end", TEXT, "End address of the region (exclusive), as hex text (0x...)."),
        Column("permissions", TEXT, "Access flags: r, w, x, then p (private) or s (shared)."),
        Column("offset", BIGINT, "Offset of the region within the mapped file, in bytes."),
        Column("device", TEXT, "Device of the mapped file as major:minor in hex."),
        Column("inode", INTEGER, "Inode of the mapped file; 0 for anonymous memory."),
        Column("path", TEXT, "Mapped file, or a name like [heap] or [stack]; NULL for anonymous memory."),
        Column("pseudo", INTEGER, "1 for named regions without a file ([heap], [stack], [vdso]...), else 0."),
    ],
    examples=(
        "SELECT start, end, permissions, path FROM process_memory_map WHERE pid = 1",
        "SELECT DISTINCT path FROM process_memory_map WHERE pid = 1 AND path LIKE '%.so%'",
    ),
    cost=100000,
)
def gen_process_memory_map(ctx):
    for pid in _pids(ctx):
        try:
            data = procfs.read(f"/proc/{pid}/maps")
        except OSError:
            continue
        for region in procfs.parse_maps(data):
            yield (pid, *region)


_NAMESPACES = ("cgroup", "ipc", "mnt", "net", "pid", "user", "uts")


@table(
    "process_namespaces",
    "The namespaces each process lives in, as namespace inode numbers.",
    [
        Column("pid", INTEGER, "Process ID.", index=True),
        *(Column(f"{kind}_namespace", TEXT, f"Inode number of the {kind} namespace.") for kind in _NAMESPACES),
    ],
    examples=(
        "SELECT * FROM process_namespaces WHERE pid = 1",
        "SELECT net_namespace, count(*) FROM process_namespaces GROUP BY net_namespace",
    ),
    cost=1000,
)
def gen_process_namespaces(ctx):
    for pid in _pids(ctx):
        inodes = [procfs.namespace_inode(pid, kind) for kind in _NAMESPACES]
        if any(inodes):  # all missing: the process is gone or hidden from us
            yield (pid, *inodes)
