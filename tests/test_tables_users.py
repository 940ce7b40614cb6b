"""users, groups, user_groups, shadow, logged_in_users, last, shell_history,
authorized_keys, known_hosts, crontab and sudoers, against getent, id, utmpdump,
ssh-keygen, the files themselves, and files the tests write."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from test_host_userfiles import CRON_TEXT

from conftest import needs_root, retry
from streamq.host import userfiles, utmp
from streamq.tables import user_files, users

# --- users, groups, user_groups ------------------------------------------------------------


def _getent(db: str) -> list[list[str]]:
    out = subprocess.run(["getent", db], capture_output=True, text=True, check=True).stdout
    return [line.split(":") for line in out.splitlines() if line]


def test_users_match_getent(conn):
    expected = {int(f[2]): f for f in _getent("passwd")}
    rows = conn.query("SELECT * FROM users")
    assert {r["uid"] for r in rows} == set(expected)
    for r in rows:
        name, _pw, _uid, gid, gecos, home, shell = expected[r["uid"]]
        assert (r["username"], r["gid"], r["description"], r["directory"], r["shell"]) == (
            name,
            int(gid),
            gecos,
            home,
            shell,
        )
        assert r["uid_signed"] == r["uid"] and r["gid_signed"] == r["gid"]  # no ids past 2^31 here
        assert r["uuid"] is None


def test_users_pushdown(conn):
    rows = conn.query("SELECT uid, username FROM users WHERE uid = 0")
    assert rows == [{"uid": 0, "username": "root"}]
    rows = conn.query("SELECT uid FROM users WHERE uid IN (0, 1) ORDER BY uid")
    assert [r["uid"] for r in rows] == [0, 1]
    assert conn.query("SELECT uid FROM users WHERE username = 'root'") == [{"uid": 0}]
    assert conn.query("SELECT uid FROM users WHERE uid = 4000000000") == []


def test_users_include_remote_is_a_superset(conn):
    local = {r["uid"] for r in conn.query("SELECT uid FROM users")}
    everyone = {r["uid"] for r in conn.query("SELECT uid FROM users WHERE include_remote = 1")}
    assert local <= everyone


def test_ids_read_as_signed_32_bit():
    assert (users._signed(4294967294), users._signed(65534), users._signed(0)) == (-2, 65534, 0)


def test_login_type_names_follow_utmp_h():
    assert [users._LOGIN_TYPES[t] for t in (utmp.EMPTY, utmp.RUN_LVL, utmp.USER_PROCESS, utmp.ACCOUNTING)] == [
        *("empty", "runlevel", "user", "accounting")
    ]
    assert [users._LAST_TYPES[t] for t in (utmp.BOOT_TIME, utmp.LOGIN_PROCESS, utmp.DEAD_PROCESS)] == [
        *("boot-time", "login-process", "dead-process")
    ]


def test_groups_match_getent(conn):
    expected = {int(f[2]): f[0] for f in _getent("group")}
    rows = conn.query("SELECT gid, gid_signed, groupname FROM groups")
    assert {r["gid"]: r["groupname"] for r in rows} == expected
    assert all(r["gid_signed"] == r["gid"] for r in rows)
    assert conn.query("SELECT groupname FROM groups WHERE gid = 0") == [{"groupname": "root"}]


def test_user_groups_match_id(conn):
    for name, _pw, uid, *_ in _getent("passwd"):
        out = subprocess.run(["id", "-G", name], capture_output=True, text=True, check=True).stdout
        expected = {int(g) for g in out.split()}
        rows = conn.query("SELECT gid FROM user_groups WHERE uid = ?", (int(uid),))
        assert {r["gid"] for r in rows} == expected, name
        assert len(rows) == len(expected), f"{name}: duplicate pairs"


def test_user_groups_gid_pushdown(conn):
    members = {r["uid"] for r in conn.query("SELECT uid FROM user_groups WHERE gid = 0")}
    assert 0 in members
    assert {r["gid"] for r in conn.query("SELECT gid FROM user_groups WHERE gid = 0")} == {0}


# --- shadow --------------------------------------------------------------------------------


def _field(value: str):
    return int(value) if value else None


@needs_root
def test_shadow_matches_file(conn):
    with open("/etc/shadow") as f:
        lines = [line.rstrip("\n").split(":") for line in f if line.strip() and not line.startswith("#")]
    rows = {r["username"]: r for r in conn.query("SELECT * FROM shadow")}
    assert set(rows) == {f[0] for f in lines}
    for name, hashed, *rest in lines:
        r = rows[name]
        assert [r[c] for c in ("last_change", "min", "max", "warning", "inactive", "expire", "flag")] == [
            _field(v) for v in (rest + [""] * 7)[:7]
        ]
        if len(hashed) > 2:
            assert hashed not in r.values()  # the hash itself never comes out
    assert conn.query("SELECT username FROM shadow WHERE username = 'root'") == [{"username": "root"}]


# --- utmp / wtmp -----------------------------------------------------------------------------

UTMPDUMP_TEXT = """\
[2] [00000] [~~  ] [reboot  ] [~           ] [6.1.0-test          ] [0.0.0.0        ] [2024-01-02T03:04:05,000000+00:00]
[1] [00001] [~~  ] [runlevel] [~           ] [6.1.0-test          ] [0.0.0.0        ] [2024-01-02T03:04:06,000000+00:00]
[6] [00777] [tty1] [LOGIN   ] [tty1        ] [                    ] [0.0.0.0        ] [2024-01-02T03:04:07,000000+00:00]
[7] [12345] [ts/0] [alice   ] [pts/0       ] [10.0.0.5            ] [10.0.0.5       ] [2024-01-02T03:05:06,123456+00:00]
[8] [12345] [ts/0] [        ] [pts/0       ] [                    ] [0.0.0.0        ] [2024-01-02T04:05:06,000000+00:00]
"""


@pytest.fixture
def wtmp_file(tmp_path):
    """A wtmp image written by util-linux's utmpdump, not by us."""
    path = tmp_path / "wtmp"
    with open(path, "wb") as out:
        subprocess.run(
            ["utmpdump", "-r"], input=UTMPDUMP_TEXT.encode(), stdout=out, stderr=subprocess.DEVNULL, check=True
        )
    return str(path)


