"""Software inventory tables: deb/rpm/portage packages, APT sources, Python and npm packages, browser add-ons."""

from __future__ import annotations

import base64
import glob
import hashlib
import importlib.metadata
import itertools
import json
import os
import shutil
import sqlite3
import struct
import subprocess
import sys
import sysconfig
import time

import pytest

from conftest import compat_json
from streamq.host import pkgdb
from streamq.host.pkgformats import (
    apt_list_prefix,
    debian_revision,
    parse_core_metadata,
    parse_deb822_sources,
    parse_dpkg_status,
    parse_release,
    parse_rpm_header,
    parse_sources_list,
)
from streamq.sql import schema
from streamq.tables import browsers

MY_TABLES = (
    "deb_packages",
    "apt_sources",
    "rpm_packages",
    "portage_packages",
    "python_packages",
    "npm_packages",
    "chrome_extensions",
    "firefox_addons",
    "opera_extensions",
)
needs_dpkg = pytest.mark.skipif(
    shutil.which("dpkg-query") is None or not os.path.exists("/var/lib/dpkg/status"), reason="no dpkg"
)


# --- generic: every table runs, values typed --------------------------------------------------------------


@pytest.mark.parametrize("name", MY_TABLES)
def test_select_star_values_match_column_types(conn, name):
    spec = schema.REGISTRY[name]
    cols = [c.name for c in spec.columns]
    rows = conn.query(f"SELECT {', '.join(cols)} FROM {name}")
    for row in rows:
        for col in spec.columns:
            value = row[col.name]
            if value is None:
                continue
            if col.type in schema.INTEGER_TYPES:
                assert isinstance(value, int), (name, col.name, value)
            elif col.type == schema.TEXT:
                assert isinstance(value, str), (name, col.name, value)
    for sql in spec.examples:
        conn.query(sql)


# --- deb_packages ------------------------------------------------------------------------------------------

DPKG_FORMAT = (
    "${Package}\t${Version}\t${Architecture}\t${Status}\t${Installed-Size}\t${Section}\t${Priority}\t${Source}\n"
)


def dpkg_query(*args: str) -> list[list[str]]:
    out = subprocess.run(
        ["dpkg-query", *args, "-W", "-f", DPKG_FORMAT], capture_output=True, text=True, check=True
    ).stdout
    return [line.split("\t") for line in out.splitlines()]


@needs_dpkg
def stable_snapshot(conn, sql: str, *dpkg_args: str):
    """dpkg-query output and the table's rows taken while the database did not change (apt may be running)."""
    for _ in range(20):
        before = dpkg_query(*dpkg_args)
        rows = conn.query(sql)
        if dpkg_query(*dpkg_args) == before:
            return before, rows
        time.sleep(0.5)
    pytest.skip("the dpkg database kept changing")


def test_deb_packages_equal_dpkg_query(conn):
    expected, rows = stable_snapshot(conn, "SELECT * FROM deb_packages")
    assert {(r["name"], r["version"], r["arch"]) for r in rows} == {(e[0], e[1], e[2]) for e in expected}
    assert len(rows) == len(expected)
    by_key = {(r["name"], r["arch"]): r for r in rows}
    for name, version, arch, status, size, section, priority, source in expected:
        row = by_key[(name, arch)]
        assert row["status"] == status
        assert row["size"] == (int(size) if size else None)
        assert row["section"] == (section or None)
        assert row["priority"] == (priority or None)
        assert row["source"] == (source or None)
        assert row["admindir"] == "/var/lib/dpkg"
        upstream = version.split(":", 1)[-1]
        assert row["revision"] == (upstream.rsplit("-", 1)[1] if "-" in upstream else None)


@needs_dpkg
def test_deb_packages_is_fast(conn):
    conn.query("SELECT count(*) FROM deb_packages")  # warm the page cache
    started = time.perf_counter()
    conn.query("SELECT * FROM deb_packages")
    assert time.perf_counter() - started < 0.5


FAKE_STATUS = """\
Package: foo
Status: install ok installed
Priority: optional
Section: utils
Installed-Size: 12
Maintainer: A Person <a@example.org>
Architecture: amd64
Source: foosrc (1.0-1)
Version: 2:1.0-1+b1
Description: a test package
 with a continuation line that looks like a field:
 Package: not-a-package

Package: gone
Status: purge ok not-installed
Architecture: amd64

Package: cfg
Status: deinstall ok config-files
Maintainer: B <b@example.org>
Architecture: all
Version: 3.0
Description: config files left behind
"""


