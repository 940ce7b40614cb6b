"""Inter-process objects: pipes between processes, System V shared memory, kernel keys."""

from __future__ import annotations

from ..sql.schema import BIGINT, INTEGER, TEXT, Column, table
from ._common import lazy_module

ipc = lazy_module("streamq.host.ipc")
procfs = lazy_module("streamq.host.procfs")


@table(
    "process_open_pipes",
    "Pipes and FIFOs processes hold open, each end paired with the process at its other end.",
    [
        Column("pid", BIGINT, "Process ID."),
        Column("fd", BIGINT, "File descriptor of this end."),
        Column("mode", TEXT, "How this end is open: r, w or rw."),
        Column("inode", BIGINT, "Inode of the pipe, shared by all its ends."),
        Column("type", TEXT, "anonymous (pipe()) or named (a FIFO in the file system)."),
        Column("partner_pid", BIGINT, "Process ID of an end the data flows to or from; NULL when none is open."),
        Column("partner_fd", BIGINT, "File descriptor of that end in the partner process."),
        Column("partner_mode", TEXT, "How the partner end is open."),
    ],
    examples=(
        "SELECT pid, fd, mode, partner_pid, partner_fd FROM process_open_pipes WHERE type = 'named'",
        "SELECT p.name, pp.partner_pid FROM process_open_pipes pp JOIN processes p USING (pid) WHERE pp.fd = 1",
    ),
    cost=2000,
)
def gen_process_open_pipes(ctx):
    pipes = [p for pid in procfs.pids() for p in ipc.process_pipes(pid)]
    yield from ipc.pipe_rows(pipes)


@table(
    "shared_memory",
    "System V shared memory segments of streamq's IPC namespace, from /proc/sysvipc/shm.",
    [
        Column("shmid", INTEGER, "Segment ID."),
        Column("owner_uid", BIGINT, "User ID of the owner."),
        Column("creator_uid", BIGINT, "User ID of the creator."),
        Column("pid", BIGINT, "Process ID that last attached or detached."),
        Column("creator_pid", BIGINT, "Process ID that created the segment."),
        Column("atime", BIGINT, "Last attach time, unix seconds (0: never)."),
        Column("dtime", BIGINT, "Last detach time, unix seconds (0: never)."),
        Column("ctime", BIGINT, "Last change time, unix seconds."),
        Column("permissions", TEXT, "Mode as four octal digits, e.g. 0600 (1xxx: marked for removal)."),
        Column("size", BIGINT, "Size in bytes."),
        Column("attached", INTEGER, "Number of processes attached."),
        Column("status", TEXT, "dest when marked for removal after the last detach, else empty."),
        Column("locked", INTEGER, "1 when locked in memory (SHM_LOCK)."),
    ],
    examples=("SELECT shmid, owner_uid, size, attached, permissions FROM shared_memory",),
    cost=20,
)
def gen_shared_memory(ctx):
    for seg in ipc.parse_sysvipc_shm(procfs.read_or_none("/proc/sysvipc/shm") or b""):
        mode = seg["perms"]
        yield {
            "shmid": seg["shmid"],
            "owner_uid": seg["uid"],
            "creator_uid": seg["cuid"],
            "pid": seg["lpid"],
            "creator_pid": seg["cpid"],
            "atime": seg.get("atime"),
            "dtime": seg.get("dtime"),
            "ctime": seg.get("ctime"),
            "permissions": ipc.lsperms(mode),
            "size": seg["size"],
            "attached": seg["nattch"],
            "status": "dest" if mode & ipc.SHM_DEST else "",
            "locked": int(bool(mode & ipc.SHM_LOCKED)),
        }


@table(
    "kernel_keys",
    "Keys and keyrings in the kernel's key retention service that streamq may view, from /proc/keys.",
    [
        Column("serial_number", TEXT, "Key serial number in hex, as keyctl shows it."),
        Column(
            "flags",
            TEXT,
            "Key flags: I instantiated, R revoked, D dead, Q counts to quota, U under construction, N negative, i invalidated.",
        ),
        Column("usage", BIGINT, "Reference count."),
        Column("timeout", TEXT, "Time until the key expires (perm: never, expd: expired)."),
        Column("permissions", TEXT, "Permission mask in hex: possessor, user, group, other bytes."),
        Column("uid", BIGINT, "Owner user ID."),
        Column("gid", BIGINT, "Owner group ID."),
        Column("type", TEXT, "Key type: keyring, user, logon, asymmetric..."),
        Column("description", TEXT, "Key description and the type's summary of it, e.g. '_ses: 1'."),
    ],
    examples=("SELECT serial_number, type, description FROM kernel_keys WHERE type = 'user'",),
    cost=50,
)
def gen_kernel_keys(ctx):
    for key in ipc.parse_proc_keys(procfs.read_or_none("/proc/keys") or b""):
        yield key._asdict()
