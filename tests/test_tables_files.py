"""file, hash and suid_bin against os.stat, hashlib, stat(1) and find(1), on files the tests create."""

from __future__ import annotations

import grp
import hashlib
import os
import pwd
import socket
import stat
import subprocess
import time

import pytest

from conftest import is_root, run_cli

FILE_COLUMNS = "path, directory, filename, inode, uid, gid, mode, device, size, block_size, atime, mtime, ctime, hard_links, symlink, type, symlink_target_path"


def _one(conn, sql, params=None):
    rows = conn.query(sql, params)
    assert len(rows) == 1, rows
    return rows[0]


def _expected(path: str, st: os.stat_result, *, symlink: int = 0, target: str | None = None) -> dict:
    return {
        "path": path,
        "directory": os.path.dirname(path),
        "filename": os.path.basename(path),
        "inode": st.st_ino,
        "uid": st.st_uid,
        "gid": st.st_gid,
        "mode": oct(stat.S_IMODE(st.st_mode))[2:].zfill(4),
        "device": st.st_rdev,
        "size": st.st_size,
        "block_size": st.st_blksize,
        "atime": int(st.st_atime),
        "mtime": int(st.st_mtime),
        "ctime": int(st.st_ctime),
        "hard_links": st.st_nlink,
        "symlink": symlink,
        "symlink_target_path": target,
    }


@pytest.fixture
def tree(tmp_path):
    """a.txt (0640, 5 bytes), b.log, mode0 (mode 0000), sub/c.txt, sub/deep/d.txt, .hidden, fifo, links."""
    (tmp_path / "a.txt").write_bytes(b"hello")
    os.chmod(tmp_path / "a.txt", 0o640)
    (tmp_path / "b.log").write_bytes(b"log line\n")
    (tmp_path / "mode0").write_bytes(b"secret")
    os.chmod(tmp_path / "mode0", 0)
    (tmp_path / "sub" / "deep").mkdir(parents=True)
    (tmp_path / "sub" / "c.txt").write_bytes(b"c")
    (tmp_path / "sub" / "deep" / "d.txt").write_bytes(b"d")
    (tmp_path / ".hidden").write_bytes(b"")
    os.mkfifo(tmp_path / "fifo")
    os.symlink("a.txt", tmp_path / "link")
    os.symlink("nowhere", tmp_path / "dangling")
    return tmp_path


# --- file: one path ---------------------------------------------------------------------------


def test_regular_file_matches_os_stat(conn, tree):
    path = str(tree / "a.txt")
    row = _one(conn, f"SELECT {FILE_COLUMNS} FROM file WHERE path = ?", (path,))
    expected = _expected(path, os.stat(path))
    assert row.pop("type") == "regular"
    assert row == expected
    assert row["mode"] == "0640" and row["size"] == 5


def test_symlink_row_describes_target_and_names_link(conn, tree):
    path = str(tree / "link")
    row = _one(conn, f"SELECT {FILE_COLUMNS} FROM file WHERE path = ?", (path,))
    assert row.pop("type") == "regular"  # osquery: the other columns follow the link
    assert row == _expected(path, os.stat(path), symlink=1, target="a.txt")
    assert row["inode"] == os.stat(tree / "a.txt").st_ino != os.lstat(path).st_ino


def test_dangling_symlink_describes_the_link_itself(conn, tree):
    path = str(tree / "dangling")
    row = _one(conn, f"SELECT {FILE_COLUMNS} FROM file WHERE path = ?", (path,))
    assert row.pop("type") == "symlink"
    assert row == _expected(path, os.lstat(path), symlink=1, target="nowhere")


@pytest.mark.parametrize(
    ("name", "kind", "mode"),
    [("fifo", "fifo", None), ("sub", "directory", None), ("mode0", "regular", "0000")],
)
def test_types_and_modes(conn, tree, name, kind, mode):
    path = str(tree / name)
    row = _one(conn, "SELECT type, mode, inode FROM file WHERE path = ?", (path,))
    assert row["type"] == kind
    assert row["inode"] == os.lstat(path).st_ino
    assert row["mode"] == (mode or oct(stat.S_IMODE(os.lstat(path).st_mode))[2:].zfill(4))