def test_last_rows_from_utmpdump(wtmp_file):
    rows = list(users.last_rows(wtmp_file))
    assert rows == [
        ("reboot", "~", 0, 2, "boot-time", 1704164645, "6.1.0-test"),
        ("runlevel", "~", 1, 1, "run-level", 1704164646, "6.1.0-test"),
        ("LOGIN", "tty1", 777, 6, "login-process", 1704164647, None),
        ("alice", "pts/0", 12345, 7, "user-process", 1704164706, "10.0.0.5"),
        (None, "pts/0", 12345, 8, "dead-process", 1704168306, None),
    ]


def test_logged_in_rows_from_utmpdump(wtmp_file):
    rows = list(users.logged_in_rows(wtmp_file))
    assert [r[0] for r in rows] == ["boot_time", "login", "user", "dead"]  # pid 1 (runlevel) left out
    assert rows[2] == ("user", "alice", "pts/0", "10.0.0.5", 1704164706, 12345)
    # `who` reads the same file and lists only the user session.
    who = subprocess.run(["who", wtmp_file], capture_output=True, text=True, check=True).stdout
    assert [line.split()[:2] for line in who.splitlines()] == [["alice", "pts/0"]]


def test_logged_in_users_live_matches_who(conn):
    rows = conn.query("SELECT * FROM logged_in_users WHERE type = 'user'")
    who = subprocess.run(["who"], capture_output=True, text=True, check=True).stdout
    assert sorted((r["user"], r["tty"]) for r in rows) == sorted(tuple(line.split()[:2]) for line in who.splitlines())


def test_last_live_runs(conn):
    rows = conn.query("SELECT * FROM last")
    size = os.path.getsize(utmp.WTMP) if os.access(utmp.WTMP, os.R_OK) else 0
    assert len(rows) == size // 384


# --- shell_history -----------------------------------------------------------------------------


def test_shell_history_files(tmp_path):
    (tmp_path / ".bash_history").write_bytes(b"ls -la\n#1690000000\necho stamped\n#notatime\n\n")
    zsh = b": 1690000001:0;git status\n: 1690000002:3;for i in 1 2; do\\\necho $i\\\ndone\n"
    zsh += b": 1690000003:0;echo caf\x83\xe9\n"  # zsh metafies 0xc9 as 0x83, 0xc9 ^ 0x20 (see unmetafy)
    (tmp_path / ".zsh_history").write_bytes(zsh)
    (tmp_path / ".sh_history").write_bytes(b"pwd\n")
    rows = list(user_files.shell_history_rows(0, str(tmp_path)))
    assert [(r[1], r[2]) for r in rows] == [
        (None, "ls -la"),
        (1690000000, "echo stamped"),
        (None, "#notatime"),
        (1690000001, "git status"),
        (1690000002, "for i in 1 2; do\necho $i\ndone"),
        (1690000003, "echo caf\\xc9"),
        (None, "pwd"),
    ]
    assert {r[3] for r in rows} == {str(tmp_path / n) for n in (".bash_history", ".zsh_history", ".sh_history")}
    assert all(r[0] == 0 for r in rows)


