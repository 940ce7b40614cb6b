"""Audit record parsing, event assembly and rows, on records as this kernel and auditd wrote them."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from streamq.host import auditrows
from streamq.host.auditlog import AUDIT_EOE, Assembler, parse_fields, parse_record
from streamq.host.syscalls import X86_64

EXE = "/root/.pyenv/versions/3.11.7/bin/python3.11"
IDS = "auid=4294967295 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=4294967295"
PATH_TAIL = "dev=fe:00 mode=0100644 ouid=0 ogid=0 rdev=00:00"
# A rename of /tmp/sqw/a to "/tmp/sqw/b b" (hex-encoded: it has a space), as captured here.
RENAME = [
    (1300, f"audit(1796034918.823:39): arch=c000003e syscall=82 success=yes exit=0 a0=7f409ea9d910 a1=7f409ea9da30 a2=0 a3=7f409f1d3528 items=4 ppid=27932 pid=27998 {IDS} comm=\"python3\" exe=\"{EXE}\" key=\"sqtest\""),
    (1307, 'audit(1796034918.823:39): cwd="/tmp"'),
    (1302, f'audit(1796034918.823:39): item=0 name="/tmp/sqw/" inode=2146394 {PATH_TAIL} nametype=PARENT'),
    (1302, f'audit(1796034918.823:39): item=1 name="/tmp/sqw/" inode=2146394 {PATH_TAIL} nametype=PARENT'),
    (1302, f'audit(1796034918.823:39): item=2 name="/tmp/sqw/a" inode=2146348 {PATH_TAIL} nametype=DELETE'),
    (1302, f"audit(1796034918.823:39): item=3 name=2F746D702F7371772F622062 inode=2146348 {PATH_TAIL} nametype=CREATE"),
    (1327, "audit(1796034918.823:39): proctitle=707974686F6E33002D63"),
    (AUDIT_EOE, "audit(1796034918.823:39): "),
]  # fmt: skip
# openat(AT_FDCWD, "/tmp/sqw/a", O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC), relative to the cwd this time.
CREATE = [
    (1300, f"audit(1796034918.819:38): arch=c000003e syscall=257 success=yes exit=3 a0=ffffff9c a1=7f409ea9d910 a2=80241 a3=1b6 items=2 ppid=27932 pid=27998 {IDS} comm=\"python3\" exe=\"{EXE}\" key=\"sqtest\""),
    (1307, 'audit(1796034918.819:38): cwd="/tmp/sqw/sub"'),
    (1302, f'audit(1796034918.819:38): item=0 name="../" inode=2146394 {PATH_TAIL} nametype=PARENT'),
    (1302, f'audit(1796034918.819:38): item=1 name="../a" inode=2146348 {PATH_TAIL} nametype=CREATE'),
]  # fmt: skip
USER = (
    1005,
    "audit(1796034757.795:6): pid=22191 uid=0 auid=4294967295 ses=4294967295 "
    "msg='text=via auditd exe=\"/usr/sbin/auditctl\" hostname=? addr=10.1.2.3 terminal=pts/0 res=success'",
)
AVC = (1400, 'audit(1700000000.100:70): avc:  denied  { read } for  pid=812 comm="cat" name="shadow" dev="vda" ino=1234 scontext=system_u:system_r:httpd_t:s0 tcontext=system_u:object_r:shadow_t:s0 tclass=file permissive=0')  # fmt: skip
APPARMOR = (1400, 'audit(1700000000.200:71): apparmor="DENIED" operation="open" profile="/usr/sbin/cupsd" name="/etc/shadow" pid=1234 comm="cupsd" requested_mask="r" denied_mask="r" fsuid=0 ouid=0')  # fmt: skip
APPARMOR_STATUS = (1505, 'audit(1700000000.300:72): apparmor="STATUS" operation="profile_load" profile="unconfined" name="docker-default" pid=99 comm="apparmor_parser"')  # fmt: skip
SECCOMP = (1326, 'audit(1700000000.400:73): auid=1000 uid=1000 gid=1000 ses=3 subj=unconfined pid=4321 comm="chrome" exe="/opt/chrome" sig=0 arch=c000003e syscall=41 compat=0 ip=0x7f1e2a3b4c5d code=0x50001')  # fmt: skip


def records(raw):
    return [parse_record(kind, text.encode() + b"\0") for kind, text in raw]


def test_fields_quoted_hex_null_and_user_message():
    fields = parse_fields(records([USER])[0].body)
    assert fields["msg"].startswith("text=via auditd exe=") and fields["msg"].endswith("res=success")
    assert (fields["exe"], fields["addr"], fields["terminal"], fields["pid"]) == (
        "/usr/sbin/auditctl",
        "10.1.2.3",
        "pts/0",
        "22191",
    )
    path = parse_fields(records(RENAME)[5].body)
    assert path["name"] == "/tmp/sqw/b b"  # hex decoded
    assert parse_fields(records(RENAME)[0].body)["key"] == "sqtest"
    assert parse_fields('key=(null) comm="a b"') == {"key": None, "comm": "a b"}
    assert parse_record(1005, b"no header") is None


def test_assembler_joins_by_serial_and_closes_on_eoe_or_timeout():
    asm = Assembler(timeout=0.5)
    recs = records(RENAME)
    interleaved = records(CREATE)  # serial 38, no EOE: closed by the timeout
    done = []
    for i, record in enumerate(recs):
        done += asm.add(record, now=10.0)
        if i < len(interleaved):
            done += asm.add(interleaved[i], now=10.0)
    assert [len(e) for e in done] == [7]  # the rename, EOE dropped
    assert asm.expire(10.4) == [] and len(asm) == 1
    (late,) = asm.expire(10.6)
    assert [r.serial for r in late] == [38] * 4
    user = records([USER])[0]
    assert asm.add(user, now=11.0) == [[user]]  # user messages never wait


def test_file_rows_rename_and_open_truncate():
    ((table, rename),) = list(auditrows.rows(records(RENAME)[:-1], uptime=5))
    assert table == "process_file_events"
    assert rename == {
        "operation": "rename", "pid": 27998, "ppid": 27932, "executable": EXE, "partial": "false",
        "cwd": "/tmp", "path": "/tmp/sqw/a", "dest_path": "/tmp/sqw/b b",
        "uid": "0", "gid": "0", "auid": "4294967295", "euid": "0", "egid": "0", "fsuid": "0",
        "fsgid": "0", "suid": "0", "sgid": "0", "uptime": 5,
    }  # fmt: skip
    ((_, create),) = list(auditrows.rows(records(CREATE), uptime=5))
    assert (create["operation"], create["path"], create["dest_path"]) == ("open+truncate", "/tmp/sqw/a", None)


def test_lsm_and_seccomp_rows():
    (selinux,) = list(auditrows.rows(records([AVC]), uptime=1))
    assert selinux == ("selinux_events", {"type": "AVC", "message": AVC[1], "uptime": 1})
    ((table, denied),) = list(auditrows.rows(records([APPARMOR]), uptime=1))
    assert table == "apparmor_events"
    assert (denied["type"], denied["apparmor"], denied["operation"], denied["profile"]) == (
        "AVC",
        "DENIED",
        "open",
        "/usr/sbin/cupsd",
    )
    assert (denied["name"], denied["pid"], denied["requested_mask"], denied["fsuid"]) == ("/etc/shadow", 1234, "r", 0)
    ((_, status),) = list(auditrows.rows(records([APPARMOR_STATUS]), uptime=1))
    assert (status["type"], status["apparmor"], status["name"]) == ("APPARMOR_STATUS", "STATUS", "docker-default")
    ((table, sec),) = list(auditrows.rows(records([SECCOMP]), uptime=1))
    assert table == "seccomp_events"
    assert (sec["pid"], sec["uid"], sec["comm"], sec["arch"], sec["syscall"], sec["code"]) == (
        4321,
        1000,
        "chrome",
        "X86_64",
        "socket",
        "ERRNO",
    )
    assert (sec["ip"], sec["sig"], sec["compat"], sec["ses"]) == ("0x7f1e2a3b4c5d", 0, 0, 3)


def test_user_row():
    ((table, row),) = list(auditrows.rows(records([USER]), uptime=2))
    assert table == "user_events"
    assert (row["type"], row["pid"], row["uid"], row["auid"]) == (1005, 22191, 0, 4294967295)
    assert (row["path"], row["address"], row["terminal"]) == ("/usr/sbin/auditctl", "10.1.2.3", "pts/0")


@pytest.mark.skipif(shutil.which("ausyscall") is None, reason="ausyscall (Debian: auditd) is not installed")
def test_syscall_names_match_ausyscall():
    out = subprocess.run(["ausyscall", "x86_64", "--dump"], capture_output=True, text=True, check=True).stdout
    theirs = {int(n): name for n, name in (line.split("\t") for line in out.splitlines()[1:])}
    # libaudit drops the kernel's "64" from these two; the kernel's names (and osquery's) keep it.
    ours = {n: {"pread64": "pread", "pwrite64": "pwrite"}.get(X86_64.get(n), X86_64.get(n)) for n in theirs}
    assert ours == theirs
