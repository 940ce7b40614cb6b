"""process_open_pipes, shared_memory and kernel_keys against fstat, ipcs and keyctl."""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from streamq.host import ipc

IPC_PRIVATE, IPC_CREAT, IPC_RMID, SHM_LOCK = 0, 0o1000, 0, 11


def sh(*args: str) -> str:
    return subprocess.run(args, capture_output=True, text=True, check=True, timeout=20).stdout


# --- process_open_pipes -------------------------------------------------------------


def test_pipe_to_a_child_pairs_both_ends(conn):
    child = subprocess.Popen(["sleep", "30"], stdout=subprocess.PIPE)
    try:
        read_fd = child.stdout.fileno()
        inode = os.fstat(read_fd).st_ino
        rows = conn.query("SELECT * FROM process_open_pipes WHERE inode = ?", (inode,))
        mine = [r for r in rows if r["pid"] == os.getpid() and r["fd"] == read_fd]
        assert mine == [
            {
                "pid": os.getpid(),
                "fd": read_fd,
                "mode": "r",
                "inode": inode,
                "type": "anonymous",
                "partner_pid": child.pid,
                "partner_fd": 1,
                "partner_mode": "w",
            }
        ]
        theirs = [r for r in rows if r["pid"] == child.pid]
        assert [(r["fd"], r["mode"], r["partner_pid"], r["partner_fd"]) for r in theirs] == [
            (1, "w", os.getpid(), read_fd)
        ]
    finally:
        child.kill()
        child.wait()
        child.stdout.close()


def test_fifo_is_named_and_a_lone_end_has_no_partner(conn, tmp_path):
    fifo = tmp_path / "queue"
    os.mkfifo(fifo)
    fd = os.open(fifo, os.O_RDWR)  # O_RDWR opens a FIFO without waiting for a writer
    try:
        inode = os.stat(fifo).st_ino
        assert os.fstat(fd).st_ino == inode
        rows = conn.query("SELECT * FROM process_open_pipes WHERE pid = ? AND fd = ?", (os.getpid(), fd))
        assert rows == [
            {
                "pid": os.getpid(),
                "fd": fd,
                "mode": "rw",
                "inode": inode,
                "type": "named",
                "partner_pid": None,
                "partner_fd": None,
                "partner_mode": None,
            }
        ]
    finally:
        os.close(fd)


def test_pipe_pairing_rules():
    ends = [ipc.Pipe(1, 3, "r", 9, "anonymous"), ipc.Pipe(1, 4, "w", 9, "anonymous"), ipc.Pipe(2, 0, "r", 9, "x")]
    pairs = {(r["pid"], r["fd"], r["partner_pid"], r["partner_fd"]) for r in ipc.pipe_rows(ends)}
    # two readers are not partners; the writer pairs with both
    assert pairs == {(1, 3, 1, 4), (1, 4, 1, 3), (1, 4, 2, 0), (2, 0, 1, 4)}


# --- shared_memory -------------------------------------------------------------------


@pytest.fixture
def segment():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.shmat.restype = ctypes.c_void_p
    shmid = libc.shmget(IPC_PRIVATE, 12345, IPC_CREAT | 0o640)
    if shmid < 0:
        pytest.skip(f"shmget failed: {os.strerror(ctypes.get_errno())}")
    addr = libc.shmat(shmid, None, 0)
    yield shmid
    libc.shmdt(ctypes.c_void_p(addr))
    libc.shmctl(shmid, IPC_RMID, None)


def _ipcs_segment(shmid: int) -> dict[str, str]:
    text = sh("ipcs", "-m", "-i", str(shmid))
    return dict(re.findall(r"(\w+)=(\S+)", text))


def test_shared_memory_matches_ipcs(conn, segment):
    if not shutil.which("ipcs"):
        pytest.skip("ipcs (util-linux) is not installed")
    (row,) = conn.query("SELECT * FROM shared_memory WHERE shmid = ?", (segment,))
    theirs = _ipcs_segment(segment)
    assert row["size"] == int(theirs["bytes"]) == 12345
    assert row["owner_uid"] == int(theirs["uid"]) == os.geteuid()
    assert row["creator_uid"] == int(theirs["cuid"])
    assert row["creator_pid"] == int(theirs["cpid"]) == os.getpid()
    assert row["pid"] == int(theirs["lpid"])
    assert row["attached"] == int(theirs["nattch"]) == 1
    assert row["permissions"] == theirs["mode"] == "0640"
    assert (row["status"], row["locked"]) == ("", 0)
    assert row["ctime"] > 0 and row["atime"] > 0 and row["dtime"] == 0
    # `ipcs -m` lists the same ids as the table
    listed = {
        int(f[1]) for f in (line.split() for line in sh("ipcs", "-m").splitlines()) if len(f) > 2 and f[1].isdigit()
    }
    assert listed == {r["shmid"] for r in conn.query("SELECT shmid FROM shared_memory")}


def test_removed_segment_still_attached_is_dest(conn, segment):
    libc = ctypes.CDLL(None)
    libc.shmctl(segment, IPC_RMID, None)  # stays until we detach: the kernel marks it SHM_DEST
    (row,) = conn.query("SELECT status, permissions FROM shared_memory WHERE shmid = ?", (segment,))
    assert row["status"] == "dest"
    assert row["permissions"] == "1640"
    assert "dest" in sh("ipcs", "-m")


# --- kernel_keys ---------------------------------------------------------------------


@pytest.fixture
def user_key():
    if not shutil.which("keyctl"):
        pytest.skip("keyctl (keyutils) is not installed")
    name = f"streamq-test-{uuid.uuid4().hex[:8]}"
    try:
        serial = int(sh("keyctl", "add", "user", name, "secret", "@u").strip())
    except subprocess.CalledProcessError as err:
        pytest.skip(f"keyctl add failed: {err.stderr.strip()}")
    yield serial, name
    subprocess.run(["keyctl", "unlink", str(serial), "@u"], capture_output=True, timeout=20)


def test_kernel_keys_match_keyctl_and_proc_keys(conn, user_key):
    serial, name = user_key
    assert name in sh("keyctl", "list", "@u")
    rows = conn.query("SELECT * FROM kernel_keys WHERE serial_number = ?", (f"{serial:08x}",))
    assert len(rows) == 1, rows
    row = rows[0]
    key_type, uid, gid, perm, description = sh("keyctl", "rdescribe", str(serial)).strip().split(";", 4)
    assert (row["type"], row["uid"], row["gid"], row["permissions"]) == (key_type, int(uid), int(gid), perm)
    assert row["description"] == f"{description}: 6"  # the user type's summary is the payload length
    assert row["timeout"] == "perm" and row["flags"].startswith("I")
    proc_line = next(line for line in Path("/proc/keys").read_text().splitlines() if line.startswith(f"{serial:08x} "))
    assert proc_line.split()[2] == str(row["usage"])


def test_ipc_readers_cost_no_import_at_cold_start():
    code = "import sys, streamq.tables.ipc; print('streamq.host.ipc' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
