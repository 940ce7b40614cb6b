"""interface_ipv6 against `ip -6 -j addr` and the per-interface sysctls."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT, needs_root

CONF = "/proc/sys/net/ipv6/conf"


def _sysctl(interface: str, name: str) -> int:
    return int(open(f"{CONF}/{interface}/{name}").read())


def test_every_ipv6_interface_with_its_sysctls(conn):
    if not os.path.isdir(CONF) or not shutil.which("ip"):
        pytest.skip("no IPv6 or no iproute2 here")
    listed = json.loads(subprocess.run(["ip", "-6", "-j", "addr"], capture_output=True, check=True).stdout)
    rows = {r["interface"]: r for r in conn.query("SELECT * FROM interface_ipv6")}
    assert {link["ifname"] for link in listed} <= set(rows)
    for name, row in rows.items():
        if not os.path.isdir(f"{CONF}/{name}"):
            assert row["forwarding_enabled"] is None
            continue
        forwarding = _sysctl(name, "forwarding")
        assert row["hop_limit"] == _sysctl(name, "hop_limit")
        assert row["forwarding_enabled"] == forwarding
        redirects = (_sysctl(name, "accept_redirects"), _sysctl("all", "accept_redirects"))
        assert row["redirect_accept"] == int(all(redirects) if forwarding else any(redirects))
        ra = _sysctl(name, "accept_ra")
        assert row["rtadv_accept"] == (1 if ra == 2 else int(bool(ra) and not forwarding))


@needs_root
def test_settings_of_a_veth_in_a_private_namespace():
    if not shutil.which("unshare"):
        pytest.skip("unshare is not installed")
    script = (
        "ip link add sq0 type veth peer name sq1 && "
        "sysctl -qw net.ipv6.conf.sq0.forwarding=1 net.ipv6.conf.sq0.accept_ra=2 net.ipv6.conf.sq0.hop_limit=9 "
        "net.ipv6.conf.sq1.accept_ra=0 net.ipv6.conf.sq1.accept_redirects=0 net.ipv6.conf.all.accept_redirects=0 && "
        f"{sys.executable} -m streamq query --json 'SELECT * FROM interface_ipv6' && ip -6 -j addr"
    )
    result = subprocess.run(["unshare", "-n", "sh", "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=60)
    if result.returncode != 0 and "veth" in result.stderr + result.stdout:
        pytest.skip(f"no veth here: {result.stderr.strip()}")
    assert result.returncode == 0, result.stderr
    rows_text, _, _ = result.stdout.partition("\n]\n")
    rows = {r["interface"]: r for r in json.loads(rows_text + "\n]")}
    assert rows["sq0"] == {
        "interface": "sq0",
        "hop_limit": 9,
        "forwarding_enabled": 1,
        "redirect_accept": 0,
        "rtadv_accept": 1,
    }
    assert rows["sq1"] == {
        "interface": "sq1",
        "hop_limit": 64,
        "forwarding_enabled": 0,
        "redirect_accept": 0,
        "rtadv_accept": 0,
    }
