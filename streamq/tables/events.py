"""Event tables: rows live in an EventRing that a source fills; a query reads a slice.

Every event table has ``time`` (unix seconds) and a hidden integer ``eid``,
declared once here (:data:`EVENT_TIME`, :data:`EVENT_ID`) and added at the end
of a table's columns unless the table places them (osquery's column order).
Both carry the ``range`` flag, which tells the engine to push down
``eid > X`` / ``eid >= X`` and ``time > T`` / ``time >= T``, so reading the
newest rows costs O(new rows) whatever the ring holds. A continuous reader
(``--follow``, the scheduler) sets ``session.floors[table]`` to see only rows
newer than its cursor.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Iterator

from ..sql.schema import BIGINT, DOUBLE, INTEGER, TEXT, Column, QueryContext, Table, register

EVENT_TIME = Column("time", BIGINT, "When the event was received, unix seconds.", additional=True, range=True)
EVENT_ID = Column("eid", INTEGER, "Event id: increases by one per event of this table.", hidden=True, range=True)
EVENT_COLUMNS = (EVENT_TIME, EVENT_ID)
_EVENT_TAIL = tuple(c.name for c in EVENT_COLUMNS)
# A record source with an event-time field: ``time`` is then the record's own time (a data
# column) and the receive time, which orders the ring, is this hidden column.
ARRIVAL = "arrival_time"
ARRIVAL_TIME = Column(ARRIVAL, DOUBLE, "When the record was received, unix seconds.", hidden=True, range=True)


def event_columns(columns: Iterable[Column], *, stamp: str = EVENT_TIME.name) -> tuple[Column, ...]:
    """The table's own columns, with ``time`` (or ``stamp``) and ``eid`` put at the end if the table
    did not place them.

    A table that places one uses :data:`EVENT_TIME` / :data:`EVENT_ID` (its
    description may differ); a column of either name declared any other way is refused.
    """
    filled = EVENT_COLUMNS if stamp == EVENT_TIME.name else (ARRIVAL_TIME, EVENT_ID)
    cols = list(columns)
    for c in cols:
        for declared in filled:
            if c.name == declared.name and dataclasses.replace(c, description=declared.description) != declared:
                raise ValueError(
                    f"event column {c.name}: use EVENT_TIME / EVENT_ID of tables.events, not a column anew"
                )
    names = {c.name for c in cols}
    cols += [c for c in filled if c.name not in names]
    return tuple(cols)


def _bounds(ctx: QueryContext, table: str, stamp: str = EVENT_TIME.name) -> tuple[int, int | None, float | None]:
    """From the pushed-down constraints: the eid to read after, the last eid wanted, the earliest time.

    ``time`` holds whole seconds of a float receive time, so ``time > T`` means
    receive time >= floor(T) + 1 and ``time >= T`` means >= ceil(T).
    """
    after = 0
    session = ctx.session
    if session is not None:
        after = session.floors.get(table, 0)
    upto: int | None = None
    min_time: float | None = None
    for c in ctx.ops(EVENT_ID.name):
        if isinstance(c.value, (int, float)):
            if c.op == ">":
                after = max(after, math.floor(c.value))
            elif c.op in (">=", "="):
                after = max(after, math.ceil(c.value) - 1)
            if c.op in ("<", "<=", "="):
                top = math.ceil(c.value) - 1 if c.op == "<" else math.floor(c.value)
                upto = top if upto is None else min(upto, top)
    whole = stamp == EVENT_TIME.name  # whole seconds; arrival_time keeps the fractions
    for c in ctx.ops(stamp):
        if isinstance(c.value, (int, float)) and not whole:
            bound = c.value if c.op in (">", ">=", "=") else None  # SQLite checks the rows again
        elif isinstance(c.value, (int, float)):
            bound = math.floor(c.value) + 1 if c.op == ">" else math.ceil(c.value) if c.op in (">=", "=") else None
        else:
            bound = None
        if bound is not None:
            min_time = bound if min_time is None else max(min_time, bound)
    return after, upto, min_time


def make_event_table(
    name: str,
    description: str,
    columns: Iterable[Column],
    *,
    examples: Iterable[str] = (),
    stamp: str = EVENT_TIME.name,
) -> Table:
    """Declare and register a ring-backed event table.

    The ring fills ``stamp`` (the receive time) and ``eid``; every other column comes from
    the stored row. A record source with an event-time field passes ``stamp=ARRIVAL``:
    its ``time`` is then a column of the row like any other.
    """
    cols = event_columns(columns, stamp=stamp)
    names = [c.name for c in cols]
    time_index = names.index(stamp)
    eid_index = names.index(EVENT_ID.name)
    data_names = [n for n in names if n not in (stamp, EVENT_ID.name)]
    # time and eid are spliced into the stored values at their column positions; most
    # tables end with them, and a stored tuple then needs only one concatenation.
    tail_layout = (time_index, eid_index) == (len(names) - 2, len(names) - 1)
    whole_seconds = stamp == EVENT_TIME.name  # osquery's time is whole seconds; arrival_time keeps fractions
    time_value = (lambda eid, when: int(when)) if whole_seconds else (lambda eid, when: when)
    eid_value = lambda eid, when: eid  # noqa: E731
    if time_index < eid_index:
        (first_index, first), (second_index, second) = (time_index, time_value), (eid_index, eid_value)
    else:
        (first_index, first), (second_index, second) = (eid_index, eid_value), (time_index, time_value)

    def gen_events(ctx: QueryContext) -> Iterator[tuple]:
        session = ctx.session
        ring = session.rings.get(name) if session is not None else None
        if ring is None:
            return
        given = session.rows.get(name)
        if given is not None:
            entries: Iterable[tuple] = given  # one time window's rows (streamq.stream), chosen by its reader
            ceiling = None
        else:
            after, upto, min_time = _bounds(ctx, name, stamp)
            ceiling = session.ceilings.get(name)
            if upto is not None:
                ceiling = upto if ceiling is None else min(ceiling, upto)
            limit = None if ceiling is None else max(0, ceiling - after)
            entries = ring.since(after, min_time=min_time, limit=limit)
        for eid, when, row in entries:
            if ceiling is not None and eid > ceiling:
                break
            if tail_layout and not isinstance(row, dict):
                yield (*row, int(when) if whole_seconds else when, eid)
                continue
            values = [row.get(n) for n in data_names] if isinstance(row, dict) else list(row)
            values.insert(first_index, first(eid, when))  # insert the lower index first:
            values.insert(second_index, second(eid, when))  # the higher one is then in place
            yield tuple(values)

    spec = Table(
        name=name,
        description=description,
        columns=cols,
        generate=gen_events,
        examples=tuple(examples) or (f"SELECT * FROM {name} WHERE time > strftime('%s', 'now') - 60",),
        cost=10_000,
        module=__name__,
    )
    return register(spec)


def event_row(table: Table, row: dict) -> tuple:
    """A source's dict as the tuple a ring stores (data columns only, in spec order)."""
    return tuple(row.get(c.name) for c in table.columns if c.name not in _EVENT_TAIL)


