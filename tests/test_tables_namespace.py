"""pid_with_namespace has one meaning in every table that has it (osquery's).

0 is the host's own view: an unconstrained query reads it, its rows show 0, and
``WHERE pid_with_namespace = 0`` finds exactly them. N > 0 reads the same files as
process N sees them, through /proc/N/root. The tables come from the registry, so a
table that gains the column is tested without editing this file.
"""

from __future__ import annotations

import collections
import hashlib
import os
import sqlite3
import struct
import subprocess
import sys

import pytest

from conftest import needs_root, retry
from streamq.sql.connection import load_tables
from streamq.tables._common import MOUNT_NAMESPACE_ID, PID_WITH_NAMESPACE

REGISTRY = load_tables()
NAMESPACED = sorted(name for name, spec in REGISTRY.items() if "pid_with_namespace" in spec.column_names)

ANY_FILE = "sigrule = 'rule anything { condition: true }'"
# Tables that need a constraint to run at all ({sleeper}: a child of this test, see the fixture).
REQUIRED = {
    "file": "path IN ('/etc/passwd', '/etc/hosts', '/etc')",
    "hash": "path IN ('/etc/passwd', '/etc/hosts')",
    "yara_file": f"path IN ('/etc/passwd', '/etc/hosts') AND {ANY_FILE}",
    "yara_process": "pid = {sleeper} AND " + ANY_FILE,
}
# Rows that depend on who reads, not only on the files: the host view also lists this
# interpreter's venv, and takes the default search domain from the host name.
SAME_FILES = {
    "python_packages": "directory = '/usr/lib/python3/dist-packages'",
    "dns_resolvers": "type = 'nameserver'",
}


def _select(name: str, sleeper: int, *conditions: str) -> str:
    columns = ", ".join(f'"{c}"' for c in REGISTRY[name].column_names)
    required = REQUIRED.get(name, "").replace("{sleeper}", str(sleeper))
    where = " AND ".join(c for c in (required, *conditions) if c)
    return f"SELECT {columns} FROM {name}" + (f" WHERE {where}" if where else "")


def _rows(conn, sql: str, params=()) -> collections.Counter:
    return collections.Counter(tuple(r.values()) for r in conn.query(sql, params))


def _without_namespace(name: str, rows: collections.Counter) -> collections.Counter:
    """The rows with their pid_with_namespace and mount_namespace_id left out."""
    names = REGISTRY[name].column_names
    keep = [i for i, c in enumerate(names) if c not in ("pid_with_namespace", "mount_namespace_id")]
    out: collections.Counter = collections.Counter()
    for row, n in rows.items():
        out[tuple(row[i] for i in keep)] += n
    return out


def test_the_tables_osquery_gives_the_column_have_it():
    assert set(NAMESPACED) >= {
        *("apt_sources", "authorized_keys", "crontab", "deb_packages", "dns_resolvers", "etc_hosts", "file"),
        *("groups", "hash", "npm_packages", "os_version", "python_packages", "rpm_packages", "suid_bin", "users"),
        *("user_ssh_keys", "yara_file", "yara_process", "yum_sources"),
    }


@pytest.mark.parametrize("name", NAMESPACED)
def test_every_table_declares_the_shared_columns(name):
    spec = REGISTRY[name]
    assert spec.column("pid_with_namespace") == PID_WITH_NAMESPACE
    if "mount_namespace_id" in spec.column_names:
        assert spec.column("mount_namespace_id") == MOUNT_NAMESPACE_ID


@pytest.mark.parametrize("name", NAMESPACED)
def test_where_0_finds_exactly_the_host_rows(conn, name, sleeper):
    plain_sql, zero_sql = _select(name, sleeper), _select(name, sleeper, "pid_with_namespace = 0")

    def same():  # another engineer may install a package between the two queries: ask again
        plain = _rows(conn, plain_sql)
        return (plain,) if plain == _rows(conn, zero_sql) else None  # a 1-tuple: true even for no rows

    found = retry(same, timeout=10, interval=0.5)
    assert found is not None, f"{name}: WHERE pid_with_namespace = 0 differs from the unconstrained query"
    (plain,) = found
    names = REGISTRY[name].column_names
    pid_at = names.index("pid_with_namespace")
    assert {row[pid_at] for row in plain} <= {0}, f"{name}: a host row does not show 0"
    if "mount_namespace_id" in names:
        assert {row[names.index("mount_namespace_id")] for row in plain} <= {None}
    count_sql = f"SELECT count(*) AS n FROM ({zero_sql})"
    assert retry(lambda: conn.query(count_sql)[0]["n"] == sum(_rows(conn, plain_sql).values()), timeout=10)


