"""deb_package_files against dpkg -L and dpkg -S; rpm, yum and portage tables on files written in their formats."""

from __future__ import annotations

import shutil
import sqlite3
import struct
import subprocess

import pytest

from streamq.host import pkgdb, pkgfiles
from streamq.tables import package_files


def sh(*args: str) -> str:
    return subprocess.run(args, capture_output=True, text=True, check=True, timeout=60).stdout


@pytest.fixture(scope="module")
def dpkg():
    if not shutil.which("dpkg") or not pkgfiles.os.path.isdir(pkgfiles.DPKG_ADMINDIR):
        pytest.skip("not a dpkg system")


@pytest.mark.parametrize("package", ["bash", "coreutils", "libc6"])
def test_deb_package_files_match_dpkg_l(conn, dpkg, package):
    rows = conn.query("SELECT path, admindir FROM deb_package_files WHERE package = ?", (package,))
    assert [r["path"] for r in rows] == sh("dpkg", "-L", package).splitlines()
    assert {r["admindir"] for r in rows} == {"/var/lib/dpkg"}


def test_path_lookup_matches_dpkg_s(conn, dpkg):
    owner = sh("dpkg", "-S", "/bin/bash").split(":")[0]
    assert conn.query("SELECT package FROM deb_package_files WHERE path = '/bin/bash'") == [{"package": owner}]


def test_other_admindir(conn, tmp_path):
    (tmp_path / "info").mkdir()
    (tmp_path / "info" / "demo:amd64.list").write_text("/.\n/usr/bin/demo\n")
    rows = conn.query("SELECT * FROM deb_package_files WHERE admindir = ?", (str(tmp_path),))
    assert rows == [
        {"package": "demo", "path": "/.", "admindir": str(tmp_path)},
        {"package": "demo", "path": "/usr/bin/demo", "admindir": str(tmp_path)},
    ]


# --- rpm: a header in rpm's documented layout ---------------------------------------------

STRING, STRING_ARRAY, INT16, INT32 = 6, 8, 3, 4


def rpm_header(entries: list[tuple[int, int, object]]) -> bytes:
    index, store = [], b""
    for tag, kind, value in entries:
        if kind == INT16:
            store += b"\0" * (len(store) % 2)
        if kind == INT32:
            store += b"\0" * (-len(store) % 4)
        offset = len(store)
        if kind == STRING:
            store += value.encode() + b"\0"
            count = 1
        elif kind == STRING_ARRAY:
            store += b"".join(v.encode() + b"\0" for v in value)
            count = len(value)
        else:
            store += struct.pack(f">{len(value)}{'H' if kind == INT16 else 'I'}", *value)
            count = len(value)
        index.append(struct.pack(">iiii", tag, kind, offset, count))
    return struct.pack(">ii", len(index), len(store)) + b"".join(index) + store


def test_rpm_package_files_from_an_rpmdb(tmp_path, monkeypatch):
    digest = "a" * 64
    blob = rpm_header(
        [
            (pkgfiles.RPMTAG_NAME, STRING, "openssh-server"),
            (pkgfiles.RPMTAG_FILESIZES, INT32, [1234, 0]),
            (pkgfiles.RPMTAG_FILEMODES, INT16, [0o100755, 0o40700]),
            (pkgfiles.RPMTAG_FILEDIGESTS, STRING_ARRAY, [digest, ""]),
            (pkgfiles.RPMTAG_FILEUSERNAME, STRING_ARRAY, ["root", "root"]),
            (pkgfiles.RPMTAG_FILEGROUPNAME, STRING_ARRAY, ["root", "sshd"]),
            (pkgfiles.RPMTAG_DIRINDEXES, INT32, [0, 1]),
            (pkgfiles.RPMTAG_BASENAMES, STRING_ARRAY, ["sshd", "empty"]),
            (pkgfiles.RPMTAG_DIRNAMES, STRING_ARRAY, ["/usr/sbin/", "/usr/share/empty.sshd/"]),
            (pkgfiles.RPMTAG_FILEDIGESTALGO, INT32, [pkgfiles.PGPHASHALGO_SHA256]),
        ]
    )
    db_dir = tmp_path / "var/lib/rpm"
    db_dir.mkdir(parents=True)
    db = sqlite3.connect(db_dir / "rpmdb.sqlite")
    db.execute("CREATE TABLE Packages (hnum INTEGER PRIMARY KEY, blob BLOB)")
    db.execute("INSERT INTO Packages (blob) VALUES (?)", (blob,))
    db.commit()
    db.close()
    monkeypatch.setattr(pkgdb, "RPMDB_DIRS", (str(db_dir),))
    rows = list(package_files.gen_rpm_package_files(_Ctx()))
    assert rows == [
        {
            "package": "openssh-server",
            "path": "/usr/sbin/sshd",
            "username": "root",
            "groupname": "root",
            "mode": "0755",
            "size": 1234,
            "sha256": digest,
        },
        {
            "package": "openssh-server",
            "path": "/usr/share/empty.sshd/empty",
            "username": "root",
            "groupname": "sshd",
            "mode": "0700",
            "size": 0,
            "sha256": None,
        },
    ]


class _Ctx:
    def eq(self, column):
        return None


# --- yum ----------------------------------------------------------------------------------


# --- portage ------------------------------------------------------------------------------


def test_portage_keywords_masks_and_use(tmp_path):
    etc = tmp_path / "portage"
    (etc / "package.accept_keywords").mkdir(parents=True)
    (etc / "package.accept_keywords" / "local").write_text("# comment\n=dev-lang/rust-1.80.0 ~amd64\nsys-apps/foo **\n")
    (etc / "package.mask").write_text(">=sys-libs/glibc-2.40\nsys-apps/foo\n")
    (etc / "package.unmask").write_text("=dev-lang/rust-1.80.0\n")
    rows = sorted(pkgfiles.portage_keyword_rows(str(etc)), key=lambda r: r["package"])
    assert rows == [
        {"package": "dev-lang/rust", "version": "1.80.0", "keyword": "~amd64", "mask": 0, "unmask": 1},
        {"package": "sys-apps/foo", "version": "", "keyword": "**", "mask": 1, "unmask": 0},
        {"package": "sys-libs/glibc", "version": ">=2.40", "keyword": "", "mask": 1, "unmask": 0},
    ]
    pkg = tmp_path / "db" / "net-misc" / "openssh-9.8_p1-r2"
    pkg.mkdir(parents=True)
    (pkg / "USE").write_text("pam ssl  ipv6\n")
    assert list(pkgfiles.portage_use_rows(str(tmp_path / "db"))) == [
        {"package": "net-misc/openssh", "version": "9.8_p1-r2", "use": flag} for flag in ("pam", "ssl", "ipv6")
    ]


def test_portage_tables_are_empty_off_gentoo(conn):
    if pkgfiles.os.path.isdir(pkgfiles.PORTAGE_DB):
        pytest.skip("a Gentoo system")
    assert conn.query("SELECT * FROM portage_use") == []