@needs_dpkg
def test_deb_packages_admindir_matches_dpkg_query_on_a_tmp_database(conn, tmp_path):
    (tmp_path / "status").write_text(FAKE_STATUS)
    rows = conn.query("SELECT * FROM deb_packages WHERE admindir = ?", (str(tmp_path),))
    expected = dpkg_query(f"--admindir={tmp_path}")
    assert sorted((r["name"], r["version"], r["status"], r["source"]) for r in rows) == sorted(
        (e[0], e[1], e[3], e[7] or None) for e in expected
    )
    foo = next(r for r in rows if r["name"] == "foo")
    assert (foo["revision"], foo["size"], foo["admindir"]) == ("1+b1", 12, str(tmp_path))
    assert conn.query("SELECT * FROM deb_packages WHERE admindir = ?", (str(tmp_path / "missing"),)) == []


@needs_dpkg
def test_deb_packages_in_own_mount_namespace(conn):
    pid = os.getpid()
    ns = os.readlink("/proc/self/ns/mnt")
    sql = f"SELECT name, pid_with_namespace, mount_namespace_id FROM deb_packages WHERE pid_with_namespace = {pid}"
    expected, rows = stable_snapshot(conn, sql)
    assert len(rows) == len(expected)
    assert {(r["pid_with_namespace"], r["mount_namespace_id"]) for r in rows} == {(pid, ns[ns.index("[") + 1 : -1])}


def test_parse_dpkg_status_and_revision():
    stanzas = list(parse_dpkg_status(FAKE_STATUS.encode()))
    assert [s[b"Package"] for s in stanzas] == [b"foo", b"gone", b"cfg"]
    assert stanzas[0][b"Version"] == b"2:1.0-1+b1"
    assert debian_revision("2:1.0-1+b1") == "1+b1"
    assert debian_revision("1:2.3") is None
    assert debian_revision("1.2-3-4") == "4"


# --- apt_sources -------------------------------------------------------------------------------------------


def independent_apt_entries() -> set[tuple[str, str, str]]:
    """(source file, base uri, suite) of every 'deb' entry, parsed here without streamq's parser."""
    found = set()
    files = ["/etc/apt/sources.list", *sorted(glob.glob("/etc/apt/sources.list.d/*"))]
    for path in files:
        if not os.path.isfile(path):
            continue
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
        if path.endswith(".list"):
            for line in text.splitlines():
                words = line.split("#")[0].split()
                if not words or words[0] != "deb":
                    continue
                if words[1].startswith("["):
                    while not words[1].endswith("]"):
                        del words[1]
                    del words[1]
                found.add((path, words[1].rstrip("/"), words[2]))
        elif path.endswith(".sources"):
            for block in text.split("\n\n"):
                fields = {}
                for line in block.splitlines():
                    if ":" in line and not line.startswith(("#", " ")):
                        k, v = line.split(":", 1)
                        fields[k.strip().lower()] = v.split()
                if "deb" not in fields.get("types", []) or fields.get("enabled") == ["no"]:
                    continue
                found |= {(path, u.rstrip("/"), s) for u in fields.get("uris", []) for s in fields.get("suites", [])}
    return found


def test_apt_sources_match_host_files(conn):
    rows = conn.query("SELECT * FROM apt_sources")
    assert {(r["source"], r["base_uri"], r["name"].rsplit(" ", 1)[1]) for r in rows} == independent_apt_entries()
    for r in rows:
        assert r["name"] == r["base_uri"].split("://", 1)[1] + " " + r["name"].rsplit(" ", 1)[1]