@pytest.fixture(scope="module")
def sleeper():
    """A child sharing our mount namespace: its view is the host's."""
    child = subprocess.Popen(["sleep", "300"])
    yield child.pid
    child.kill()
    child.wait()


@pytest.mark.parametrize("name", NAMESPACED)
def test_a_process_pid_reads_through_its_proc_root(conn, name, sleeper):
    mnt = os.readlink(f"/proc/{sleeper}/ns/mnt")[5:-1]
    host_sql = _select(name, sleeper, SAME_FILES.get(name, ""))
    child_sql = _select(name, sleeper, SAME_FILES.get(name, ""), f"pid_with_namespace = {sleeper}")

    def same():
        host, child = _rows(conn, host_sql), _rows(conn, child_sql)
        return (host, child) if _without_namespace(name, host) == _without_namespace(name, child) else None

    found = retry(same, timeout=10, interval=0.5)
    assert found is not None, f"{name}: the child's view differs from the host's although they share /"
    names = REGISTRY[name].column_names
    for row in found[1]:
        assert row[names.index("pid_with_namespace")] == sleeper
        if "mount_namespace_id" in names:
            assert row[names.index("mount_namespace_id")] == mnt


@pytest.mark.parametrize("name", NAMESPACED)
def test_a_gone_or_impossible_pid_gives_no_rows(conn, name, sleeper):
    with subprocess.Popen(["true"]) as child:
        child.wait()
    for pid in (child.pid, -1):
        assert conn.query(_select(name, sleeper, f"pid_with_namespace = {pid}")) == []


def test_in_list_mixes_the_host_and_a_process(conn, sleeper):
    rows = conn.query(
        "SELECT pid_with_namespace, count(*) AS n FROM users WHERE pid_with_namespace IN (0, ?) "
        "GROUP BY pid_with_namespace ORDER BY 1",
        (sleeper,),
    )
    assert [r["pid_with_namespace"] for r in rows] == [0, sleeper]
    assert rows[0]["n"] == rows[1]["n"] > 0


# --- a child in its own mount namespace, with its own /etc, /var/lib and /opt --------------------------

# The child makes its mounts private, then puts the test's trees over /opt, /var/lib and /etc
# (in that order: copying needs nothing from /etc). Nothing outside its namespace changes.
_CHILD = """
import ctypes, os, shutil, sys, time
libc = ctypes.CDLL(None, use_errno=True)
def check(ok, what):
    if ok != 0:
        print("failed", what, os.strerror(ctypes.get_errno()), flush=True)
        sys.exit(1)
src = sys.argv[1].encode()
check(libc.unshare(0x20000), "unshare")  # CLONE_NEWNS
check(libc.mount(b"none", b"/", None, (1 << 14) | (1 << 18), None), "private")  # MS_REC | MS_PRIVATE
for target in (b"/opt", b"/var/lib"):
    check(libc.mount(b"tmpfs", target, b"tmpfs", 0, None), target)
    shutil.copytree(src + target, target, dirs_exist_ok=True, symlinks=True)
check(libc.mount(src + b"/etc", b"/etc", None, 4096, None), "/etc")  # MS_BIND
print("ready", flush=True)
time.sleep(300)
"""

_OS_RELEASE = 'NAME="Streamq Test OS"\nVERSION_ID="7.1"\nID=streamqos\n'


def _rpmdb(path) -> None:
    """An SQLite rpm database with one package (the header format of rpm's tag/type/offset/count index)."""
    strings = [(1000, "streamq-rpm"), (1001, "2.0"), (1002, "1"), (1022, "noarch")]
    index, store = b"", b""
    for tag, value in strings:
        index += struct.pack(">iiii", tag, 6, len(store), 1)  # 6: STRING
        store += value.encode() + b"\0"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL)")
    db.execute(
        "INSERT INTO Packages (blob) VALUES (?)", (struct.pack(">ii", len(strings), len(store)) + index + store,)
    )
    db.commit()
    db.close()


