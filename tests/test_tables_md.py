"""md_devices, md_drives, md_personalities: an mdadm-built array where the kernel has md, else mdstat and sysfs fixtures."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from test_host_mdstat import MDSTAT

from conftest import needs_root
from streamq.host import mdstat
from streamq.tables import md


def write(path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.fixture
def sys_root(tmp_path):
    base = tmp_path / "md1" / "md"
    for attr, value in (
        ("level", "raid5"),
        ("chunk_size", "524288"),
        ("raid_disks", "3"),
        ("array_state", "clean"),
        ("metadata_version", "1.2"),
    ):
        write(base / attr, value + "\n")
    for dev, slot, state in (
        ("sda1", "none", "faulty"),
        ("sdb1", "1", "in_sync"),
        ("sdc1", "none", "spare"),
        ("sdd1", "2", "in_sync"),
    ):
        write(base / f"dev-{dev}" / "slot", slot + "\n")
        write(base / f"dev-{dev}" / "state", state + "\n")
    return str(tmp_path)


def test_md_devices_and_drives_with_sysfs(sys_root):
    stat = mdstat.parse_mdstat(MDSTAT)
    md1 = md.md_device_rows(stat, sys_root)[0]
    assert {k: md1[k] for k in ("raid_level", "chunk_size", "raid_disks", "nr_raid_disks", "working_disks", "active_disks", "failed_disks", "spare_disks")} == {
        "raid_level": 5, "chunk_size": 524288, "raid_disks": 3, "nr_raid_disks": 4, "working_disks": 3, "active_disks": 2, "failed_disks": 1, "spare_disks": 1,
    }  # fmt: skip
    assert (md1["superblock_state"], md1["superblock_version"], md1["recovery_progress"]) == (
        "clean",
        "1.2",
        "8.5% (8768/102336)",
    )
    drives = {
        r["drive_name"]: (r["slot"], r["state"])
        for r in md.md_drive_rows(stat, sys_root)
        if r["md_device_name"] == "md1"
    }
    assert drives == {
        "/dev/sda1": (None, "faulty"),
        "/dev/sdb1": (1, "active sync"),
        "/dev/sdc1": (None, "spare"),
        "/dev/sdd1": (2, "active sync"),
    }
    md0 = md.md_device_rows(stat, sys_root)[1]  # no sysfs for md0 here: counts come from mdstat alone
    assert (md0["raid_level"], md0["nr_raid_disks"], md0["active_disks"], md0["resync_progress"]) == (
        1,
        2,
        2,
        "DELAYED",
    )


@needs_root
def test_a_real_array_matches_mdadm_detail(conn, tmp_path):
    if not os.path.exists(mdstat.MDSTAT):
        pytest.skip("this kernel has no md driver (/proc/mdstat is absent); the fixtures above cover the parsing")
    if not shutil.which("mdadm") or not shutil.which("losetup"):
        pytest.skip("mdadm or losetup is not installed")
    loops = []
    try:
        for i in range(2):
            image = tmp_path / f"disk{i}.img"
            image.write_bytes(b"\0" * (20 << 20))
            loops.append(
                subprocess.run(
                    ["losetup", "--find", "--show", str(image)], capture_output=True, text=True, check=True
                ).stdout.strip()
            )
        subprocess.run(
            [
                "mdadm",
                "--create",
                "/dev/md/streamq-test",
                "--run",
                "--level=1",
                "--raid-devices=2",
                "--metadata=1.2",
                *loops,
            ],
            capture_output=True,
            check=True,
            input=b"y\n",
        )
        detail = subprocess.run(
            ["mdadm", "--detail", "/dev/md/streamq-test"], capture_output=True, text=True, check=True
        ).stdout
        name = os.path.basename(os.path.realpath("/dev/md/streamq-test"))
        (row,) = conn.query("SELECT * FROM md_devices WHERE device_name = ?", (name,))
        assert row["raid_level"] == 1 and "Raid Level : raid1" in detail
        assert f"Raid Devices : {row['raid_disks']}" in detail
        drives = conn.query("SELECT drive_name FROM md_drives WHERE md_device_name = ?", (name,))
        assert {d["drive_name"] for d in drives} == set(loops)
    finally:
        subprocess.run(["mdadm", "--stop", "/dev/md/streamq-test"], capture_output=True)
        for loop in loops:
            subprocess.run(["mdadm", "--zero-superblock", loop], capture_output=True)
            subprocess.run(["losetup", "--detach", loop], capture_output=True)


def test_no_md_driver_means_no_rows(conn):
    if os.path.exists(mdstat.MDSTAT):
        pytest.skip("this kernel has md")
    for name in ("md_devices", "md_drives", "md_personalities"):
        assert conn.query(f"SELECT * FROM {name}") == []
