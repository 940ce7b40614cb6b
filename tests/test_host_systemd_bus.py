"""systemd's live unit states over D-Bus, checked against systemctl where systemd runs as PID 1."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from streamq.host import systemd_bus, unitfiles


def _pid1() -> str:
    try:
        return Path("/proc/1/comm").read_text().strip()
    except OSError:
        return "unknown"


needs_systemd = pytest.mark.skipif(
    not unitfiles.systemd_running() or shutil.which("systemctl") is None,
    reason=f"systemd is not PID 1 here (PID 1 is {_pid1()!r}): no live unit states to read over D-Bus",
)


def _systemctl_states() -> dict[str, tuple[str, str]]:
    out = subprocess.run(
        ["systemctl", "list-units", "--all", "--plain", "--no-legend", "--no-pager"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    states = {}
    for line in out.splitlines():
        fields = line.split(None, 4)
        if len(fields) >= 4:
            states[fields[0]] = (fields[2], fields[3])
    return states


@needs_systemd
def test_list_units_matches_systemctl():
    ours = systemd_bus.list_units()
    assert ours is not None, "the system bus did not answer"
    truth = _systemctl_states()
    common = ours.keys() & truth.keys()
    assert len(common) > 10
    differ = [u for u in common if (ours[u].active_state, ours[u].sub_state) != truth[u]]
    assert len(differ) <= 2, differ  # a unit may change state between the two reads


@needs_systemd
def test_systemd_units_show_the_live_state(conn):
    truth = _systemctl_states()
    rows = conn.query("SELECT id, active_state, sub_state FROM systemd_units")
    assert rows and all(r["active_state"] is not None for r in rows)
    for row in rows:
        if row["id"] in truth and row["id"] in ("dbus.service", "systemd-journald.service"):
            assert (row["active_state"], row["sub_state"]) == truth[row["id"]]
    running = [r for r in rows if r["active_state"] == "active"]
    assert running, "systemd as PID 1 has active units"


@needs_systemd
def test_startup_items_status_is_the_live_active_state(conn):
    truth = _systemctl_states()
    rows = conn.query("SELECT name, status FROM startup_items WHERE type = 'systemd unit'")
    for row in rows:
        if row["name"] in truth and row["status"] not in ("not-found", "masked"):
            assert row["status"] == truth[row["name"]][0]


def test_without_systemd_the_unit_files_answer(conn):
    if unitfiles.systemd_running():
        pytest.skip("systemd runs here: the live path is tested above")
    rows = conn.query("SELECT active_state, sub_state FROM systemd_units")
    assert {(r["active_state"], r["sub_state"]) for r in rows} <= {("inactive", "dead")}


def test_a_list_units_entry_becomes_a_unit_state():
    entry = (
        "ssh.service",
        "OpenSSH",
        "loaded",
        "active",
        "running",
        "",
        "/org/freedesktop/systemd1/unit/ssh_2eservice",
    )
    state = systemd_bus._state((*entry, 0, "", "/"))
    assert state == systemd_bus.UnitState(
        "OpenSSH", "loaded", "active", "running", None, "/org/freedesktop/systemd1/unit/ssh_2eservice", 0, None, None
    )
