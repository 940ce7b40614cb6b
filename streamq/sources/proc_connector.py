"""process_events from the kernel's netlink proc connector (fork, exec, exit).

The connector tells us a pid and an event, nothing more, so at exec we read
/proc/<pid> at once: a process that lives for a millisecond still leaves its
path and command line behind, while one that is gone already keeps what could
be read. Without CAP_NET_ADMIN the source falls back to polling /proc and says
so in streamq_events. ENOBUFS (the socket's buffer overflowed: events lost in
the kernel) is counted and answered with a /proc rescan.
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import struct

from .. import procfs
from ..text import decode
from .base import Source, SourceUnavailable

NETLINK_CONNECTOR = 11
CN_IDX_PROC = 1
CN_VAL_PROC = 1
PROC_CN_MCAST_LISTEN = 1
NLMSG_DONE = 3

PROC_EVENT_FORK = 0x00000001
PROC_EVENT_EXEC = 0x00000002
PROC_EVENT_EXIT = 0x80000000

_NLMSGHDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid
_CN_MSG = struct.Struct("=IIIIHH")  # idx, val, seq, ack, len, flags
_EVENT_HEADER = struct.Struct("=IIQ")  # what, cpu, timestamp_ns
_FORK = struct.Struct("=IIII")  # parent pid, parent tgid, child pid, child tgid
_EXEC = struct.Struct("=II")  # pid, tgid
_EXIT = struct.Struct("=IIII")  # pid, tgid, exit_code (wait status), exit_signal
_EXIT_PARENT = struct.Struct("=II")  # parent pid, parent tgid (kernels >= 4.18)
_RCVBUF = 8 * 1024 * 1024


def subscribe_message(op: int = PROC_CN_MCAST_LISTEN) -> bytes:
    payload = struct.pack("=I", op)
    cn = _CN_MSG.pack(CN_IDX_PROC, CN_VAL_PROC, 0, 0, len(payload), 0) + payload
    return _NLMSGHDR.pack(_NLMSGHDR.size + len(cn), NLMSG_DONE, 0, 0, os.getpid()) + cn


def exit_code_of(status: int) -> int:
    """A wait status as a shell reports it: the exit code, or 128 + signal when killed."""
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def parse_messages(data: bytes) -> list[tuple[str, dict]]:
    """Netlink datagram bytes -> [(action, fields)] for process (not thread) events."""
    out = []
    offset = 0
    while offset + _NLMSGHDR.size <= len(data):
        length = _NLMSGHDR.unpack_from(data, offset)[0]
        if length < _NLMSGHDR.size:
            break
        body = offset + _NLMSGHDR.size + _CN_MSG.size
        if body + _EVENT_HEADER.size <= offset + length:
            what, _cpu, ts_ns = _EVENT_HEADER.unpack_from(data, body)
            event = body + _EVENT_HEADER.size
            uptime = ts_ns // 1_000_000_000
            if what == PROC_EVENT_FORK:
                _ppid, ptgid, cpid, ctgid = _FORK.unpack_from(data, event)
                if cpid == ctgid:  # a new process, not a new thread
                    out.append(("fork", {"pid": ctgid, "parent": ptgid, "uptime": uptime}))
            elif what == PROC_EVENT_EXEC:
                pid, tgid = _EXEC.unpack_from(data, event)
                out.append(("exec", {"pid": tgid, "uptime": uptime}))
            elif what == PROC_EVENT_EXIT:
                pid, tgid, status, _sig = _EXIT.unpack_from(data, event)
                if pid == tgid:  # the process's main thread: the process is gone
                    fields = {"pid": tgid, "exit_code": exit_code_of(status), "uptime": uptime}
                    if event + _EXIT.size + _EXIT_PARENT.size <= offset + length:
                        fields["parent"] = _EXIT_PARENT.unpack_from(data, event + _EXIT.size)[1]
                    out.append(("exit", fields))
        offset += (length + 3) & ~3
    return out


def exec_details(pid: int) -> dict:
    """What /proc still tells about ``pid`` right after exec; missing parts stay None."""
    base = f"/proc/{pid}"
    row: dict = {}
    path = procfs.readlink_or_none(f"{base}/exe")
    if path is not None:
        row["path"] = path[:-10] if path.endswith(" (deleted)") else path
    data = procfs.read_or_none(f"{base}/cmdline")
    if data:  # a zombie's cmdline reads empty: treat as unknown and fall back to comm below
        row["cmdline"] = procfs.parse_cmdline(data)
        row["cmdline_size"] = len(data)
    row["cwd"] = procfs.readlink_or_none(f"{base}/cwd")
    status = procfs.read_or_none(f"{base}/status")
    if status:
        uids, gids = procfs.parse_status_ids(status)
        if len(uids) == 4 and len(gids) == 4:
            row.update(uid=uids[0], euid=uids[1], suid=uids[2], fsuid=uids[3])
            row.update(gid=gids[0], egid=gids[1], sgid=gids[2], fsgid=gids[3])
        ppid = status.find(b"\nPPid:")
        if ppid >= 0:
            row["parent"] = int(status[ppid + 6 : status.index(b"\n", ppid + 1)])
    loginuid = procfs.read_or_none(f"{base}/loginuid")
    if loginuid:
        auid = int(loginuid)
        row["auid"] = None if auid == 0xFFFFFFFF else auid
    try:
        st = os.stat(f"{base}/exe")
    except OSError:
        pass
    else:
        row.update(
            mode=f"{st.st_mode & 0o7777:04o}",
            owner_uid=st.st_uid,
            owner_gid=st.st_gid,
            atime=int(st.st_atime),
            mtime=int(st.st_mtime),
            ctime=int(st.st_ctime),
        )
    if "cmdline" not in row:
        comm = procfs.read_or_none(f"{base}/comm")
        if comm:
            row["cmdline"] = decode(comm.strip())  # gone already: keep at least its name
    return row


def open_connector() -> socket.socket:
    """A bound, subscribed proc connector socket; SourceUnavailable without the rights."""
    try:
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM | socket.SOCK_NONBLOCK, NETLINK_CONNECTOR)
    except OSError as err:
        raise SourceUnavailable(f"proc connector: cannot open netlink socket: {err.strerror}") from err
    try:
        try:
            sock.setsockopt(socket.SOL_SOCKET, 33, _RCVBUF)  # SO_RCVBUFFORCE: root may exceed rmem_max
        except OSError:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RCVBUF)
        sock.bind((0, CN_IDX_PROC))
        sock.send(subscribe_message())
    except OSError as err:
        sock.close()
        raise SourceUnavailable(f"proc connector: {err.strerror} (needs root or CAP_NET_ADMIN)") from err
    return sock


class ProcessSource(Source):
    name = "proc_connector"
    kind = "netlink"

    async def run(self) -> None:
        mode = self.options.get("mode", "auto")
        if mode != "poll":
            try:
                sock = open_connector()
            except SourceUnavailable as err:
                if mode == "netlink":
                    raise
                self.status.mode = f"polling /proc ({err})"
                self.status.kind = "poll"
            else:
                self.status.mode = "netlink"
                await self._listen(sock)
                return
        from .poll import poll_processes

        await poll_processes(self.ring, self.options.get("poll_interval", 0.1), exec_details)

    async def _listen(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        failed: asyncio.Future = loop.create_future()
        loop.add_reader(sock.fileno(), self._drain, sock, failed)
        try:
            await failed  # runs until cancelled or the socket breaks
        finally:
            loop.remove_reader(sock.fileno())
            sock.close()

    def _drain(self, sock: socket.socket, failed: asyncio.Future) -> None:
        """Event-loop callback: read every queued datagram; never raises."""
        append = self.ring.append
        while True:
            try:
                data = sock.recv(65536)
            except BlockingIOError:
                return
            except OSError as err:
                if err.errno == errno.ENOBUFS:
                    self.status.overflows += 1  # the kernel dropped events: find what we missed
                    self._rescan()
                    continue
                if not failed.done():
                    failed.set_exception(err)
                return
            for action, fields in parse_messages(data):
                fields["action"] = action
                fields["syscall"] = {"exec": "execve"}.get(action, action)
                if action == "exec":
                    fields.update(exec_details(fields["pid"]))
                append(fields)

    def _rescan(self) -> None:
        """After lost events, report every running process as seen by a /proc scan."""
        for pid in procfs.pids():
            row = {"pid": pid, "action": "exec", "syscall": "rescan"}
            row.update(exec_details(pid))
            self.ring.append(row)