@pytest.mark.skipif(shutil.which("apt-cache") is None, reason="no apt")
def test_apt_sources_release_fields_match_apt_cache_policy(conn):
    out = subprocess.run(["apt-cache", "policy"], capture_output=True, text=True, check=True).stdout.splitlines()
    expected = {}
    for line, nxt in itertools.pairwise(out):
        words = line.split()
        if len(words) >= 3 and "://" in words[1] and nxt.strip().startswith("release "):
            attrs = dict(kv.split("=", 1) for kv in nxt.strip()[8:].split(",") if "=" in kv)
            suite = words[2].rsplit("/", 1)[0] if "/" in words[2] else words[2]
            expected[(words[1].rstrip("/"), suite)] = (attrs.get("v"), attrs.get("o"), attrs.get("n"))
    rows = {(r["base_uri"], r["name"].rsplit(" ", 1)[1]): r for r in conn.query("SELECT * FROM apt_sources")}
    if not expected:
        pytest.skip("apt has no downloaded lists")
    for key, (version, origin, codename) in expected.items():
        if key not in rows:
            continue  # a source apt knows from a file we do not read (none on a standard host)
        assert (rows[key]["version"], rows[key]["maintainer"], rows[key]["release"]) == (version, origin, codename)
    assert set(expected) & set(rows)


def test_apt_list_prefix_names_apts_own_files():
    lists = set(os.listdir("/var/lib/apt/lists")) if os.path.isdir("/var/lib/apt/lists") else set()
    releases = {n.rsplit("_", 1)[0] for n in lists if n.endswith(("_InRelease", "_Release"))}
    if not releases:
        pytest.skip("apt has no downloaded lists")
    entries = {(uri, suite) for _src, uri, suite in independent_apt_entries()}
    matched = {apt_list_prefix(uri, suite) for uri, suite in entries} & releases
    assert matched == releases & {apt_list_prefix(u, s) for u, s in entries}
    assert matched
    assert apt_list_prefix("https://user:pw@example.org/deb_repo/", "stable") == "example.org_deb%5frepo_dists_stable"
    assert apt_list_prefix("http://example.org/flat", "./") == "example.org_flat_."


def test_apt_parsers_on_tmp_files(tmp_path):
    one_line = (
        "# comment\n"
        "deb [arch=amd64,arm64 signed-by=/k.gpg] https://repo.example.org/apt/ stable main extra # trailing\n"
        "deb-src https://repo.example.org/apt stable main\n"
        "deb http://flat.example.org/repo ./\n"
        "garbage line\n"
    )
    entries = parse_sources_list(one_line)
    assert [(e.type, e.uri, e.suite, e.components) for e in entries] == [
        ("deb", "https://repo.example.org/apt/", "stable", ("main", "extra")),
        ("deb-src", "https://repo.example.org/apt", "stable", ("main",)),
        ("deb", "http://flat.example.org/repo", "./", ()),
    ]
    assert entries[0].options["arch"] == "amd64,arm64"
    deb822 = (
        "Types: deb deb-src\nURIs: http://a.example/x http://b.example/y\nSuites: s1 s2\nComponents: main\n"
        "Architectures: amd64\n\n# disabled\nTypes: deb\nURIs: http://c.example\nSuites: s\nEnabled: no\n"
    )
    got = [(e.type, e.uri, e.suite) for e in parse_deb822_sources(deb822)]
    assert len(got) == 8 and ("deb", "http://b.example/y", "s2") in got and not any("c.example" in g[1] for g in got)

    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "repo.example.org_apt_dists_stable_InRelease").write_text(
        "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nOrigin: Example\nCodename: stable\nVersion: 7\n"
        "Components: main extra\nArchitectures: amd64\nMD5Sum:\n abc 1 main/x\n-----BEGIN PGP SIGNATURE-----\nxyz\n"
    )
    row = pkgdb.apt_source_row(entries[0], "/etc/apt/sources.list", str(lists))
    assert row == {
        "name": "repo.example.org/apt stable",
        "source": "/etc/apt/sources.list",
        "base_uri": "https://repo.example.org/apt",
        "release": "stable",
        "version": "7",
        "maintainer": "Example",
        "components": "main extra",
        "architectures": "amd64",
    }
    flat = pkgdb.apt_source_row(entries[2], "/x.list", str(lists))
    assert (flat["release"], flat["components"]) == (None, None)
    assert parse_release(b"Origin: O\nVersion: 1\n\nOther: stanza\n") == {"Origin": "O", "Version": "1"}


# --- rpm_packages / portage_packages -----------------------------------------------------------------------