def entry_getter(table: Table, column: str):
    """A function from a ring entry ``(eid, when, row)`` of ``table`` to the value of ``column``."""
    stamp = ARRIVAL if any(c.name == ARRIVAL for c in table.columns) else EVENT_TIME.name
    if column == stamp:
        return lambda entry: entry[1]
    if column == EVENT_ID.name:
        return lambda entry: entry[0]
    data = [c.name for c in table.columns if c.name not in (stamp, EVENT_ID.name)]
    index = data.index(column)
    return lambda entry: entry[2][index] if type(entry[2]) is tuple else entry[2].get(column)


_ACTION = Column("action", TEXT, "What happened: fork, exec or exit.")
CONTAINER_COLUMNS = (
    Column("container_id", TEXT, "Container the process runs in, from its cgroup (NULL on the host)."),
    Column("container_runtime", TEXT, "docker, containerd, cri-o, podman, systemd-nspawn, lxc or cri."),
    Column("pod_uid", TEXT, "Kubernetes pod uid, when the cgroup names one."),
)

PROCESS_EVENTS = make_event_table(
    "process_events",
    "Process starts, executions and exits, from the kernel's proc connector (or /proc polling without it).",
    [
        Column("pid", BIGINT, "Process ID."),
        Column("path", TEXT, "Executable path, read from /proc at exec."),
        Column("mode", TEXT, "Permission bits of the executable, octal."),
        Column("cmdline", TEXT, "Command line, arguments joined by spaces."),
        Column("cmdline_size", BIGINT, "Length of the command line in bytes.", hidden=True),
        Column("env", TEXT, "Environment at exec; not collected (always NULL).", hidden=True),
        Column("env_count", BIGINT, "Number of environment variables; not collected.", hidden=True),
        Column("env_size", BIGINT, "Size of the environment; not collected.", hidden=True),
        Column("cwd", TEXT, "Working directory at exec."),
        Column("auid", BIGINT, "Audit (login) user ID."),
        Column("uid", BIGINT, "Real user ID."),
        Column("euid", BIGINT, "Effective user ID."),
        Column("gid", BIGINT, "Real group ID."),
        Column("egid", BIGINT, "Effective group ID."),
        Column("owner_uid", BIGINT, "Owner of the executable."),
        Column("owner_gid", BIGINT, "Group of the executable."),
        Column("atime", BIGINT, "Executable access time."),
        Column("mtime", BIGINT, "Executable modification time."),
        Column("ctime", BIGINT, "Executable status change time."),
        Column("btime", BIGINT, "Executable birth time, where known."),
        Column("overflows", TEXT, "Receive-buffer overflows seen before this event, if any.", hidden=True),
        Column("parent", BIGINT, "Parent process ID."),
        EVENT_TIME,
        Column("uptime", BIGINT, "Host uptime in seconds at the event."),
        EVENT_ID,
        Column("fsuid", BIGINT, "Filesystem user ID."),
        Column("suid", BIGINT, "Saved user ID."),
        Column("fsgid", BIGINT, "Filesystem group ID."),
        Column("sgid", BIGINT, "Saved group ID."),
        Column("syscall", TEXT, "The system call: fork, execve or exit."),
        _ACTION,
        Column("exit_code", INTEGER, "Exit status at exit (the signal number + 128 when killed)."),
        *CONTAINER_COLUMNS,
    ],
    examples=("SELECT pid, path, cmdline FROM process_events WHERE action = 'exec'",),
)