def test_socket_and_character_device(conn, tmp_path):
    sock_path = str(tmp_path / "s.sock")
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(sock_path)
        row = _one(conn, "SELECT type FROM file WHERE path = ?", (sock_path,))
        assert row["type"] == "socket"
    row = _one(conn, "SELECT type, device FROM file WHERE path = '/dev/null'")
    assert row == {"type": "character", "device": os.stat("/dev/null").st_rdev}
    assert row["device"] != 0


def test_setuid_mode_is_four_digits(conn, tmp_path):
    path = tmp_path / "suid"
    path.write_bytes(b"")
    os.chmod(path, 0o4755)
    assert _one(conn, "SELECT mode FROM file WHERE path = ?", (str(path),))["mode"] == "4755"


def test_btime_agrees_with_stat_command(conn, tree):
    path = str(tree / "a.txt")
    row = _one(conn, "SELECT btime FROM file WHERE path = ?", (path,))
    birth = int(subprocess.run(["stat", "-c", "%W", path], capture_output=True, text=True, check=True).stdout)
    if birth == 0 and row["btime"] is None:
        pytest.skip("this file system does not record birth times")
    assert row["btime"] == birth


def test_in_list_skips_missing_paths(conn, tree):
    paths = [str(tree / "a.txt"), str(tree / "missing"), "/nonexistent/x/y", str(tree / "sub")]
    rows = conn.query("SELECT path FROM file WHERE path IN (?, ?, ?, ?)", paths)
    assert sorted(r["path"] for r in rows) == sorted([paths[0], paths[3]])


def test_missing_path_is_no_row_and_no_error(conn):
    assert conn.query("SELECT * FROM file WHERE path = '/no/such/file'") == []
    assert conn.query("SELECT * FROM hash WHERE path = '/no/such/file'") == []


# --- file: directory listing and patterns --------------------------------------------------


def test_directory_lists_entries_not_itself_nor_recursively(conn, tree):
    rows = conn.query("SELECT path, filename, directory FROM file WHERE directory = ?", (str(tree),))
    assert sorted(r["filename"] for r in rows) == sorted(os.listdir(tree))
    assert {r["directory"] for r in rows} == {str(tree)}
    assert all(r["path"] == f"{tree}/{r['filename']}" for r in rows)


def test_directory_with_trailing_slash_keeps_paths_clean(conn, tree):
    rows = conn.query("SELECT path, directory FROM file WHERE directory = ?", (f"{tree}/",))
    assert len(rows) == len(os.listdir(tree))
    assert all("//" not in r["path"] and r["directory"] == f"{tree}/" for r in rows)


def test_dev_pack_query_is_fast_and_complete(conn):
    sql = (
        "select file.path, uid, gid, mode, 0 as atime, mtime, ctime, block_size, type "
        "from file where directory = '/dev/'"
    )
    started = time.perf_counter()
    rows = conn.query(sql)
    elapsed = time.perf_counter() - started
    assert sorted(r["path"] for r in rows) == sorted(f"/dev/{n}" for n in os.listdir("/dev"))
    assert elapsed < 0.5, elapsed


def test_directory_that_is_missing_or_a_file_gives_no_rows(conn, tree):
    assert conn.query("SELECT path FROM file WHERE directory = ?", (str(tree / "nope"),)) == []
    assert conn.query("SELECT path FROM file WHERE directory = ?", (str(tree / "a.txt"),)) == []


def _unreadable_directory(tmp_path) -> str:
    """A directory this user cannot list: a locked one, or for root pid 1's root where a sandbox hides it."""
    if not is_root:
        locked = tmp_path / "locked"
        locked.mkdir()
        (locked / "f").write_bytes(b"")
        locked.chmod(0)
        return str(locked)
    try:
        os.listdir("/proc/1/root")
    except PermissionError:
        return "/proc/1/root"
    pytest.skip("root can list every directory here")


def test_unreadable_directory_gives_no_rows(conn, tmp_path):
    directory = _unreadable_directory(tmp_path)
    assert conn.query("SELECT path FROM file WHERE directory = ?", (directory,)) == []
    assert conn.query("SELECT path FROM hash WHERE directory = ?", (directory,)) == []
    assert conn.query("SELECT path FROM file WHERE path LIKE ?", (directory + "/%",)) == []


