"""startup_items on the live host against systemctl and its rc links (the tree tests: test_host_autostart)."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess

import pytest

from streamq.host import autostart


def _systemctl_enabled() -> set[str] | None:
    if not shutil.which("systemctl"):
        return None
    out = subprocess.run(
        ["systemctl", "list-unit-files", "--state=enabled", "--no-legend", "--no-pager"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if out.returncode not in (0, 1):  # 1: nothing matched
        return None
    return {line.split()[0] for line in out.stdout.splitlines() if line.strip()}


def test_live_systemd_matches_systemctl(conn):
    rows = conn.query("SELECT name, status FROM startup_items WHERE type = 'systemd unit'")
    ours = {autostart._template_of(r["name"]) for r in rows if r["status"] == "enabled"}
    theirs = _systemctl_enabled()
    if theirs is None:  # compare with the links themselves
        theirs = set()
        for directory in ("/etc/systemd/system", "/run/systemd/system"):
            for sub in os.listdir(directory) if os.path.isdir(directory) else ():
                if sub.endswith((".wants", ".requires")):
                    theirs |= {autostart._template_of(n) for n in os.listdir(f"{directory}/{sub}")}
    assert ours == theirs


def test_live_sysv_scripts_match_rc_links(conn):
    if not os.path.isdir("/etc/init.d"):
        pytest.skip("no /etc/init.d")
    rows = {
        r["name"]: r["status"]
        for r in conn.query("SELECT name, status FROM startup_items WHERE source = '/etc/init.d/'")
    }
    scripts = {
        n for n in os.listdir("/etc/init.d") if os.stat(f"/etc/init.d/{n}").st_mode & stat.S_IXUSR and n != "README"
    }
    assert set(rows) == scripts
    started = set()
    for level in "S2345":
        d = f"/etc/rc{level}.d"
        for link in os.listdir(d) if os.path.isdir(d) else ():
            if link.startswith("S") and os.path.islink(f"{d}/{link}"):
                started.add(os.path.basename(os.readlink(f"{d}/{link}")))
    assert {n for n, s in rows.items() if s == "enabled"} == scripts & started


def test_live_table_is_typed(conn):
    rows = conn.query("SELECT * FROM startup_items")
    for row in rows:
        assert all(v is None or isinstance(v, str) for v in row.values())
        assert row["type"] in {"systemd unit", "Startup Item", "rc.local", "cron"}
