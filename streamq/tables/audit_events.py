"""The audit subsystem's event tables, in osquery's columns; the audit source fills them.

Rows come from sources/audit.py (config key ``audit``), which reads the kernel's
audit netlink socket beside auditd (see there); host/auditrows.py turns records
into these rows.
"""

from __future__ import annotations

from ..sql.schema import BIGINT, INTEGER, TEXT, UNSIGNED_BIGINT, Column
from .events import EVENT_ID, EVENT_TIME, make_event_table

_UPTIME = Column("uptime", BIGINT, "Host uptime in seconds when the event was read.")
_TYPE_NAME = Column("type", TEXT, "Record type name (AVC, MAC_POLICY_LOAD, APPARMOR_DENIED...).")
_MESSAGE = Column("message", TEXT, "The whole audit record as the kernel wrote it.")

USER_EVENTS = make_event_table(
    "user_events",
    "Messages user space sent to the audit log (PAM logins, sudo, auditctl -m...).",
    [
        Column("uid", BIGINT, "User ID of the sender."),
        Column("auid", BIGINT, "Audit (login) user ID of the sender; 4294967295 when unset."),
        Column("pid", BIGINT, "Process ID of the sender."),
        Column("message", TEXT, "The message (the text inside msg='...')."),
        Column("type", INTEGER, "Audit record type (1005 USER, 1100-1199 and 2100-2999 user messages)."),
        Column("path", TEXT, "Executable of the sender (exe)."),
        Column("address", TEXT, "Remote address, when the message names one (addr)."),
        Column("terminal", TEXT, "Terminal of the sender."),
        EVENT_TIME,
        _UPTIME,
        EVENT_ID,
    ],
    examples=("SELECT pid, type, message FROM user_events",),
)

_IDS_AS_TEXT = [
    Column(name, TEXT, f"{label} of the process, as the audit record gives it.")
    for name, label in (
        ("uid", "User ID"), ("gid", "Group ID"), ("auid", "Audit user ID"), ("euid", "Effective user ID"),
        ("egid", "Effective group ID"), ("fsuid", "Filesystem user ID"), ("fsgid", "Filesystem group ID"),
        ("suid", "Saved user ID"), ("sgid", "Saved group ID"),
    )
]  # fmt: skip

PROCESS_FILE_EVENTS = make_event_table(
    "process_file_events",
    "File operations recorded by audit watch rules (auditctl -w PATH -p wa), with the process behind them.",
    [
        Column("operation", TEXT, "open, open+truncate, write, truncate, unlink, rename, link, symlink, chmod..."),
        Column("pid", BIGINT, "Process ID."),
        Column("ppid", BIGINT, "Parent process ID."),
        EVENT_TIME,
        Column("executable", TEXT, "Executable of the process."),
        Column("partial", TEXT, "'true' when a record of the event was missing (no CWD or PATH), else 'false'."),
        Column("cwd", TEXT, "Working directory of the process."),
        Column("path", TEXT, "The file operated on (for rename and link, the source)."),
        Column("dest_path", TEXT, "The new name, for rename and link."),
        *_IDS_AS_TEXT,
        _UPTIME,
        EVENT_ID,
    ],
    examples=("SELECT operation, path, executable, pid FROM process_file_events",),
)

SELINUX_EVENTS = make_event_table(
    "selinux_events",
    "SELinux records of the audit log: AVC decisions, policy loads, status changes.",
    [_TYPE_NAME, _MESSAGE, EVENT_TIME, _UPTIME, EVENT_ID],
    examples=("SELECT type, message FROM selinux_events WHERE type = 'AVC'",),
)

APPARMOR_EVENTS = make_event_table(
    "apparmor_events",
    "AppArmor records of the audit log: denials, audits, profile loads.",
    [
        _TYPE_NAME,
        _MESSAGE,
        EVENT_TIME,
        _UPTIME,
        EVENT_ID,
        Column("apparmor", TEXT, "AppArmor's verdict: DENIED, ALLOWED, AUDIT, STATUS..."),
        Column("operation", TEXT, "The operation (open, exec, profile_load...)."),
        Column("parent", UNSIGNED_BIGINT, "Parent process ID."),
        Column("profile", TEXT, "The profile that applied."),
        Column("name", TEXT, "The object (a path, a profile name)."),
        Column("pid", UNSIGNED_BIGINT, "Process ID."),
        Column("comm", TEXT, "Command name of the process."),
        Column("denied_mask", TEXT, "Access denied."),
        Column("capname", TEXT, "Capability name."),
        Column("fsuid", UNSIGNED_BIGINT, "Filesystem user ID of the process."),
        Column("ouid", UNSIGNED_BIGINT, "Owner user ID of the object."),
        Column("capability", BIGINT, "Capability number."),
        Column("requested_mask", TEXT, "Access requested."),
        Column("info", TEXT, "Extra information."),
        Column("error", TEXT, "Error code."),
        Column("namespace", TEXT, "AppArmor namespace."),
        Column("label", TEXT, "AppArmor label."),
    ],
    examples=("SELECT operation, profile, name, comm FROM apparmor_events WHERE apparmor = 'DENIED'",),
)

SECCOMP_EVENTS = make_event_table(
    "seccomp_events",
    "System calls a seccomp filter acted on and logged (killed, trapped, errored, logged).",
    [
        EVENT_TIME,
        _UPTIME,
        Column("auid", UNSIGNED_BIGINT, "Audit user ID."),
        Column("uid", UNSIGNED_BIGINT, "User ID."),
        Column("gid", UNSIGNED_BIGINT, "Group ID."),
        Column("ses", UNSIGNED_BIGINT, "Session ID."),
        Column("pid", UNSIGNED_BIGINT, "Process ID."),
        Column("comm", TEXT, "Command name."),
        Column("exe", TEXT, "Executable."),
        Column("sig", BIGINT, "Signal the process received, 0 if none."),
        Column("arch", TEXT, "Architecture of the call (X86_64, AARCH64...)."),
        Column("syscall", TEXT, "System call name (x86_64), else its number."),
        Column("compat", BIGINT, "1 for a compat (32-bit) system call."),
        Column("ip", TEXT, "Instruction pointer."),
        Column("code", TEXT, "The filter's action: KILL_PROCESS, KILL_THREAD, TRAP, ERRNO, TRACE, LOG..."),
    ],
    examples=("SELECT pid, comm, syscall, code FROM seccomp_events",),
)