def test_like_percent_is_one_level_with_hidden_files(conn, tree):
    rows = conn.query("SELECT path FROM file WHERE path LIKE ?", (f"{tree}/%",))
    assert sorted(r["path"] for r in rows) == sorted(f"{tree}/{n}" for n in os.listdir(tree))


def test_like_suffix_and_inner_levels(conn, tree):
    rows = conn.query("SELECT path FROM file WHERE path LIKE ?", (f"{tree}/%.txt",))
    assert [r["path"] for r in rows] == [f"{tree}/a.txt"]
    rows = conn.query("SELECT path FROM file WHERE path LIKE ?", (f"{tree}/%/%.txt",))
    assert [r["path"] for r in rows] == [f"{tree}/sub/c.txt"]


def test_like_double_percent_is_recursive(conn, tree):
    rows = conn.query("SELECT path FROM file WHERE path LIKE ?", (f"{tree}/%%",))
    expected = []
    for dirpath, dirnames, filenames in os.walk(tree):
        expected += [os.path.join(dirpath, n) for n in dirnames + filenames]
    assert sorted(r["path"] for r in rows) == sorted(expected)
    assert f"{tree}/sub/deep/d.txt" in expected


def test_like_double_percent_in_the_middle_spans_levels(conn, tree):
    rows = conn.query("SELECT path FROM file WHERE path LIKE ?", (f"{tree}/%%/d.txt",))
    assert [r["path"] for r in rows] == [f"{tree}/sub/deep/d.txt"]


def test_directory_like_lists_each_matching_directory(conn, tree):
    rows = conn.query("SELECT path, directory FROM file WHERE directory LIKE ?", (f"{tree}/s%",))
    assert sorted(r["path"] for r in rows) == sorted(f"{tree}/sub/{n}" for n in os.listdir(tree / "sub"))
    assert {r["directory"] for r in rows} == {f"{tree}/sub"}


def test_path_and_directory_together(conn, tree):
    rows = conn.query(
        "SELECT path, directory FROM file WHERE path = ? AND directory = ?", (f"{tree}/a.txt", f"{tree}/")
    )
    assert rows == [{"path": f"{tree}/a.txt", "directory": f"{tree}/"}]


# --- non-UTF-8 names ---------------------------------------------------------------------------


def test_non_utf8_name_round_trips(conn, tmp_path):
    raw = os.fsencode(str(tmp_path)) + b"/caf\xe9"
    with open(raw, "wb") as f:
        f.write(b"bytes")
    rows = conn.query("SELECT path, filename FROM file WHERE directory = ?", (str(tmp_path),))
    assert rows == [{"path": f"{tmp_path}/caf\\xe9", "filename": "caf\\xe9"}]
    again = _one(conn, "SELECT inode, size FROM file WHERE path = ?", (rows[0]["path"],))
    assert again == {"inode": os.stat(raw).st_ino, "size": 5}
    digest = _one(conn, "SELECT sha256 FROM hash WHERE path = ?", (rows[0]["path"],))["sha256"]
    assert digest == hashlib.sha256(b"bytes").hexdigest()
    like = conn.query("SELECT path FROM file WHERE path LIKE ?", (f"{tmp_path}/caf%",))
    assert [r["path"] for r in like] == [rows[0]["path"]]


# --- mount namespace ------------------------------------------------------------------------


def test_pid_with_namespace_reads_through_proc_root(conn, tree):
    pid = os.getpid()
    path = str(tree / "a.txt")
    row = _one(
        conn,
        "SELECT path, inode, pid_with_namespace, mount_namespace_id FROM file WHERE path = ? AND pid_with_namespace = ?",
        (path, pid),
    )
    ns = os.readlink(f"/proc/{pid}/ns/mnt")
    assert row == {
        "path": path,
        "inode": os.stat(path).st_ino,
        "pid_with_namespace": pid,
        "mount_namespace_id": ns[5:-1],
    }
    plain = _one(conn, "SELECT pid_with_namespace, mount_namespace_id FROM file WHERE path = ?", (path,))
    assert plain == {"pid_with_namespace": 0, "mount_namespace_id": None}


def test_pid_with_namespace_of_missing_process_gives_no_rows(conn, tree):
    with subprocess.Popen(["true"]) as child:
        child.wait()
    rows = conn.query("SELECT path FROM file WHERE path = ? AND pid_with_namespace = ?", (str(tree), child.pid))
    assert rows == []


