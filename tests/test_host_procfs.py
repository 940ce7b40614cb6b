"""host/procfs: the /proc parsers on captured bytes, and the per-pid readers on this process and its threads."""

from __future__ import annotations

import os
import threading

from streamq.host import procfs
from streamq.host.procfs import parse_maps


def test_parse_maps():
    data = (
        b"00400000-00452000 r-xp 00001000 08:02 173521      /usr/bin/dbus daemon\n"
        b"7ffd1000-7ffd2000 rw-p 00000000 00:00 0                          [stack]\n"
        b"7f000000-7f001000 rw-p 00000000 00:00 0 \n"
        b"7f001000-7f002000 r--s 00000000 00:05 99  /tmp/odd-\xff (deleted)\n"
        b"garbage\n"
    )
    assert list(parse_maps(data)) == [
        ("0x00400000", "0x00452000", "r-xp", 4096, "08:02", 173521, "/usr/bin/dbus daemon", 0),
        ("0x7ffd1000", "0x7ffd2000", "rw-p", 0, "00:00", 0, "[stack]", 1),
        ("0x7f000000", "0x7f001000", "rw-p", 0, "00:00", 0, None, 0),
        ("0x7f001000", "0x7f002000", "r--s", 0, "00:05", 99, "/tmp/odd-\\xff (deleted)", 0),
    ]


def test_parse_cgroup_v2_v1_and_empty():
    assert procfs.parse_cgroup(b"0::/user.slice/session-1.scope\n") == "/user.slice/session-1.scope"
    hybrid = b"12:cpu,cpuacct:/a\n1:name=systemd:/b\n0::/c\n"
    assert procfs.parse_cgroup(hybrid) == "/c"  # the unified hierarchy's path wins
    assert procfs.parse_cgroup(b"12:cpu,cpuacct:/a\n1:name=systemd:/b\n") == "/a"
    assert procfs.parse_cgroup(b"") is None
    with open("/proc/self/cgroup", "rb") as f:
        own = f.read()
    assert procfs.parse_cgroup(own) == procfs.parse_cgroup(own + b"junk-without-colons\n")


def test_parse_io_bytes_agrees_with_parse_io():
    try:
        with open("/proc/self/io", "rb") as f:
            data = f.read()
    except OSError:
        data = b"rchar: 1\nwchar: 2\nsyscr: 3\nsyscw: 4\nread_bytes: 5\nwrite_bytes: 6\ncancelled_write_bytes: 0\n"
    io = procfs.parse_io(data)
    assert procfs.parse_io_bytes(data) == (io["read_bytes"], io["write_bytes"])
    shuffled = b"write_bytes: 9\nread_bytes: 8\n"  # not the kernel's order: the slow path still finds them
    assert procfs.parse_io_bytes(shuffled) == (8, 9)


def test_a_thread_is_not_a_thread_group_leader():
    started, stop = threading.Event(), threading.Event()
    tids = []

    def run():
        tids.append(threading.get_native_id())
        started.set()
        stop.wait(10)

    thread = threading.Thread(target=run)
    thread.start()
    try:
        started.wait(10)
        assert os.path.isdir(f"/proc/{tids[0]}")  # the kernel answers for the thread's id too
        assert not procfs.is_thread_group_leader(tids[0])
        assert procfs.is_thread_group_leader(os.getpid())
    finally:
        stop.set()
        thread.join()
    assert not procfs.is_thread_group_leader(2**22 + 1)  # above pid_max: no such process


def test_readlink_or_none_gives_sql_text(tmp_path):
    os.symlink(b"caf\xe9-target", os.fsencode(tmp_path / "odd"))
    os.symlink("plain-target", tmp_path / "plain")
    assert procfs.readlink_or_none(str(tmp_path / "odd")) == "caf\\xe9-target"
    assert procfs.readlink_or_none(str(tmp_path / "plain")) == "plain-target"
    assert procfs.readlink_or_none(str(tmp_path / "absent")) is None


def test_uptime_agrees_with_the_boottime_clock():
    import time

    assert abs(procfs.uptime() - time.clock_gettime(time.CLOCK_BOOTTIME)) < 1


def test_fd_targets_of_this_process(tmp_path):
    path = tmp_path / "open-me"
    path.write_text("x")
    with open(path) as f:
        targets = dict(procfs.fd_targets(os.getpid()))
        assert targets[f.fileno()] == str(path)
    assert procfs.fd_targets(2**22 + 1) is None  # no such process


def test_int_readers(tmp_path):
    assert [procfs.int_or_none(v) for v in (b"42\n", " 7 ", "x", None, b"")] == [42, 7, None, None, None]
    (tmp_path / "n").write_text("1234\n")
    (tmp_path / "blank").write_text("\n")
    assert procfs.read_int(str(tmp_path / "n")) == 1234
    assert procfs.read_int(str(tmp_path / "blank")) is None and procfs.read_int(str(tmp_path / "absent")) is None
    assert procfs.read_text(str(tmp_path / "n")) == "1234" and procfs.read_text(str(tmp_path / "blank")) is None
    with open("/proc/sys/kernel/pid_max") as f:
        assert procfs.read_int("/proc/sys/kernel/pid_max") == int(f.read())