def rpm_header_blob(entries: list[tuple[int, int, object]]) -> bytes:
    """Build an rpm header blob (documented format) from (tag, type, value) triples."""
    index, store = b"", b""
    for tag, type_, value in entries:
        if type_ == 4:  # INT32: aligned to 4
            store += b"\0" * (-len(store) % 4)
            offset, data, count = len(store), struct.pack(">I", value), 1
        elif type_ == 6:  # STRING
            offset, data, count = len(store), value.encode() + b"\0", 1
        elif type_ == 8:  # STRING_ARRAY
            offset, data, count = len(store), b"".join(v.encode() + b"\0" for v in value), len(value)
        else:  # BIN
            offset, data, count = len(store), value, len(value)
        index += struct.pack(">iiii", tag, type_, offset, count)
        store += data
    return struct.pack(">ii", len(entries), len(store)) + index + store


def test_rpm_packages_from_a_constructed_sqlite_rpmdb(tmp_path):
    blob = rpm_header_blob(
        [
            (1000, 6, "bash"),
            (1001, 6, "5.2.15"),
            (1002, 6, "3.el9"),
            (1003, 4, 1),
            (1004, 8, ["The GNU Bourne Again shell"]),
            (1008, 4, 1700000000),
            (1009, 4, 7654321),
            (1011, 6, "Example Vendor"),
            (1016, 6, "System Environment/Shells"),
            (1022, 6, "x86_64"),
            (1044, 6, "bash-5.2.15-3.el9.src.rpm"),
            (269, 6, "0123456789abcdef0123456789abcdef01234567"),
        ]
    )
    db = sqlite3.connect(tmp_path / "rpmdb.sqlite")
    db.execute("CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL)")
    db.execute("INSERT INTO Packages (blob) VALUES (?)", (blob,))
    db.execute("INSERT INTO Packages (blob) VALUES (?)", (b"\0\0\0\x05truncated",))
    db.commit()
    db.close()
    assert list(pkgdb.rpm_rows(str(tmp_path / "rpmdb.sqlite"))) == [
        {
            "name": "bash",
            "version": "5.2.15",
            "release": "3.el9",
            "source": "bash-5.2.15-3.el9.src.rpm",
            "size": 7654321,
            "sha1": "0123456789abcdef0123456789abcdef01234567",
            "arch": "x86_64",
            "epoch": 1,
            "install_time": 1700000000,
            "vendor": "Example Vendor",
            "package_group": "System Environment/Shells",
        }
    ]
    with pytest.raises(ValueError):
        parse_rpm_header(blob[:-3])
    assert parse_rpm_header(b"\x8e\xad\xe8\x01\0\0\0\0" + blob, frozenset({1000}))[1000] == "bash"


def test_rpm_and_portage_are_empty_without_databases(conn):
    if not any(os.path.exists(d + "/rpmdb.sqlite") for d in ("/var/lib/rpm", "/usr/lib/sysimage/rpm")):
        assert conn.query("SELECT * FROM rpm_packages") == []
        assert conn.query("SELECT * FROM rpm_packages WHERE name = 'bash'") == []
    if not os.path.isdir("/var/db/pkg"):
        assert conn.query("SELECT * FROM portage_packages") == []


def test_portage_rows_from_a_tmp_database(tmp_path):
    pkg = tmp_path / "db" / "sys-apps" / "portage-3.0.49-r2"
    pkg.mkdir(parents=True)
    for name, value in {
        "SLOT": "0\n",
        "BUILD_TIME": "1690000000\n",
        "repository": "gentoo\n",
        "EAPI": "8\n",
        "SIZE": "12345\n",
    }.items():
        (pkg / name).write_text(value)
    (tmp_path / "db" / "dev-lang" / "python-3.11.4").mkdir(parents=True)
    (tmp_path / "world").write_text("# set\nsys-apps/portage\n>=app-misc/other-1.0\n")
    rows = sorted(pkgdb.portage_rows(str(tmp_path / "db"), str(tmp_path / "world")), key=lambda r: r["package"])
    assert rows == [
        {
            "package": "dev-lang/python",
            "version": "3.11.4",
            "slot": None,
            "build_time": None,
            "repository": None,
            "eapi": None,
            "size": None,
            "world": 0,
        },
        {
            "package": "sys-apps/portage",
            "version": "3.0.49-r2",
            "slot": "0",
            "build_time": 1690000000,
            "repository": "gentoo",
            "eapi": 8,
            "size": 12345,
            "world": 1,
        },
    ]
    assert pkgdb.split_portage_atom(">=app-misc/other-1.0") == ("app-misc/other", "1.0")
    assert pkgdb.split_portage_atom("x11-libs/gtk+") == ("x11-libs/gtk+", None)
    assert [r["world"] for r in pkgdb.portage_rows(str(tmp_path / "db"), str(tmp_path / "nowhere"))] == [None, None]


