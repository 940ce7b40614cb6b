"""Per-process tables against ps, os.stat, readlink and a child process the tests spawn."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time

import pytest

ENV_KEY = "STREAMQ_TEST_ENV"

# The child opens a file, reports its fd, and waits for stdin to close.
CHILD = textwrap.dedent(
    """
    import sys
    f = open(sys.argv[1], "w")
    print(f.fileno(), flush=True)
    sys.stdin.read()
    """
)


@pytest.fixture(scope="module")
def child(tmp_path_factory):
    """A python child with a non-UTF-8 argument, a non-UTF-8 env value, a tmp cwd and an open tmp file."""
    tmp = tmp_path_factory.mktemp("proc")
    held = tmp / "held.txt"
    env = os.environb.copy()
    env[ENV_KEY.encode()] = b"value-\xff"
    args = [sys.executable, "-c", CHILD, str(held), b"arg\xff"]
    proc = subprocess.Popen(args, cwd=tmp, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        fd = int(proc.stdout.readline())
        yield {"proc": proc, "pid": proc.pid, "cwd": str(tmp), "held": str(held), "fd": fd}
    finally:
        proc.kill()
        proc.wait()


def ps_snapshot() -> dict[int, tuple[int, int, str]]:
    out = subprocess.run(["ps", "-eo", "pid=,ppid=,uid=,comm="], capture_output=True, text=True, check=True).stdout
    snap = {}
    for line in out.splitlines():
        pid, ppid, uid, comm = line.split(None, 3)
        snap[int(pid)] = (int(ppid), int(uid), comm)
    return snap


def test_processes_match_ps(conn):
    before = ps_snapshot()
    rows = conn.query("SELECT pid, parent, uid, name FROM processes")
    after = ps_snapshot()
    ours = {r["pid"]: (r["parent"], r["uid"], r["name"]) for r in rows}
    # Only processes that ps saw unchanged on both sides of our query can be compared.
    stable = [pid for pid in before.keys() & after.keys() if before[pid] == after[pid] and pid in ours]
    assert len(stable) >= 3
    for pid in stable:
        ppid, uid, comm = before[pid]
        assert ours[pid][:2] == (ppid, uid), pid
        if comm.isprintable() and "?" not in comm:  # ps masks unprintable bytes
            assert ours[pid][2] == comm, pid
    assert all(isinstance(pid, int) for pid in ours)


def test_child_row(conn, child):
    rows = conn.query("SELECT * FROM processes WHERE pid = ?", (child["pid"],))
    assert len(rows) == 1
    row = rows[0]
    assert row["parent"] == os.getpid()
    assert row["path"] == os.path.realpath(sys.executable)
    assert row["on_disk"] == 1
    assert row["cwd"] == child["cwd"]
    assert row["root"] == "/"
    assert row["cmdline"].endswith(f"{child['held']} arg\\xff")
    assert row["cmdline"].startswith(f"{sys.executable} -c ")
    assert row["name"] == os.path.basename(sys.executable)[:15]  # comm comes from the exec'd name
    assert row["name"] == ps_snapshot()[child["pid"]][2]
    assert (row["uid"], row["euid"], row["gid"]) == (os.getuid(), os.geteuid(), os.getgid())
    assert row["threads"] >= 1 and row["state"] in {"S", "R", "D"}
    assert abs(row["start_time"] - time.time()) < 600


def test_pid_in_and_text(conn, child):
    me = os.getpid()
    rows = conn.query(f"SELECT pid FROM processes WHERE pid IN ({child['pid']}, {me})")
    assert sorted(r["pid"] for r in rows) == sorted([child["pid"], me])
    assert conn.query("SELECT pid FROM processes WHERE pid = 'x'") == []
    assert conn.query("SELECT pid FROM processes WHERE pid = ?", (str(me),)) == [{"pid": me}]
    assert conn.query("SELECT pid FROM processes WHERE pid = ?", (float(me),)) == [{"pid": me}]


def test_thread_id_is_not_a_process(conn):
    stop = threading.Event()
    worker = threading.Thread(target=stop.wait)
    worker.start()
    try:
        tid = worker.native_id
        assert os.path.exists(f"/proc/{tid}")  # the kernel answers for a thread id too
        assert conn.query("SELECT pid FROM processes WHERE pid = ?", (tid,)) == []
        assert tid not in {r["pid"] for r in conn.query("SELECT pid FROM processes")}
    finally:
        stop.set()
        worker.join()


def test_exited_process_gives_no_rows(conn):
    proc = subprocess.Popen(["true"])
    proc.wait()
    for name in ("processes", "process_open_files", "process_envs", "process_memory_map", "process_namespaces"):
        assert conn.query(f"SELECT * FROM {name} WHERE pid = ?", (proc.pid,)) == [], name


def test_churn_never_raises(conn):
    stop = threading.Event()
    spawned = []

    def churn():
        while not stop.is_set():
            procs = [subprocess.Popen(["sleep", "0.005"]) for _ in range(5)]
            for p in procs:
                p.kill()
                p.wait()
            spawned.append(len(procs))

    worker = threading.Thread(target=churn)
    worker.start()
    try:
        for _ in range(20):
            assert conn.query("SELECT * FROM processes")
        for name in ("process_open_files", "process_envs", "process_memory_map", "process_namespaces"):
            for _ in range(3):
                conn.query(f"SELECT * FROM {name}")
    finally:
        stop.set()
        worker.join()
    assert sum(spawned) >= 10


def test_open_files(conn, child):
    rows = conn.query("SELECT fd, path FROM process_open_files WHERE pid = ?", (child["pid"],))
    assert {"fd": child["fd"], "path": child["held"]} in rows
    assert all(r["path"].startswith("/") for r in rows)  # pipes (its stdin/stdout) are left out
    fds = set(map(int, os.listdir(f"/proc/{child['pid']}/fd")))
    assert {r["fd"] for r in rows} < fds


def test_open_files_deleted_and_non_utf8(conn, tmp_path):
    name = os.path.join(os.fsencode(tmp_path), b"odd-\xfe")
    fd = os.open(name, os.O_CREAT | os.O_WRONLY, 0o600)
    try:
        rows = conn.query("SELECT path FROM process_open_files WHERE pid = ? AND fd = ?", (os.getpid(), fd))
        assert rows == [{"path": f"{tmp_path}/odd-\\xfe"}]
        os.unlink(name)
        rows = conn.query("SELECT path FROM process_open_files WHERE pid = ? AND fd = ?", (os.getpid(), fd))
        assert rows == [{"path": f"{tmp_path}/odd-\\xfe (deleted)"}]
    finally:
        os.close(fd)


def test_envs(conn, child):
    rows = conn.query("SELECT key, value FROM process_envs WHERE pid = ?", (child["pid"],))
    env = {r["key"]: r["value"] for r in rows}
    assert env[ENV_KEY] == "value-\\xff"
    assert env["PATH"] == os.environ["PATH"]
    assert not conn.query("SELECT 1 FROM process_envs WHERE pid = ? AND key = ?", (os.getpid(), ENV_KEY))


def test_memory_map(conn, child):
    rows = conn.query("SELECT * FROM process_memory_map WHERE pid = ?", (child["pid"],))
    exe = os.path.realpath(sys.executable)
    st = os.stat(exe)
    mine = [r for r in rows if r["path"] == exe]
    assert mine and all(r["inode"] == st.st_ino and r["pseudo"] == 0 for r in mine)
    if os.major(st.st_dev):  # overlay-like filesystems report another device in maps
        assert mine[0]["device"] == f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}"
    assert any(r["permissions"].startswith("r-x") for r in mine) or any("x" in r["permissions"] for r in rows)
    stack = [r for r in rows if r["path"] == "[stack]"]
    assert len(stack) == 1 and stack[0]["pseudo"] == 1 and stack[0]["inode"] == 0
    for r in rows:
        assert r["start"].startswith("0x") and int(r["start"], 16) < int(r["end"], 16)
        assert r["pseudo"] == (1 if r["inode"] == 0 and r["path"] else 0)
    assert any(r["path"] is None for r in rows)  # anonymous memory


def readlink_ns(pid: int) -> dict[str, str | None]:
    out = {}
    for kind in ("cgroup", "ipc", "mnt", "net", "pid", "user", "uts"):
        try:
            out[f"{kind}_namespace"] = os.readlink(f"/proc/{pid}/ns/{kind}").split("[")[1].rstrip("]")
        except OSError:
            out[f"{kind}_namespace"] = None
    return out


@pytest.mark.parametrize("which", ["init", "child"])
def test_namespaces(conn, child, which):
    pid = 1 if which == "init" else child["pid"]
    expected = readlink_ns(pid)
    rows = conn.query("SELECT * FROM process_namespaces WHERE pid = ?", (pid,))
    if not any(expected.values()):
        assert rows == []  # pid 1 can be unreadable even for root in a sandbox
    else:
        assert rows == [{"pid": pid, **expected}]
        assert all(v is None or v.isdigit() for v in expected.values())