def _ed25519_private_key() -> bytes:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    return ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    )


def _container_tree(top):
    etc, lib, opt = top / "etc", top / "var/lib", top / "opt"
    for d in (etc / "apt", etc / "yum.repos.d", lib / "dpkg", lib / "rpm", opt / "site/foo-1.0.dist-info"):
        d.mkdir(parents=True)
    (opt / "npm/node_modules/leftpad").mkdir(parents=True)
    home = top / "home/alice"
    (home / ".ssh").mkdir(parents=True)
    (etc / "passwd").write_text(f"root:x:0:0:root:/root:/bin/sh\nalice:x:2001:2001:Alice:{home}:/bin/sh\n")
    (etc / "group").write_text("root:x:0:\nalice:x:2001:\n")
    (etc / "hosts").write_text("10.1.2.3 streamq-container\n")
    (etc / "resolv.conf").write_text("nameserver 10.9.8.7\n")
    (etc / "os-release").write_text(_OS_RELEASE)
    (etc / "crontab").write_text("@reboot root /bin/start\n")
    (etc / "apt/sources.list").write_text("deb http://deb.example.org/debian stable main\n")
    (etc / "streamq-marker").write_text("only in the container\n")
    (etc / "yum.repos.d/streamq.repo").write_text("[streamq]\nname=Streamq test\nbaseurl=http://rpm.example.org/\n")
    (home / ".ssh/authorized_keys").write_text("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ6 alice@box\n")
    os.chown(home / ".ssh/authorized_keys", 2001, 2001)
    (home / ".ssh/id_ed25519").write_bytes(_ed25519_private_key())
    os.chown(home / ".ssh/id_ed25519", 2001, 2001)
    (lib / "dpkg/status").write_text(
        "Package: streamq-deb\nStatus: install ok installed\nVersion: 1.2-3\nArchitecture: all\n\n"
    )
    _rpmdb(lib / "rpm/rpmdb.sqlite")
    (opt / "streamq-suid").write_text("#!/bin/sh\n")
    os.chmod(opt / "streamq-suid", 0o4755)
    (opt / "site/foo-1.0.dist-info/METADATA").write_text("Metadata-Version: 2.1\nName: foo\nVersion: 1.0\n\n")
    (opt / "npm/node_modules/leftpad/package.json").write_text('{"name": "leftpad", "version": "1.3.0"}')