# --- python_packages ---------------------------------------------------------------------------------------

VENV_SITE = sysconfig.get_paths()["purelib"]


def test_python_packages_match_importlib_metadata_for_this_venv(conn):
    rows = conn.query("SELECT * FROM python_packages WHERE directory = ?", (VENV_SITE,))
    dists = list(importlib.metadata.distributions(path=[VENV_SITE]))
    assert sorted((r["name"], r["version"]) for r in rows) == sorted((d.metadata["Name"], d.version) for d in dists)
    summaries = {d.metadata["Name"]: d.metadata["Summary"] for d in dists}
    for r in rows:
        assert r["summary"] == (summaries[r["name"]] or None)
        assert r["directory"] == VENV_SITE and r["path"].startswith(VENV_SITE + "/")
        assert r["uid"] == os.stat(VENV_SITE).st_uid  # a directory named in the query: its owner


def test_python_packages_count_matches_pip_list(conn):
    out = subprocess.run(
        [sys.executable, "-m", "pip", "list", "--path", VENV_SITE, "--format", "json", "--disable-pip-version-check"],
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        pytest.skip(f"pip list failed: {out.stderr[:200]}")
    names = {p["name"].lower().replace("_", "-") for p in json.loads(out.stdout)}
    rows = conn.query("SELECT name FROM python_packages WHERE directory = ?", (VENV_SITE,))
    assert {r["name"].lower().replace("_", "-") for r in rows} == names


def test_python_packages_default_directories(conn):
    rows = conn.query("SELECT directory, name, version FROM python_packages")
    dirs = {r["directory"] for r in rows}
    assert VENV_SITE in dirs  # this interpreter's sys.path
    for system_dir in glob.glob("/usr/lib/python3*/dist-packages"):
        expected = sorted((d.metadata["Name"], d.version) for d in importlib.metadata.distributions(path=[system_dir]))
        assert sorted((r["name"], r["version"]) for r in rows if r["directory"] == system_dir) == expected


def test_python_packages_in_a_tmp_site(conn, tmp_path):
    dist = tmp_path / "demo_pkg-1.2.3.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: demo-pkg\nVersion: 1.2.3\nSummary: A demo\nAuthor-email: Dee <d@example.org>\n"
        "License: Line one\n        line two\nClassifier: X\n\nLicense: not a header, the body starts here\n"
        + "x"
        * 50000
    )
    egg_dir = tmp_path / "old.egg-info"
    egg_dir.mkdir()
    (egg_dir / "PKG-INFO").write_text("Metadata-Version: 1.0\nName: old\nVersion: 0.1\nAuthor: Ann\nLicense: MIT\n")
    (tmp_path / "flat-2.0.egg-info").write_text("Metadata-Version: 1.1\nName: flat\nVersion: 2.0\nSummary: UNKNOWN\n")
    (tmp_path / "not_a_package").mkdir()
    rows = conn.query("SELECT * FROM python_packages WHERE directory = ?", (str(tmp_path),))
    got = {r["name"]: (r["version"], r["summary"], r["author"], r["license"], r["path"]) for r in rows}
    assert got == {
        "demo-pkg": ("1.2.3", "A demo", "Dee <d@example.org>", "Line one\nline two", str(dist)),
        "old": ("0.1", None, "Ann", "MIT", str(egg_dir)),
        "flat": ("2.0", "UNKNOWN", None, None, str(tmp_path / "flat-2.0.egg-info")),
    }
    names = sorted(d.metadata["Name"] for d in importlib.metadata.distributions(path=[str(tmp_path)]))
    assert sorted(got) == names
    slashed = conn.query("SELECT path, directory FROM python_packages WHERE directory = ?", (f"{tmp_path}/",))
    assert sorted(r["path"] for r in slashed) == sorted(r["path"] for r in rows)
    assert {r["directory"] for r in slashed} == {f"{tmp_path}/"}


