"""Where osquery gives a fixed answer, the same answer: 0 and -1 defaults, uid 0 for system-wide
packages, no cpu_info rows without SMBIOS. Ground truth: ip(8), the file system, the SMBIOS table."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, is_root
from streamq.host import langpkgs, sysdevices


def _in_private_netns(script: str) -> subprocess.CompletedProcess:
    return subprocess.run(["unshare", "-n", "sh", "-c", script], capture_output=True, text=True, timeout=60, cwd=ROOT)


@pytest.mark.skipif(not is_root or shutil.which("unshare") is None, reason="needs root and unshare(1) for a netns")
def test_routes_mtu_and_hopcount_are_0_when_unset_and_the_kernels_when_set():
    sql = "SELECT destination, netmask, mtu, hopcount FROM routes WHERE interface = 'lo' AND type = 'gateway'"
    result = _in_private_netns(
        "ip link set lo up && ip route add 198.51.100.0/24 dev lo mtu 1400 hoplimit 7 && "
        "ip route add 203.0.113.0/24 dev lo && "
        f'{sys.executable} -m streamq query --json "{sql}" && ip -j route show'
    )
    assert result.returncode == 0, result.stderr
    ours, truth = result.stdout.split("\n]\n")
    rows = {(r["destination"], r["netmask"]): (r["mtu"], r["hopcount"]) for r in json.loads(ours + "]")}
    expected = {}
    for route in json.loads(truth):
        net, _, bits = route["dst"].partition("/")
        metrics = (route.get("metrics") or [{}])[0]
        expected[(net, int(bits))] = (metrics.get("mtu", 0), metrics.get("hoplimit", 0))
    assert rows == expected == {("198.51.100.0", 24): (1400, 7), ("203.0.113.0", 24): (0, 0)}


def test_every_route_has_an_integer_mtu_and_hopcount(conn):
    rows = conn.query("SELECT mtu, hopcount FROM routes")
    assert rows and all(isinstance(r["mtu"], int) and isinstance(r["hopcount"], int) for r in rows)


def test_interface_details_last_change_is_minus_1(conn):
    rows = conn.query("SELECT interface, last_change FROM interface_details")
    assert sorted(r["interface"] for r in rows) == sorted(os.listdir("/sys/class/net"))
    assert {r["last_change"] for r in rows} == {-1}
    assert conn.query("SELECT count(*) AS n FROM interface_details WHERE last_change = -1")[0]["n"] == len(rows)


def _system_sites() -> list[str]:
    return [site for site, uid in langpkgs.python_site_dirs("", with_system=True, homes=[]) if uid is None]


def test_system_wide_python_packages_have_uid_0_and_join_users(conn):
    sites = [s for s in _system_sites() if any(n.endswith((".dist-info", ".egg-info")) for n in os.listdir(s))]
    if not sites:
        pytest.skip("no system-wide Python distributions here")
    rows = conn.query("SELECT uid, directory FROM python_packages")
    system_rows = [r for r in rows if r["directory"] in sites]
    assert system_rows and {r["uid"] for r in system_rows} == {0}
    joined = conn.query(
        "SELECT count(*) AS n FROM users JOIN python_packages AS p USING (uid) WHERE users.uid = 0 AND p.directory = ?",
        (sites[0],),
    )[0]["n"]
    assert joined == sum(1 for r in system_rows if r["directory"] == sites[0]) > 0
    assert conn.query("SELECT count(*) AS n FROM python_packages WHERE uid IS NULL")[0]["n"] == 0


def _smbios(structures: list[tuple[int, bytes]]) -> bytes:
    out = b""
    for handle, (kind, strings) in enumerate(structures):
        out += struct.pack("<BBH", kind, 4, handle) + strings + b"\0\0"
    return out


def test_smbios_processor_count_reads_the_table(tmp_path):
    (tmp_path / "DMI").write_bytes(_smbios([(0, b"BIOS"), (4, b"CPU 0"), (4, b"CPU 1"), (127, b"")]))
    assert sysdevices.smbios_processors(str(tmp_path)) == 2
    (tmp_path / "DMI").write_bytes(_smbios([(0, b"BIOS")]))
    assert sysdevices.smbios_processors(str(tmp_path)) == 0
    assert sysdevices.smbios_processors(str(tmp_path / "absent")) == 0


def test_cpu_info_has_no_rows_without_smbios(conn):
    dmi = Path(sysdevices.DMI_TABLES, "DMI")
    rows = conn.query("SELECT * FROM cpu_info")
    if dmi.exists() and os.access(dmi, os.R_OK) and sysdevices.smbios_processors():
        assert rows, "SMBIOS lists processors: cpu_info has rows"
    else:
        assert rows == []  # osquery: no SMBIOS entry point, no rows (not one row of NULLs)