FILE_EVENTS = make_event_table(
    "file_events",
    "Changes to watched files and directories, from inotify.",
    [
        Column("target_path", TEXT, "Path of the file that changed."),
        Column("category", TEXT, "The configured watch (pattern) that matched."),
        Column("action", TEXT, "CREATED, UPDATED, DELETED, MOVED_FROM, MOVED_TO or ATTRIBUTES_MODIFIED."),
        Column("transaction_id", BIGINT, "Pairs MOVED_FROM with its MOVED_TO (inotify cookie), else 0."),
        Column("inode", BIGINT, "Inode of the file after the change."),
        Column("uid", BIGINT, "Owner user ID."),
        Column("gid", BIGINT, "Owner group ID."),
        Column("mode", TEXT, "Permission bits, octal."),
        Column("size", BIGINT, "Size in bytes."),
        Column("atime", BIGINT, "Access time."),
        Column("mtime", BIGINT, "Modification time."),
        Column("ctime", BIGINT, "Status change time."),
        Column("md5", TEXT, "MD5 of the content, when hashing is on."),
        Column("sha1", TEXT, "SHA-1 of the content, when hashing is on."),
        Column("sha256", TEXT, "SHA-256 of the content, when hashing is on."),
        Column("hashed", INTEGER, "1 if hashed, 0 if not asked, -1 if it failed or was too big."),
    ],
    examples=("SELECT target_path, action FROM file_events",),
)

YARA_EVENTS = make_event_table(
    "yara_events",
    "Watched files that matched YARA rules when written or moved in, from inotify (source `yara`).",
    [
        Column("target_path", TEXT, "Path of the file scanned."),
        Column("category", TEXT, "The category of watched paths ([sources.yara] paths) it lies in."),
        Column("action", TEXT, "UPDATED (closed after writing), MOVED_TO, or CREATED (found by a rescan)."),
        Column("matches", TEXT, "Names of the matching rules, comma-separated."),
        Column("count", INTEGER, "Number of matching rules."),
        Column("strings", TEXT, "Matching strings as $identifier:hex offset, comma-separated."),
        Column("tags", TEXT, "Tags of the matching rules, comma-separated."),
    ],
    examples=("SELECT target_path, matches, strings FROM yara_events",),
)