def test_python_packages_uid_filter_reads_that_users_sites(conn):
    # uid 0 owns the system-wide directories (as in osquery) and root's own ~/.local ones.
    rows = conn.query("SELECT uid, directory FROM python_packages WHERE uid = 0")
    home = os.path.expanduser("~root")
    system_sites = {site for site, uid in pkgdb.python_site_dirs("", with_system=True, homes=[]) if uid is None}
    for r in rows:
        assert r["uid"] == 0 and (r["directory"].startswith(home + "/.local/") or r["directory"] in system_sites)
    assert conn.query("SELECT uid FROM python_packages WHERE uid = 4242424") == []


def test_parse_core_metadata_reads_only_the_header():
    fields = parse_core_metadata(b"Name: a\nVersion: 1\nClassifier: one\nClassifier: two\n\nName: body\n")
    assert fields == {"name": "a", "version": "1", "classifier": "one"}


# --- npm_packages ------------------------------------------------------------------------------------------


def write_package(dir_path, **fields):
    dir_path.mkdir(parents=True)
    (dir_path / "package.json").write_text(json.dumps(fields))


def test_npm_packages_in_a_tmp_tree(conn, tmp_path):
    nm = tmp_path / "node_modules"
    write_package(
        nm / "alpha",
        name="alpha",
        version="1.0.0",
        description="A",
        author={"name": "Al"},
        license="MIT",
        homepage="https://a.example",
    )
    write_package(
        nm / "@scope" / "beta",
        name="@scope/beta",
        version="2.0.0",
        author="Bea <b@example.org>",
        license={"type": "ISC", "url": "u"},
    )
    write_package(nm / "alpha" / "node_modules" / "gamma", name="gamma", version="3.0.0")
    write_package(nm / "alpha" / "node_modules" / "gamma" / "node_modules" / "delta", name="delta", version="4.0.0")
    (nm / "alpha" / "node_modules" / "gamma" / "node_modules" / "loop").symlink_to(nm / "alpha")
    (nm / ".bin").mkdir()
    (nm / "broken").mkdir()
    (nm / "broken" / "package.json").write_text("{not json")

    rows = conn.query("SELECT * FROM npm_packages WHERE directory = ?", (str(tmp_path),))
    got = sorted((r["name"], r["version"], r["depth"]) for r in rows)
    # loop -> alpha is listed once more at depth 2, then the visited-inode check stops the descent
    assert got == [
        ("@scope/beta", "2.0.0", 0),
        ("alpha", "1.0.0", 0),
        ("alpha", "1.0.0", 2),
        ("delta", "4.0.0", 2),
        ("gamma", "3.0.0", 1),
    ]
    alpha = next(r for r in rows if r["name"] == "alpha" and r["depth"] == 0)
    assert alpha == {
        "name": "alpha",
        "version": "1.0.0",
        "description": "A",
        "author": "Al",
        "license": "MIT",
        "homepage": "https://a.example",
        "path": str(nm / "alpha" / "package.json"),
        "directory": str(tmp_path),
        "depth": 0,
    }
    beta = next(r for r in rows if r["name"] == "@scope/beta")
    assert (beta["author"], beta["license"]) == ("Bea <b@example.org>", "ISC")
    shallow = conn.query(
        "SELECT name, depth, max_depth FROM npm_packages WHERE directory = ? AND max_depth = 0", (str(tmp_path),)
    )
    assert sorted((r["name"], r["depth"], r["max_depth"]) for r in shallow) == [("@scope/beta", 0, 0), ("alpha", 0, 0)]


@pytest.mark.skipif(shutil.which("npm") is None, reason="no npm")
def test_npm_packages_match_npm_ls_global(conn):
    root = subprocess.run(["npm", "root", "-g"], capture_output=True, text=True, timeout=60).stdout.strip()
    out = subprocess.run(["npm", "ls", "-g", "--depth=0", "--json"], capture_output=True, text=True, timeout=60)
    deps = json.loads(out.stdout or "{}").get("dependencies", {})
    rows = conn.query(
        "SELECT name, version FROM npm_packages WHERE directory = ? AND depth = 0", (os.path.dirname(root),)
    )
    assert sorted((r["name"], r["version"]) for r in rows) == sorted((n, d.get("version")) for n, d in deps.items())
    if os.path.dirname(root) in ("/usr/lib", "/usr/local/lib"):
        default = conn.query("SELECT name, version FROM npm_packages WHERE depth = 0 AND path LIKE ?", (root + "/%",))
        assert sorted(map(tuple, map(dict.values, default))) == sorted((n, d.get("version")) for n, d in deps.items())


