"""process_events from the kernel's netlink proc connector (fork, exec, exit).

The connector tells us a pid and an event, nothing more, so at exec we read
/proc/<pid> at once, command line first: a process that lives for a
millisecond still leaves its command line behind, while one that is gone
already keeps what could be read. The socket is read by a dedicated thread at
raised CPU priority (option ``priority``), not by the event loop: /bin/true
lives ~0.5 ms after exec, less than an event-loop wake-up plus a scheduler
slice on a busy host (measured in bench/bench_process_events.py: 11% of
/bin/true command lines from the loop, 90-95% from a nice -20 thread, ~100%
from a SCHED_FIFO one). Without CAP_NET_ADMIN the source falls back to
polling /proc and says so in streamq_events. ENOBUFS (the socket's buffer
overflowed: events lost in the kernel) is counted and answered with a /proc
rescan.
"""

from __future__ import annotations

import asyncio
import os
import select
import socket
import struct
import threading
from dataclasses import dataclass

from ..config.options import SourceOptions, duration, one_of, option
from ..host import procfs
from ..host.containerid import Container, ContainerResolver
from ..text import decode
from .base import Source, SourceUnavailable
from .netlink import open_netlink, receive

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
_SYSCALLS = {"fork": "fork", "exec": "execve", "exit": "exit"}
_CONTAINERS = ContainerResolver()  # parses cached by cgroup file content, shared by every reader


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
    """Netlink datagram bytes -> [(action, fields)] for process (not thread) events.

    A message whose length field runs past the datagram, or whose event is
    shorter than its kind needs, ends or is skipped: never an exception.
    """
    out = []
    offset = 0
    size = len(data)
    while offset + _NLMSGHDR.size <= size:
        length = _NLMSGHDR.unpack_from(data, offset)[0]
        if length < _NLMSGHDR.size:
            break
        end = min(offset + length, size)
        event = offset + _NLMSGHDR.size + _CN_MSG.size + _EVENT_HEADER.size
        if event <= end:
            what, _cpu, ts_ns = _EVENT_HEADER.unpack_from(data, event - _EVENT_HEADER.size)
            parsed = _parse_event(what, data, event, end, ts_ns // 1_000_000_000)
            if parsed is not None:
                out.append(parsed)
        offset += (length + 3) & ~3
    return out


def _parse_event(what: int, data: bytes, event: int, end: int, uptime: int) -> tuple[str, dict] | None:
    if what == PROC_EVENT_FORK and event + _FORK.size <= end:
        _ppid, ptgid, cpid, ctgid = _FORK.unpack_from(data, event)
        if cpid == ctgid:  # a new process, not a new thread
            return "fork", {"pid": ctgid, "parent": ptgid, "uptime": uptime}
    elif what == PROC_EVENT_EXEC and event + _EXEC.size <= end:
        _pid, tgid = _EXEC.unpack_from(data, event)
        return "exec", {"pid": tgid, "uptime": uptime}
    elif what == PROC_EVENT_EXIT and event + _EXIT.size <= end:
        pid, tgid, status, _sig = _EXIT.unpack_from(data, event)
        if pid == tgid:  # the process's main thread: the process is gone
            fields = {"pid": tgid, "exit_code": exit_code_of(status), "uptime": uptime}
            if event + _EXIT.size + _EXIT_PARENT.size <= end:
                fields["parent"] = _EXIT_PARENT.unpack_from(data, event + _EXIT.size)[1]
            return "exit", fields
    return None


@dataclass(frozen=True)
class Perishable:
    """What a process loses first when it exits: its memory (command line, exe) and fs (cwd) go
    at exit, before the zombie is reaped; status (uid) stays until then."""

    cmdline: bytes | None
    exe: str | None
    cwd: str | None
    status: bytes | None


def read_perishable(pid: int, cmdline: bytes | None = None) -> Perishable:
    """The four reads an exec row must have (``cmdline`` if it was read already)."""
    base = f"/proc/{pid}"
    return Perishable(
        cmdline if cmdline is not None else procfs.read_or_none(f"{base}/cmdline"),
        procfs.readlink_or_none(f"{base}/exe"),
        procfs.readlink_or_none(f"{base}/cwd"),
        procfs.read_or_none(f"{base}/status"),
    )


def read_batch(pids: list[int]) -> dict[int, Perishable]:
    """For a burst of execs: every command line first (a sub-millisecond process keeps little
    else), then every exe, cwd and status, and only then the slower rest, row by row."""
    cmdlines = {pid: procfs.read_or_none(f"/proc/{pid}/cmdline") for pid in pids}
    return {pid: read_perishable(pid, cmdlines[pid]) for pid in pids}


def exec_details(pid: int, early: Perishable | None = None) -> dict:
    """What /proc still tells about ``pid`` right after exec; missing parts stay None.

    ``early`` holds the reads of :func:`read_perishable` made as soon as the event
    arrived: with a burst of events, reading every process's command line, exe, cwd
    and status before anything else is what keeps them for a process that lives
    only a little longer than the burst takes to read.
    """
    base = f"/proc/{pid}"
    row: dict = {}
    early = early or read_perishable(pid)
    data = early.cmdline
    path = early.exe
    if path is not None:
        row["path"] = path[:-10] if path.endswith(" (deleted)") else path
    if data:  # a zombie's cmdline reads empty: treat as unknown and fall back to comm below
        row["cmdline"] = procfs.parse_cmdline(data)
        row["cmdline_size"] = len(data)
    row["cwd"] = early.cwd
    status = early.status
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
    # Read at exec, not fork: `docker exec` moves its child into the container's cgroup
    # between the two, so the exec row is the first that can name the container.
    add_container(row, _CONTAINERS.of_pid(pid))
    return row


def add_container(row: dict, found: Container | None) -> None:
    if found is not None:
        row["container_id"], row["container_runtime"], row["pod_uid"] = found


def open_connector() -> socket.socket:
    """A bound, subscribed proc connector socket; SourceUnavailable without the rights."""
    what = "join the proc connector (needs root or CAP_NET_ADMIN)"
    sock = open_netlink(NETLINK_CONNECTOR, CN_IDX_PROC, label="proc connector", what=what, rcvbuf=_RCVBUF)
    try:
        sock.send(subscribe_message())
    except OSError as err:
        sock.close()
        raise SourceUnavailable(f"proc connector: cannot {what}: {err.strerror}") from err
    return sock


@dataclass(frozen=True)
class ProcessOptions(SourceOptions):
    mode: str = option("auto", one_of("auto", "netlink", "poll"), doc="auto: the proc connector, else polling.")
    poll_interval: float = option(0.1, duration, doc="Between /proc scans when polling.")
    priority: str = option("realtime", one_of("normal", "high", "realtime"), doc="Of the reading thread.")


class ContainerOfPid:
    """pid -> its container, so fork and exit rows name it without a /proc read: a child
    starts in its parent's cgroup, and an exited process's cgroup is no longer readable."""

    _MAX = 65536
    _HOST = Container("", None, None)  # known to be in no container

    def __init__(self) -> None:
        self.of: dict[int, Container] = {}

    def track(self, action: str, fields: dict) -> None:
        pid = fields["pid"]
        if action == "exec":
            found = fields.get("container_id")
            self._remember(pid, Container(found, fields["container_runtime"], fields["pod_uid"]) if found else None)
            return
        if action == "fork":
            found = self.of.get(fields.get("parent", -1))
            if found is None:
                found = _CONTAINERS.of_pid(pid) or self._HOST
            self._remember(pid, found)
        else:
            found = self.of.pop(pid, None)
        if found is not None and found.id:
            add_container(fields, found)

    def _remember(self, pid: int, found: Container | None) -> None:
        if len(self.of) >= self._MAX:
            self.of.clear()  # exits lost to ENOBUFS would otherwise leak entries
        self.of[pid] = found or self._HOST


class ProcessSource(Source):
    """process_events from the kernel's proc connector (netlink), or from polling /proc."""

    name = "process"
    kind = "netlink"
    Options = ProcessOptions

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.containers = ContainerOfPid()

    async def run(self) -> None:
        mode = self.options.mode
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
        else:
            self.status.mode = "polling /proc (mode = poll)"
            self.status.kind = "poll"
        from .process_poll import poll_processes

        await poll_processes(self.ring, self.options.poll_interval, exec_details)

    async def _listen(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        done: asyncio.Future = loop.create_future()
        wake_r, wake_w = os.pipe()

        def finished(err: BaseException | None) -> None:
            if done.done():
                return
            if err is None:
                done.set_result(None)
            else:
                done.set_exception(err)

        def reader() -> None:
            err: BaseException | None = None
            try:
                self._raise_priority()
                self._read_loop(sock, wake_r)
            except BaseException as exc:  # handed to the event loop: supervise() restarts us
                err = exc
            loop.call_soon_threadsafe(finished, err)

        thread = threading.Thread(target=reader, name=f"streamq-{self.name}", daemon=True)
        thread.start()
        try:
            await done  # runs until cancelled or the socket breaks
        finally:
            os.write(wake_w, b"x")
            await asyncio.to_thread(thread.join, 5.0)
            os.close(wake_w)
            os.close(wake_r)
            sock.close()

    def _raise_priority(self) -> None:
        """Let the reader thread preempt the processes it watches (needs CAP_SYS_NICE; else unchanged)."""
        priority = self.options.priority
        if priority == "realtime":
            try:
                os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))  # 0: this thread
                return
            except OSError:  # e.g. a cgroup with no realtime budget, even for root: try nice -20
                priority = "high"
        if priority == "high":
            try:
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), -20)
                if self.options.priority == "realtime":
                    self.status.mode = "netlink (realtime priority refused; high priority)"
                return
            except OSError:
                pass
        if priority != "normal":
            self.status.mode = f"netlink ({self.options.priority} priority refused; normal priority)"

    def _read_loop(self, sock: socket.socket, wake: int) -> None:
        """Reader thread: block on the socket, turn datagrams into rows, until ``wake`` is written."""
        poller = select.poll()
        poller.register(sock.fileno(), select.POLLIN)
        poller.register(wake, select.POLLIN)
        append = self.ring.append
        while True:
            for fd, _ in poller.poll():
                if fd == wake:
                    return
            while True:
                events = self._receive(sock)
                if not events:
                    break
                # What vanishes at exit first, for the whole batch, before the slower reads.
                early = read_batch([f["pid"] for a, f in events if a == "exec"])
                for action, fields in events:
                    fields["action"] = action
                    fields["syscall"] = _SYSCALLS[action]
                    if action == "exec":
                        fields.update(exec_details(fields["pid"], early.get(fields["pid"])))
                    self.containers.track(action, fields)
                    append(fields)

    def _receive(self, sock: socket.socket, max_datagrams: int = 256) -> list[tuple[str, dict]]:
        """Events of every datagram queued now (up to ``max_datagrams``); [] when none is."""
        events: list[tuple[str, dict]] = []
        receive(
            sock,
            lambda data, sender: events.extend(parse_messages(data)),
            self.status,
            resync=self._rescan,
            limit=max_datagrams,
        )
        return events

    def _rescan(self) -> None:
        """After lost events, report every running process as seen by a /proc scan."""
        for pid in procfs.pids():
            row = {"pid": pid, "action": "exec", "syscall": "rescan"}
            row.update(exec_details(pid))
            self.ring.append(row)
