"""carbon_black_info: the Carbon Black Linux sensor's files, as a fixture tree in the sensor's layout
(the sensor is not installed here, so the live table gives no rows)."""

from __future__ import annotations

import os
import subprocess

import pytest

from streamq.host import carbonblack

# sensorsettings.ini as the sensor writes it: one [CB] section, CamelCase keys, percent-encoded values.
SETTINGS = """\
[CB]
SensorBackendServer=https%3A//cb.example.com%3A443
ConfigName=Linux%20Servers
CollectStoreFiles=1
CollectModuleLoads=1
CollectModuleInfo=0
CollectFileMods=1
CollectRegMods=0
CollectNetConns=1
CollectProcesses=1
CollectCrossProcess=0
CollectEmetEvents=0
CollectDataFileWrites=1
CollectProcessUserContext=1
CollectSensorOperations=0
LogFileDiskQuotaMb=500
LogFileDiskQuotaPercentage=2
ProtectionDisabled=0
SensorIpAddr=10.1.2.3
"""


@pytest.fixture
def cb_root(tmp_path, monkeypatch):
    root = tmp_path / "cb"
    (root / "store" / "0a1b").mkdir(parents=True)
    (root / "sensor.id").write_text("00000100000004d2")  # 16 hex digits; the server's id is the low five
    (root / "sensorsettings.ini").write_text(SETTINGS)
    (root / "events.1").write_bytes(b"e" * 1000)
    (root / "events.2").write_bytes(b"e" * 234)
    (root / "store" / "0a1b" / "filedata").write_bytes(b"b" * 4096)
    (root / "store" / "0a1b" / "metadata").write_bytes(b"m" * 100)
    (root / "sensor.log").write_bytes(b"not a queue" * 10)
    monkeypatch.setattr(carbonblack, "CB_DIR", str(root))
    return root


def _find_bytes(root, *names: str) -> int:
    """Bytes of the files named so below root, as find(1) counts them."""
    expr = []
    for name in names:
        expr += ["-o", "-name", name] if expr else ["-name", name]
    out = subprocess.run(
        ["find", str(root), "-type", "f", "(", *expr, ")", "-printf", "%s\n"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return sum(int(n) for n in out.split())


def test_carbon_black_info_from_the_sensor_files(conn, cb_root):
    (row,) = conn.query("SELECT * FROM carbon_black_info")
    assert row["sensor_id"] == 0x004D2 == 1234
    assert row["config_name"] == "Linux Servers"
    assert row["sensor_backend_server"] == "https://cb.example.com:443"
    assert row["sensor_ip_addr"] == "10.1.2.3"
    flags = {k: v for k, v in row.items() if k.startswith("collect_")}
    assert flags == {
        "collect_store_files": 1,
        "collect_module_loads": 1,
        "collect_module_info": 0,
        "collect_file_mods": 1,
        "collect_reg_mods": 0,
        "collect_net_conns": 1,
        "collect_processes": 1,
        "collect_cross_processes": 0,
        "collect_emet_events": 0,
        "collect_data_file_writes": 1,
        "collect_process_user_context": 1,
        "collect_sensor_operations": 0,
    }
    assert (row["log_file_disk_quota_mb"], row["log_file_disk_quota_percentage"], row["protection_disabled"]) == (
        500,
        2,
        0,
    )
    assert row["event_queue"] == _find_bytes(cb_root, "events", "events.*") == 1234
    assert row["binary_queue"] == _find_bytes(cb_root, "filedata", "metadata") == 4196


def test_malformed_settings_keep_what_parses(cb_root):
    broken = SETTINGS.replace("CollectFileMods=1", "this line has no equals sign").replace(
        "CollectNetConns=1", "CollectNetConns=yes"
    )
    (cb_root / "sensorsettings.ini").write_text(broken)
    (cb_root / "sensor.id").write_text("short\n")
    row = carbonblack.sensor_row()
    assert row["sensor_id"] is None
    assert row["collect_file_mods"] is None and row["collect_net_conns"] is None
    assert (row["collect_store_files"], row["config_name"]) == (1, "Linux Servers")
    (cb_root / "sensorsettings.ini").write_bytes(b"\xff\xfe no section header\n")
    assert carbonblack.parse_sensorsettings((cb_root / "sensorsettings.ini").read_bytes()) == {}
    assert carbonblack.sensor_row()["event_queue"] == 1234


def test_only_the_settings_file_is_enough(cb_root):
    (cb_root / "sensor.id").unlink()
    row = carbonblack.sensor_row()
    assert row["sensor_id"] is None and row["config_name"] == "Linux Servers"


def test_no_sensor_means_no_rows(conn, tmp_path, monkeypatch):
    monkeypatch.setattr(carbonblack, "CB_DIR", str(tmp_path / "absent"))
    assert conn.query("SELECT * FROM carbon_black_info") == []
    monkeypatch.undo()
    if not os.path.exists("/var/lib/cb"):  # the sensor is not installed on this machine
        assert conn.query("SELECT * FROM carbon_black_info") == []