# --- browsers ----------------------------------------------------------------------------------------------


def test_user_homes_match_getent():
    out = subprocess.run(["getent", "passwd"], capture_output=True, text=True, check=True).stdout
    expected = {(int(f[2]), f[5]) for f in (line.split(":") for line in out.splitlines()) if f[5].startswith("/")}
    local = set(browsers.user_homes())
    assert local <= expected and local
    assert browsers.user_homes([0]) == [(0, os.path.expanduser("~root"))]


def chrome_id(key_b64: str) -> str:
    digest = hashlib.sha256(base64.b64decode(key_b64)).hexdigest()[:32]
    return digest.translate(str.maketrans("0123456789abcdef", "abcdefghijklmnop"))


def make_chrome_profile(home, rel=".config/google-chrome/Default", prefs_name="Preferences", with_profile_name=True):
    profile = home / rel
    profile.mkdir(parents=True)
    key = base64.b64encode(b"0\x82\x01\x22fake-der-public-key").decode()
    ext = profile / "Extensions" / "abcdefghijklmnopabcdefghijklmnop" / "1.2_0"
    ext.mkdir(parents=True)
    manifest = {
        "name": "__MSG_appName__",
        "version": "1.2",
        "description": "Plain description",
        "default_locale": "en",
        "update_url": "https://clients2.google.com/service/update2/crx",
        "author": {"email": "dev@example.org"},
        "background": {"persistent": True},
        "permissions": ["tabs", "storage", {"usbDevices": []}],
        "key": key,
    }
    (ext / "manifest.json").write_text(json.dumps(manifest))
    (ext / "_locales" / "en").mkdir(parents=True)
    (ext / "_locales" / "en" / "messages.json").write_text(json.dumps({"APPNAME": {"message": "Demo Extension"}}))
    orphan = profile / "Extensions" / "ponmlkjihgfedcbaponmlkjihgfedcba" / "0.1_0"
    orphan.mkdir(parents=True)
    (orphan / "manifest.json").write_text(json.dumps({"name": "Orphan", "version": "0.1"}))
    prefs = {
        "extensions": {
            "settings": {
                "abcdefghijklmnopabcdefghijklmnop": {
                    "path": "abcdefghijklmnopabcdefghijklmnop/1.2_0",
                    "state": 1,
                    "from_webstore": True,
                    "install_time": "13300000000000000",
                }
            }
        }
    }
    if with_profile_name:
        prefs["profile"] = {"name": "Person 1"}
    (profile / prefs_name).write_text(json.dumps(prefs))
    return profile, ext, orphan, key


def test_chrome_extensions_from_a_tmp_home(tmp_path):
    profile, ext, orphan, key = make_chrome_profile(tmp_path)
    rows = sorted(browsers.chrome_extension_rows([(1234, str(tmp_path))]), key=lambda r: r["name"])
    assert [r["name"] for r in rows] == ["Demo Extension", "Orphan"]
    demo, lone = rows
    assert demo["identifier"] == chrome_id(key)
    assert (demo["browser_type"], demo["uid"], demo["profile"], demo["profile_path"]) == (
        "chrome",
        1234,
        "Person 1",
        str(profile),
    )
    assert (demo["referenced"], demo["referenced_identifier"], demo["state"], demo["from_webstore"]) == (
        1,
        "abcdefghijklmnopabcdefghijklmnop",
        "1",
        "true",
    )
    assert demo["install_timestamp"] == 13300000000000000 // 1_000_000 - 11644473600
    assert (demo["author"], demo["persistent"], demo["permissions"], demo["path"]) == (
        "dev@example.org",
        1,
        "tabs, storage",
        str(ext),
    )
    assert demo["manifest_hash"] == hashlib.sha256((ext / "manifest.json").read_bytes()).hexdigest()
    assert json.loads(demo["manifest_json"])["key"] == key and demo["key"] == key
    assert (lone["referenced"], lone["identifier"], lone["persistent"], lone["state"]) == (
        0,
        "ponmlkjihgfedcbaponmlkjihgfedcba",
        0,
        None,
    )
    assert lone["path"] == str(orphan)


