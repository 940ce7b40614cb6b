"""host/pkgformats: the dpkg status, core metadata and apt list name parsers, on bytes and apt's own files."""

from __future__ import annotations

import glob
import os

import pytest

from streamq.host.pkgformats import (
    apt_list_prefix,
    debian_revision,
    parse_core_metadata,
    parse_dpkg_status,
)

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


def test_parse_dpkg_status_and_revision():
    stanzas = list(parse_dpkg_status(FAKE_STATUS.encode()))
    assert [s[b"Package"] for s in stanzas] == [b"foo", b"gone", b"cfg"]
    assert stanzas[0][b"Version"] == b"2:1.0-1+b1"
    assert debian_revision("2:1.0-1+b1") == "1+b1"
    assert debian_revision("1:2.3") is None
    assert debian_revision("1.2-3-4") == "4"


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


def test_parse_core_metadata_reads_only_the_header():
    fields = parse_core_metadata(b"Name: a\nVersion: 1\nClassifier: one\nClassifier: two\n\nName: body\n")
    assert fields == {"name": "a", "version": "1", "classifier": "one"}
