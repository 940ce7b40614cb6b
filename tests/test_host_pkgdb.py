"""host/pkgdb: APT sources, an rpm database and a portage tree the tests build in tmp dirs."""

from __future__ import annotations

import sqlite3
import struct

import pytest

from streamq.host import pkgdb
from streamq.host.pkgformats import (
    parse_deb822_sources,
    parse_release,
    parse_rpm_header,
    parse_sources_list,
)


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
    # Read into memory (how a path under /proc/<pid>/root is read), the same rows.
    path = str(tmp_path / "rpmdb.sqlite")
    assert list(pkgdb.rpm_rows(path, in_memory=True)) == list(pkgdb.rpm_rows(path))
    assert list(pkgdb.rpm_rows(str(tmp_path / "absent"), in_memory=True)) == []
    (tmp_path / "junk.sqlite").write_bytes(b"not a database")
    assert list(pkgdb.rpm_rows(str(tmp_path / "junk.sqlite"), in_memory=True)) == []
    with pytest.raises(ValueError):
        parse_rpm_header(blob[:-3])
    assert parse_rpm_header(b"\x8e\xad\xe8\x01\0\0\0\0" + blob, frozenset({1000}))[1000] == "bash"


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