def test_opera_extensions_from_a_tmp_home(tmp_path):
    _profile, ext, _orphan, key = make_chrome_profile(
        tmp_path, ".config/opera", "Secure Preferences", with_profile_name=False
    )
    rows = sorted(browsers.opera_extension_rows([(42, str(tmp_path))]), key=lambda r: r["name"])
    assert [(r["uid"], r["name"], r["version"]) for r in rows] == [(42, "Demo Extension", "1.2"), (42, "Orphan", "0.1")]
    assert (rows[0]["identifier"], rows[0]["locale"], rows[0]["path"]) == (chrome_id(key), "en", str(ext))
    spec = schema.REGISTRY["opera_extensions"]
    assert {k for r in rows for k in r} >= set(spec.column_names)
    # Opera is a Chromium browser: osquery lists it in chrome_extensions too
    assert {r["browser_type"] for r in browsers.chrome_extension_rows([(42, str(tmp_path))])} == {"opera"}


def test_firefox_addons_from_a_tmp_home(tmp_path):
    profile = tmp_path / ".mozilla" / "firefox" / "abcd1234.default-release"
    profile.mkdir(parents=True)
    addons = [
        {
            "id": "uBlock0@raymondhill.net",
            "type": "extension",
            "version": "1.50.0",
            "defaultLocale": {"name": "uBlock Origin", "creator": "Raymond Hill", "description": "Blocker"},
            "sourceURI": "https://addons.mozilla.org/x.xpi",
            "visible": True,
            "active": True,
            "userDisabled": False,
            "applyBackgroundUpdates": 1,
            "location": "app-profile",
            "path": str(profile / "extensions" / "uBlock0@raymondhill.net.xpi"),
        },
        {
            "id": "off@example.org",
            "type": "theme",
            "version": "1",
            "defaultLocale": {"name": "Off"},
            "active": False,
            "userDisabled": True,
        },
    ]
    (profile / "extensions.json").write_text(json.dumps({"schemaVersion": 35, "addons": addons}))
    (tmp_path / ".mozilla" / "firefox" / "no-extensions-file").mkdir()
    rows = sorted(browsers.firefox_addon_rows([(7, str(tmp_path))]), key=lambda r: r["identifier"])
    assert [r["identifier"] for r in rows] == ["off@example.org", "uBlock0@raymondhill.net"]
    off, ublock = rows
    assert ublock == {
        "uid": 7,
        "name": "uBlock Origin",
        "identifier": "uBlock0@raymondhill.net",
        "creator": "Raymond Hill",
        "type": "extension",
        "version": "1.50.0",
        "description": "Blocker",
        "source_url": "https://addons.mozilla.org/x.xpi",
        "visible": 1,
        "active": 1,
        "disabled": 0,
        "autoupdate": 1,
        "location": "app-profile",
        "path": addons[0]["path"],
    }
    assert (off["active"], off["disabled"], off["visible"]) == (0, 1, None)


def test_live_browser_tables_match_the_homes(conn):
    homes = browsers.user_homes()
    for name, rows_for in (
        ("chrome_extensions", browsers.chrome_extension_rows),
        ("opera_extensions", browsers.opera_extension_rows),
        ("firefox_addons", browsers.firefox_addon_rows),
    ):
        rows = conn.query(f"SELECT uid, path FROM {name}")
        assert sorted((r["uid"], r["path"]) for r in rows) == sorted((r["uid"], r["path"]) for r in rows_for(homes))
    assert conn.query("SELECT * FROM chrome_extensions WHERE uid = -5") == []


@pytest.mark.parametrize("name", [t for t in MY_TABLES if t != "opera_extensions"])
def test_columns_follow_osquery(name):
    osq = compat_json("osquery-linux-schema.json")["tables"][name]["columns"]
    spec = schema.REGISTRY[name]
    assert [c.name for c in spec.columns] == [c["name"] for c in osq]
    for col, ref in zip(spec.columns, osq, strict=True):
        assert col.type == ref["type"], col.name
        for flag in ("index", "required", "hidden", "additional"):
            assert getattr(col, flag) == bool(ref.get(flag)), (col.name, flag)
