"""augeas against augtool (Debian augeas-tools) over the same files."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest


@pytest.fixture(scope="module")
def augeas_ready():
    pytest.importorskip("augeas", reason="python-augeas is not installed (make installs it where libaugeas-dev is)")
    if not shutil.which("augtool"):
        pytest.skip("augtool is not installed (Debian package augeas-tools)")


def augtool_print(tree: str) -> set[tuple[str, str]]:
    # augtool saves nothing unless told to (-s); print only reads
    out = subprocess.run(["augtool", "print", tree], capture_output=True, text=True, check=True, timeout=60).stdout
    nodes = set()
    for line in out.splitlines():
        m = re.match(r'^(\S+)(?: = "(.*)")?$', line)
        if m and not m.group(1).startswith("/augeas"):
            nodes.add((m.group(1), (m.group(2) or "").replace('\\"', '"')))
    return nodes


@pytest.mark.parametrize("path", ["/etc/hosts", "/etc/ssh/ssh_config"])
def test_augeas_tree_of_a_file_matches_augtool(conn, augeas_ready, path):
    import os

    if not os.path.isfile(path):
        pytest.skip(f"{path} is absent")
    rows = conn.query("SELECT node, value, label, path FROM augeas WHERE path = ?", (path,))
    assert rows, "no nodes"
    assert {(r["node"], r["value"]) for r in rows} == augtool_print(f"/files{path}")
    assert {r["path"] for r in rows} == {path}
    assert all(r["label"] == r["node"].rsplit("/", 1)[1].split("[")[0] for r in rows)


def test_augeas_by_node(conn, augeas_ready):
    (row,) = conn.query("SELECT * FROM augeas WHERE node = '/files/etc/hosts/1/ipaddr'")
    assert (row["value"], row["label"], row["path"]) == (
        dict(augtool_print("/files/etc/hosts"))["/files/etc/hosts/1/ipaddr"],
        "ipaddr",
        "/etc/hosts",
    )