# --- hash -------------------------------------------------------------------------------------


def test_hash_of_3mb_file(conn, tmp_path):
    data = os.urandom(3 * 1024 * 1024 + 17)
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    row = _one(conn, "SELECT path, directory, md5, sha1, sha256 FROM hash WHERE path = ?", (str(path),))
    assert row == {
        "path": str(path),
        "directory": str(tmp_path),
        "md5": hashlib.md5(data).hexdigest(),
        "sha1": hashlib.sha1(data).hexdigest(),
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    assert _one(conn, "SELECT sha1 FROM hash WHERE path = ?", (str(path),)) == {"sha1": hashlib.sha1(data).hexdigest()}


def test_hash_directory_lists_regular_files_only(conn, tree):
    rows = conn.query("SELECT path, md5 FROM hash WHERE directory = ?", (str(tree),))
    expected = {}
    for name in os.listdir(tree):
        p = tree / name
        if p.is_file():  # follows links, like osquery: the link to a.txt is hashed, the dangling one not
            expected[str(p)] = hashlib.md5(p.read_bytes()).hexdigest() if os.access(p, os.R_OK) else None
    assert {r["path"]: r["md5"] for r in rows} == expected
    assert str(tree / "link") in expected and str(tree / "sub") not in expected
    assert conn.query("SELECT path FROM hash WHERE path = ?", (str(tree / "sub"),)) == []


def test_hash_of_mode0_file(conn, tree):
    row = _one(conn, "SELECT md5 FROM hash WHERE path = ?", (str(tree / "mode0"),))
    assert row["md5"] == (hashlib.md5(b"secret").hexdigest() if is_root else None)


def test_hash_like(conn, tree):
    rows = conn.query("SELECT path, sha256 FROM hash WHERE path LIKE ?", (f"{tree}/%%.txt",))
    # "%%.txt" is not a trailing "%%" level, so it matches one level like "%.txt" (osquery's rule).
    assert rows == [{"path": f"{tree}/a.txt", "sha256": hashlib.sha256(b"hello").hexdigest()}]


# --- required constraint ----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["file", "hash"])
def test_missing_constraint_is_one_line_error(name):
    result = run_cli("query", f"select * from {name}")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "path" in lines[0] and "directory" in lines[0]


# --- suid_bin ---------------------------------------------------------------------------------

_FIND_ROOTS = ["/bin", "/sbin", "/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin", "/usr/libexec", "/opt"]


def _find(*args: str) -> set[str]:
    out = subprocess.run(["find", *args, "-xdev", "-perm", "/6000", "-type", "f"], capture_output=True, text=True)
    return set(out.stdout.split())


def test_suid_bin_matches_find(conn):
    found = _find(*[r for r in _FIND_ROOTS if os.path.lexists(r)]) | _find("/usr/lib", "-maxdepth", "3")
    started = time.perf_counter()
    rows = conn.query("SELECT * FROM suid_bin")
    assert time.perf_counter() - started < 1.0
    ours = {r["path"] for r in rows if not r["path"].startswith("/tmp/")}
    assert ours == found
    assert len(rows) == len({r["path"] for r in rows})  # merged /usr: /bin/su is not listed twice
    for r in rows:
        st = os.lstat(r["path"])
        assert r["username"] == pwd.getpwuid(st.st_uid).pw_name
        assert r["permissions"] == ("S" if st.st_mode & 0o4000 else "") + ("G" if st.st_mode & 0o2000 else "")


def test_suid_bin_finds_a_new_setuid_file_in_tmp(conn, tmp_path):
    if not str(tmp_path).startswith("/tmp/"):
        pytest.skip("the test's tmp dir is not under /tmp")
    path = tmp_path / "sg"
    path.write_bytes(b"#!/bin/sh\n")
    os.chmod(path, 0o6755)
    rows = conn.query("SELECT * FROM suid_bin WHERE path = ?", (str(path),))
    assert rows == [
        {
            "path": str(path),
            "username": pwd.getpwuid(os.getuid()).pw_name,
            "groupname": grp.getgrgid(os.getgid()).gr_name,
            "permissions": "SG",
        }
    ]