def test_user_files_are_not_followed(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("do not read\n")
    (tmp_path / ".bash_history").symlink_to(secret)
    os.mkfifo(tmp_path / ".zsh_history")  # opening a FIFO must not hang the query
    assert list(user_files.shell_history_rows(0, str(tmp_path))) == []


@needs_root
def test_user_files_owned_by_someone_else_are_skipped(tmp_path):
    hist = tmp_path / ".bash_history"
    hist.write_text("whoami\n")
    os.chown(hist, 65534, 65534)
    assert list(user_files.shell_history_rows(1234, str(tmp_path))) == []  # neither the user nor root
    assert [r[2] for r in user_files.shell_history_rows(65534, str(tmp_path))] == ["whoami"]


def test_shell_history_live(conn):
    rows = conn.query("SELECT * FROM shell_history WHERE uid = 0")
    assert all(r["uid"] == 0 and r["history_file"].startswith(os.path.expanduser("~root")) for r in rows)


# --- authorized_keys and known_hosts -----------------------------------------------------------------


def _keygen(tmp_path, kind: str, comment: str) -> str:
    key = tmp_path / f"id_{kind}"
    subprocess.run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", comment, "-f", str(key)], check=True)
    return (tmp_path / f"id_{kind}.pub").read_text().strip()


def test_authorized_keys_parse(tmp_path):
    ed = _keygen(tmp_path, "ed25519", "alice@laptop")
    ec = _keygen(tmp_path, "ecdsa", "")
    ssh = tmp_path / "home" / ".ssh"
    ssh.mkdir(parents=True)
    (ssh / "authorized_keys").write_text(
        f'# comment line\n\n{ed}\ncommand="echo hi there",no-pty,from="10.0.0.0/8" {ec}\n'
    )
    (ssh / "authorized_keys2").write_text(f"restrict {ed} second comment words\n")
    rows = list(user_files.authorized_keys_rows(0, str(tmp_path / "home")))
    ed_alg, ed_key = ed.split()[:2]
    ec_alg, ec_key = ec.split()[:2]
    assert [r[1:5] for r in rows] == [
        (ed_alg, ed_key, None, "alice@laptop"),
        (ec_alg, ec_key, 'command="echo hi there",no-pty,from="10.0.0.0/8"', None),
        (ed_alg, ed_key, "restrict", "alice@laptop second comment words"),
    ]
    assert [r[5] for r in rows] == [str(ssh / "authorized_keys")] * 2 + [str(ssh / "authorized_keys2")]


def test_known_hosts_rows(tmp_path):
    ssh = tmp_path / ".ssh"
    ssh.mkdir()
    entries = ["github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl",
               "|1|abc=|def= ecdsa-sha2-nistp256 AAAAE2VjZHNh"]  # fmt: skip
    (ssh / "known_hosts").write_text("# hashed and plain\n" + "\n".join(entries) + "\n\n")
    rows = list(user_files.known_hosts_rows(7, str(tmp_path)))
    assert rows == [(7, e, str(ssh / "known_hosts")) for e in entries]


def test_key_tables_live(conn):
    for t in ("authorized_keys", "known_hosts"):
        rows = conn.query(f"SELECT * FROM {t} WHERE uid = 0")
        assert all(r["uid"] == 0 and r["key_file"].startswith(os.path.expanduser("~root")) for r in rows)


# --- a container's view: pid_with_namespace -----------------------------------------------------------


def _container_root(tmp_path, owner_offset: int = 0):
    root = tmp_path / "root"
    (root / "etc/cron.d").mkdir(parents=True)
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\nalice:x:2001:2001:Alice:/home/alice:/bin/sh\n")
    (root / "etc/group").write_text("root:x:0:\nalice:x:2001:\nwheel:x:10:alice\n")
    (root / "etc/crontab").write_text("SHELL=/bin/sh\n@reboot root /bin/start\n")
    ssh = root / "home/alice/.ssh"
    ssh.mkdir(parents=True)
    (ssh / "authorized_keys").write_text("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ6 alice@box\n")
    os.chown(ssh / "authorized_keys", owner_offset + 2001, owner_offset + 2001)
    return root


# The child enters a new user namespace (optionally), waits for its uid map, then chroots.
_CHILD = """
import ctypes, os, sys, time
if sys.argv[2] == "userns":
    assert ctypes.CDLL(None, use_errno=True).unshare(0x10000000) == 0  # CLONE_NEWUSER
print("ready", flush=True)
sys.stdin.readline()
os.chroot(sys.argv[1])
print("ok", flush=True)
time.sleep(60)
"""


def _start_chrooted(root, userns: bool):
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(root), "userns" if userns else "plain"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout.readline().strip() == "ready"
        if userns:  # container uid 0..65535 is host uid 100000..165535
            with open(f"/proc/{child.pid}/uid_map", "w") as f:
                f.write("0 100000 65536\n")
        child.stdin.write("go\n")
        child.stdin.flush()
        assert child.stdout.readline().strip() == "ok"
    except BaseException:
        child.kill()
        child.wait()
        raise
    return child


@pytest.fixture
def chrooted_pid(tmp_path):
    """A child process whose root directory is a tmp tree with its own accounts and files."""
    child = _start_chrooted(_container_root(tmp_path), userns=False)
    yield child.pid
    child.kill()
    child.wait()


@needs_root
def test_namespace_view(conn, chrooted_pid):
    pid = chrooted_pid
    rows = conn.query("SELECT uid, username, pid_with_namespace FROM users WHERE pid_with_namespace = ?", (pid,))
    assert rows == [
        {"uid": 0, "username": "root", "pid_with_namespace": pid},
        {"uid": 2001, "username": "alice", "pid_with_namespace": pid},
    ]
    groups = conn.query("SELECT groupname FROM groups WHERE pid_with_namespace = ? AND gid = 10", (pid,))
    assert groups == [{"groupname": "wheel"}]
    keys = conn.query("SELECT uid, comment, key_file FROM authorized_keys WHERE pid_with_namespace = ?", (pid,))
    assert keys == [{"uid": 2001, "comment": "alice@box", "key_file": "/home/alice/.ssh/authorized_keys"}]
    cron = conn.query("SELECT event, command, path FROM crontab WHERE pid_with_namespace = ?", (pid,))
    assert cron == [{"event": "@reboot", "command": "root /bin/start", "path": "/etc/crontab"}]


# --- crontab -----------------------------------------------------------------------------------------


@needs_root
def test_crontab_live(conn):
    path = f"/etc/cron.d/streamq-test-{os.getpid()}"
    with open(path, "w") as f:
        f.write(CRON_TEXT)
    try:
        rows = retry(lambda: conn.query("SELECT * FROM crontab WHERE path = ?", (path,)))
        assert [(r["event"], r["minute"], r["command"]) for r in rows] == [
            (None, "*/5", 'root /usr/bin/true   --flag  "two  spaces"'),
            ("@reboot", None, "root /usr/bin/streamq-test-boot"),
            (None, "0", "nobody echo monthly"),
        ]
    finally:
        os.unlink(path)
    assert conn.query("SELECT * FROM crontab WHERE path = ?", (path,)) == []


# --- sudoers -----------------------------------------------------------------------------------------


def test_sudoers_live(conn):
    rows = conn.query("SELECT * FROM sudoers")
    if not os.access(userfiles.SUDOERS, os.R_OK):
        assert rows == []
        return
    with open(userfiles.SUDOERS) as f:
        first_words = [line.split()[0] for line in f if line.strip() and not line.lstrip().startswith("#")]
    assert all(r["source"] and r["header"] for r in rows)
    assert any(r["source"] == userfiles.SUDOERS for r in rows) == bool(first_words)


def test_tables_are_quick(conn):
    start = time.monotonic()
    for t in ("users", "groups", "user_groups", "shadow", "crontab", "shell_history", "authorized_keys"):
        conn.query(f"SELECT * FROM {t}")
    assert time.monotonic() - start < 2


@needs_root
def test_namespace_view_maps_user_namespace_owners(conn, tmp_path):
    # In a user namespace container alice (2001) owns her file as host uid 102001.
    child = _start_chrooted(_container_root(tmp_path, owner_offset=100000), userns=True)
    try:
        sql = "SELECT uid, comment FROM authorized_keys WHERE pid_with_namespace = ?"
        assert conn.query(sql, (child.pid,)) == [{"uid": 2001, "comment": "alice@box"}]
    finally:
        child.kill()
        child.wait()
    # Read in place (no namespace), the same file belongs to neither alice nor root: skipped.
    home = str(tmp_path / "root/home/alice")
    assert list(user_files.authorized_keys_rows(2001, home)) == []
