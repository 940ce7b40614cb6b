"""Software inventory tables: deb/rpm/portage packages, APT sources, Python and npm packages, browser add-ons."""

from __future__ import annotations

import glob
import importlib.metadata
import itertools
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import time

import pytest
from test_host_pkgformats import FAKE_STATUS, independent_apt_entries

from conftest import compat_json
from streamq.host import accounts, browsers, langpkgs
from streamq.sql import schema

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


# --- apt_sources -------------------------------------------------------------------------------------------


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


# --- rpm_packages / portage_packages -----------------------------------------------------------------------


def test_rpm_and_portage_are_empty_without_databases(conn):
    if not any(os.path.exists(d + "/rpmdb.sqlite") for d in ("/var/lib/rpm", "/usr/lib/sysimage/rpm")):
        assert conn.query("SELECT * FROM rpm_packages") == []
        assert conn.query("SELECT * FROM rpm_packages WHERE name = 'bash'") == []
    if not os.path.isdir("/var/db/pkg"):
        assert conn.query("SELECT * FROM portage_packages") == []


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
    system_sites = {site for site, uid in langpkgs.python_site_dirs("", with_system=True, homes=[]) if uid is None}
    for r in rows:
        assert r["uid"] == 0 and (r["directory"].startswith(home + "/.local/") or r["directory"] in system_sites)
    assert conn.query("SELECT uid FROM python_packages WHERE uid = 4242424") == []


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


def test_live_browser_tables_match_the_homes(conn):
    homes = accounts.user_homes()
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