SOCKET_EVENTS = make_event_table(
    "socket_events",
    "Sockets that started listening, connected, were accepted or closed, from sock_diag polling.",
    [
        Column("action", TEXT, "listen, connect, accept or close."),
        Column("pid", BIGINT, "Process holding the socket, when found."),
        Column("path", TEXT, "Executable of that process, or the socket path for unix sockets."),
        Column("fd", TEXT, "File descriptor number in that process."),
        Column("auid", BIGINT, "Audit user ID; not available from sock_diag (NULL)."),
        Column("family", INTEGER, "Address family: 2 (IPv4), 10 (IPv6), 1 (unix)."),
        Column("protocol", INTEGER, "IP protocol: 6 (TCP), 17 (UDP).", hidden=True),
        Column("local_address", TEXT, "Local address."),
        Column("remote_address", TEXT, "Remote address."),
        Column("local_port", INTEGER, "Local port."),
        Column("remote_port", INTEGER, "Remote port."),
        Column("socket", TEXT, "Socket inode number.", hidden=True),
        dataclasses.replace(EVENT_TIME, description="When the change was seen, unix seconds."),
        Column("uptime", BIGINT, "Host uptime in seconds at the event."),
        EVENT_ID,
        Column("success", INTEGER, "1: the socket operation succeeded.", hidden=True),
        Column("status", TEXT, "TCP state after the change (LISTEN, ESTABLISHED, CLOSE...)."),
        Column("uid", BIGINT, "User owning the socket."),
        *CONTAINER_COLUMNS,
    ],
    examples=("SELECT action, pid, local_port FROM socket_events WHERE action = 'listen'",),
)

NETWORK_EVENTS = make_event_table(
    "network_events",
    "Links, addresses and routes added, removed or changing state, from rtnetlink.",
    [
        Column("action", TEXT, "link_added, link_removed, link_up, link_down, address_added, ..."),
        Column("interface", TEXT, "Interface name."),
        Column("address", TEXT, "Address added or removed."),
        Column("mask", TEXT, "Netmask of that address."),
        Column("gateway", TEXT, "Route gateway."),
        Column("destination", TEXT, "Route destination."),
        Column("family", INTEGER, "Address family: 2 (IPv4), 10 (IPv6), 0 for links."),
    ],
    examples=("SELECT action, interface, address FROM network_events",),
)

HARDWARE_EVENTS = make_event_table(
    "hardware_events",
    "Devices added, removed or changed, from the kernel's uevent netlink socket.",
    [
        Column("action", TEXT, "add, remove, change, bind, unbind, ..."),
        Column("path", TEXT, "Device path in /sys."),
        Column("type", TEXT, "Device type or subsystem."),
        Column("driver", TEXT, "Driver bound to the device."),
        Column("vendor", TEXT, "Vendor name."),
        Column("vendor_id", TEXT, "Vendor ID."),
        Column("model", TEXT, "Model name."),
        Column("model_id", TEXT, "Model ID."),
        Column("serial", TEXT, "Serial number."),
        Column("revision", TEXT, "Revision."),
    ],
    examples=("SELECT action, path FROM hardware_events",),
)

SYSLOG_EVENTS = make_event_table(
    "syslog_events",
    "Syslog messages (RFC 3164 and RFC 5424) received on the syslog source's socket.",
    [
        EVENT_TIME,
        Column("datetime", TEXT, "The message's own timestamp, RFC 3339 text."),
        Column("host", TEXT, "Hostname in the message; this host's name for a local sender that gives none."),
        Column("severity", INTEGER, "Syslog severity: 0 (emerg) to 7 (debug)."),
        Column("facility", TEXT, "Syslog facility, as rsyslog names it: kern, user, auth, daemon, local0, ..."),
        Column("tag", TEXT, "RFC 5424 APP-NAME, or the RFC 3164 tag before ':' (with its [pid])."),
        Column("message", TEXT, "The message text."),
    ],
    examples=("SELECT datetime, host, severity, facility, tag, message FROM syslog_events",),
)