# table -> (query with {pid}, the rows the container's files give)
IN_CONTAINER = {
    "users": ("SELECT uid, username FROM users WHERE pid_with_namespace = {pid}", [(0, "root"), (2001, "alice")]),
    "groups": ("SELECT gid, groupname FROM groups WHERE pid_with_namespace = {pid}", [(0, "root"), (2001, "alice")]),
    "etc_hosts": (
        "SELECT address, hostnames FROM etc_hosts WHERE pid_with_namespace = {pid}",
        [("10.1.2.3", "streamq-container")],
    ),
    "dns_resolvers": (
        "SELECT type, address FROM dns_resolvers WHERE pid_with_namespace = {pid}",
        [("nameserver", "10.9.8.7")],
    ),
    "os_version": (
        "SELECT name, major, minor, platform FROM os_version WHERE pid_with_namespace = {pid}",
        [("Streamq Test OS", 7, 1, "streamqos")],
    ),
    "crontab": (
        "SELECT event, command, path FROM crontab WHERE path = '/etc/crontab' AND pid_with_namespace = {pid}",
        [("@reboot", "root /bin/start", "/etc/crontab")],
    ),
    "authorized_keys": (
        "SELECT uid, comment FROM authorized_keys WHERE pid_with_namespace = {pid}",
        [(2001, "alice@box")],
    ),
    "apt_sources": (
        "SELECT name, base_uri FROM apt_sources WHERE pid_with_namespace = {pid}",
        [("deb.example.org/debian stable", "http://deb.example.org/debian")],
    ),
    "deb_packages": (
        "SELECT name, version, revision FROM deb_packages WHERE pid_with_namespace = {pid}",
        [("streamq-deb", "1.2-3", "3")],
    ),
    "rpm_packages": (
        "SELECT name, version, release, arch FROM rpm_packages WHERE pid_with_namespace = {pid}",
        [("streamq-rpm", "2.0", "1", "noarch")],
    ),
    "file": (
        "SELECT path, size FROM file WHERE path = '/etc/streamq-marker' AND pid_with_namespace = {pid}",
        [("/etc/streamq-marker", 22)],
    ),
    "hash": (
        "SELECT path, sha256 FROM hash WHERE path = '/etc/streamq-marker' AND pid_with_namespace = {pid}",
        [("/etc/streamq-marker", hashlib.sha256(b"only in the container\n").hexdigest())],
    ),
    "suid_bin": (
        "SELECT path, permissions FROM suid_bin WHERE path LIKE '/opt/%' AND pid_with_namespace = {pid}",
        [("/opt/streamq-suid", "S")],
    ),
    "python_packages": (
        "SELECT name, version, path FROM python_packages WHERE directory = '/opt/site' AND pid_with_namespace = {pid}",
        [("foo", "1.0", "/opt/site/foo-1.0.dist-info")],
    ),
    "npm_packages": (
        "SELECT name, version, path FROM npm_packages WHERE directory = '/opt/npm' AND pid_with_namespace = {pid}",
        [("leftpad", "1.3.0", "/opt/npm/node_modules/leftpad/package.json")],
    ),
    "user_ssh_keys": (
        "SELECT uid, encrypted, key_type FROM user_ssh_keys WHERE path LIKE '%/.ssh/id_ed25519' "
        "AND pid_with_namespace = {pid}",
        [(2001, 0, "ed25519")],
    ),
    "yum_sources": (
        "SELECT name, source, baseurl FROM yum_sources WHERE pid_with_namespace = {pid}",
        [("Streamq test", "/etc/yum.repos.d/streamq.repo", "http://rpm.example.org/")],
    ),
    "yara_file": (
        "SELECT path, matches FROM yara_file WHERE path = '/etc/streamq-marker' "
        "AND sigrule = 'rule container { strings: $a = \"in the container\" condition: $a }' "
        "AND pid_with_namespace = {pid}",
        [("/etc/streamq-marker", "container")],
    ),
    # A process's memory does not depend on the view: the row only says whose view the query asked for.
    "yara_process": (
        "SELECT pid, count FROM yara_process WHERE pid = {pid} AND " + ANY_FILE + " AND pid_with_namespace = {pid}",
        lambda pid: [(pid, 1)],
    ),
}


@pytest.fixture(scope="module")
def container(tmp_path_factory):
    """A child in its own mount namespace whose /etc, /var/lib and /opt are the test's trees."""
    if not os.path.isdir("/opt") or not os.path.isdir("/var/lib"):
        pytest.skip("needs /opt and /var/lib as mount points")
    top = tmp_path_factory.mktemp("container")
    _container_tree(top)
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(top)], stdout=subprocess.PIPE, text=True)
    try:
        line = child.stdout.readline().strip()
        if line != "ready":
            pytest.skip(f"cannot make a mount namespace here: {line or 'the child died'}")
        yield child.pid
    finally:
        child.kill()
        child.wait()


def test_every_namespaced_table_has_a_container_check():
    assert set(IN_CONTAINER) == set(NAMESPACED)


@needs_root
@pytest.mark.parametrize("name", sorted(IN_CONTAINER))
def test_a_container_pid_reads_the_containers_files(conn, container, name):
    sql, expected = IN_CONTAINER[name]
    expected = expected(container) if callable(expected) else expected
    rows = [tuple(r.values()) for r in conn.query(sql.replace("{pid}", str(container)))]
    assert sorted(rows) == sorted(expected)
    # Its rows say whose view they are; the host's own view is another.
    pids = conn.query(_select(name, container, f"pid_with_namespace = {container}"))
    assert {r["pid_with_namespace"] for r in pids} == {container}
    host_rows = [tuple(r.values()) for r in conn.query(sql.replace("{pid}", "0"))]
    assert sorted(host_rows) != sorted(expected)
