"""processes: every running process, read from /proc.

Only the files the query's columns need are read (``ctx.used``): ``SELECT pid,
name`` reads one file per process, ``SELECT *`` eight. A process that exits
mid-scan loses its row, never the query.
"""

from __future__ import annotations

from .. import procfs
from ..errors import ProcessGone
from ..schema import BIGINT, INTEGER, TEXT, Column, table

# Which /proc files feed which columns.
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
    ],
    examples=(
        "SELECT pid, name, cmdline FROM processes WHERE pid = 1",
        "SELECT name, count(*) FROM processes GROUP BY name ORDER BY 2 DESC",
    ),
    cost=1000,
)
def gen_processes(ctx):
    want = {name for name in _ALL_COLUMNS if ctx.used(name)}
    boot = procfs.boot_time() if "start_time" in want else 0
    hz = procfs.clock_ticks()
    page = procfs.page_size()
    pids = ctx.eq("pid")
    for pid in pids if pids is not None else procfs.pids():
        if not isinstance(pid, int):
            continue
        try:
            yield _process_row(pid, want, boot, hz, page)
        except ProcessGone:
            continue  # exited between listing /proc and reading it


_ALL_COLUMNS = (
    "pid name path cmdline state cwd root uid gid euid egid suid sgid on_disk wired_size resident_size "
    "total_size user_time system_time disk_bytes_read disk_bytes_written start_time parent pgroup threads "
    "nice cgroup_path"
).split()


def _process_row(pid: int, want: set[str], boot: int, hz: int, page: int) -> dict:
    base = f"/proc/{pid}"
    st = procfs.stat_of(pid)  # the one file every row needs; its absence means the process is gone
    row = {
        "pid": pid,
        "name": st.name,
        "state": st.state,
        "parent": st.ppid,
        "pgroup": st.pgrp,
        "threads": st.threads,
        "nice": st.nice,
        "wired_size": 0,
        "resident_size": st.rss_pages * page,
        "total_size": st.vsize,
        "user_time": st.utime * 1000 // hz,
        "system_time": st.stime * 1000 // hz,
        "start_time": boot + st.starttime // hz if boot else None,
    }
    if "path" in want or "on_disk" in want:
        path = procfs.readlink_or_none(f"{base}/exe")
        row["on_disk"] = -1
        if path is not None:
            deleted = path.endswith(" (deleted)")
            row["on_disk"] = 0 if deleted else 1
            path = path[:-10] if deleted else path
        row["path"] = path
    if "cmdline" in want:
        data = procfs.read_or_none(f"{base}/cmdline")
        row["cmdline"] = procfs.parse_cmdline(data) if data is not None else None
    if "cwd" in want:
        row["cwd"] = procfs.readlink_or_none(f"{base}/cwd")
    if "root" in want:
        row["root"] = procfs.readlink_or_none(f"{base}/root")
    if want.intersection(_STATUS_COLUMNS):
        try:
            uids, gids = procfs.parse_status_ids(procfs.read_small(f"{base}/status"))
        except FileNotFoundError as err:
            raise ProcessGone(pid) from err
        except OSError:
            uids, gids = [], []
        if len(uids) >= 3 and len(gids) >= 3:
            row.update(uid=uids[0], euid=uids[1], suid=uids[2], gid=gids[0], egid=gids[1], sgid=gids[2])
    if want.intersection(_IO_COLUMNS):
        data = None
        try:
            data = procfs.read_small(f"{base}/io")
        except OSError:
            pass  # other users' io needs root (ptrace access); the columns stay NULL
        if data:
            io = procfs.parse_io(data)
            row["disk_bytes_read"] = io.get("read_bytes")
            row["disk_bytes_written"] = io.get("write_bytes")
    if "cgroup_path" in want:
        data = procfs.read_or_none(f"{base}/cgroup")
        row["cgroup_path"] = procfs.parse_cgroup(data) if data else None
    return row

