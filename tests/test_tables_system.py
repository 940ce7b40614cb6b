"""System and kernel tables against uname, os-release, free, prlimit, psutil, systemctl, df and sysctl."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import psutil
import pytest

from conftest import needs_root
from streamq.host import kernelfs, sysdevices, sysinfo, unitfiles
from streamq.sql import schema
from streamq.sql.schema import Constraint, QueryContext
from streamq.tables import system


def sh(*args: str) -> str:
    return subprocess.run(args, capture_output=True, text=True, check=True, timeout=20).stdout


def gen(table: str, *constraints: Constraint) -> list[dict]:
    """Rows straight from a generator, so a pushdown that reads too much is visible."""
    spec = schema.REGISTRY[table]
    return [dict(r) for r in spec.generate(QueryContext(spec, constraints))]


# --- os_version, kernel_info -------------------------------------------------------------------


def test_os_version_matches_os_release(conn):
    release = {}
    for line in Path("/etc/os-release").read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            release[key] = " ".join(shlex.split(value))
    (row,) = conn.query("SELECT * FROM os_version")
    assert row["name"] == release["NAME"]
    assert row["platform"] == release["ID"]
    assert row["version"] == release.get("VERSION", release.get("VERSION_ID"))
    assert row["codename"] == release.get("VERSION_CODENAME")
    assert row["platform_like"] == release.get("ID_LIKE")
    assert row["major"] == int(release["VERSION_ID"].split(".")[0])
    assert row["arch"] == sh("uname", "-m").strip()


def test_os_version_of_a_process_namespace(conn):
    (row,) = conn.query(
        "SELECT name, pid_with_namespace, mount_namespace_id FROM os_version WHERE pid_with_namespace = ?",
        (os.getpid(),),
    )
    assert row["pid_with_namespace"] == os.getpid()
    assert row["mount_namespace_id"] == os.readlink("/proc/self/ns/mnt")[5:-1]
    assert conn.query("SELECT * FROM os_version WHERE pid_with_namespace = 999999999") == []


def test_os_version_numbers_parse():
    row = system.os_version_row(sysinfo.parse_os_release(b'NAME="Ubuntu"\nVERSION_ID="22.04"\nID=ubuntu\n'))
    assert (row["major"], row["minor"], row["patch"]) == (22, 4, None)
    row = system.os_version_row(sysinfo.parse_os_release(b"NAME=Arch\nID=arch\nBUILD_ID=rolling\n"))
    assert (row["major"], row["build"], row["version"]) == (None, "rolling", None)


def test_kernel_info_matches_uname_and_cmdline(conn):
    (row,) = conn.query("SELECT * FROM kernel_info")
    assert row["version"] == sh("uname", "-r").strip()
    args = Path("/proc/cmdline").read_text().split()
    boot = [a[11:] for a in args if a.startswith("BOOT_IMAGE=")]
    root = [a[5:] for a in args if a.startswith("root=")]
    assert row["device"] == (root[0] if root else None)
    vmlinuz = f"/boot/vmlinuz-{os.uname().release}"
    assert row["path"] == (boot[0] if boot else vmlinuz if os.path.exists(vmlinuz) else None)
    rest = [a for a in args if not a.startswith(("BOOT_IMAGE=", "root="))]
    assert row["arguments"] == " ".join(rest)


def test_kernel_info_joins_hash_as_in_the_packs(conn):
    if "hash" not in schema.REGISTRY:
        pytest.skip("the hash table is not registered in this tree yet")
    conn.query("SELECT * FROM kernel_info JOIN hash USING (path)")


# --- system_info, platform_info, cpu_info ------------------------------------------------------


def _lscpu() -> dict[str, str]:
    return {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in sh("lscpu").splitlines())}


def test_system_info_against_tools(conn):
    (row,) = conn.query("SELECT * FROM system_info")
    assert row["hostname"] == row["computer_name"] == sh("hostname").strip()
    assert row["cpu_type"] == sh("uname", "-m").strip()
    assert row["cpu_logical_cores"] == int(sh("nproc", "--all").strip())
    mem_total = int(sh("free", "-b").splitlines()[1].split()[1])
    assert row["physical_memory"] == mem_total
    if shutil.which("lscpu"):
        lscpu = _lscpu()
        assert row["cpu_brand"] == lscpu.get("Model name")
        if "Socket(s)" in lscpu and lscpu["Socket(s)"].isdigit():
            assert row["cpu_sockets"] == int(lscpu["Socket(s)"])
            cores = int(lscpu["Core(s) per socket"]) * int(lscpu["Socket(s)"])
            assert row["cpu_physical_cores"] == cores


def test_system_info_uuid_and_dmi(conn):
    (row,) = conn.query("SELECT * FROM system_info")
    dmi = Path("/sys/class/dmi/id")
    product_uuid = dmi / "product_uuid"
    try:
        expected = product_uuid.read_text().strip()
    except OSError:
        mid = Path("/etc/machine-id").read_text().strip()
        expected = "-".join((mid[:8], mid[8:12], mid[12:16], mid[16:20], mid[20:]))
    assert row["uuid"] == expected
    for column, name in (("hardware_vendor", "sys_vendor"), ("board_vendor", "board_vendor")):
        try:
            assert row[column] == ((dmi / name).read_text().strip() or None)
        except FileNotFoundError:
            assert row[column] is None


def test_platform_info_needs_dmi(conn):
    rows = conn.query("SELECT * FROM platform_info")
    bios_vendor = Path("/sys/class/dmi/id/bios_vendor")
    if not bios_vendor.exists():
        assert rows == []
    else:
        assert rows[0]["vendor"] == (bios_vendor.read_text().strip() or None)
        assert rows[0]["firmware_type"] == ("uefi" if Path("/sys/firmware/efi").is_dir() else "bios")


def test_cpu_info_one_row_per_socket(conn):
    rows = conn.query("SELECT * FROM cpu_info")
    if not sysdevices.smbios_processors():
        pytest.skip("no SMBIOS processor structures here: cpu_info has no rows, as in osquery")
    lscpu = _lscpu()
    sockets = int(lscpu["Socket(s)"]) if lscpu.get("Socket(s)", "").isdigit() else 1
    assert len(rows) == sockets
    assert sum(r["logical_processors"] for r in rows) == os.cpu_count()
    assert rows[0]["model"] == lscpu.get("Model name")
    assert rows[0]["manufacturer"] == lscpu.get("Vendor ID")


# --- load, memory, cpu time, limits ------------------------------------------------------------


def test_load_average_close_to_getloadavg(conn):
    rows = conn.query("SELECT * FROM load_average")
    assert [r["period"] for r in rows] == ["1m", "5m", "15m"]
    for row, expected in zip(rows, os.getloadavg()):
        assert re.fullmatch(r"\d+\.\d{6}", row["average"])
        assert abs(float(row["average"]) - expected) < 0.5


def test_memory_info_against_free(conn):
    (row,) = conn.query("SELECT * FROM memory_info")
    mem, swap = (line.split() for line in sh("free", "-b").splitlines()[1:3])
    assert row["memory_total"] == int(mem[1])
    assert row["swap_total"] == int(swap[1])
    assert abs(row["memory_available"] - int(mem[6])) < 256 * 2**20
    assert abs(row["memory_free"] - int(mem[3])) < 256 * 2**20
    assert all(isinstance(v, int) for v in row.values())


def test_cpu_time_against_psutil(conn):
    hz = os.sysconf("SC_CLK_TCK")
    before = psutil.cpu_times(percpu=True)
    rows = conn.query("SELECT * FROM cpu_time ORDER BY core")
    after = psutil.cpu_times(percpu=True)
    assert [r["core"] for r in rows] == list(range(len(before)))
    for row, b, a in zip(rows, before, after):
        for column in ("user", "system", "idle", "iowait"):
            low, high = getattr(b, column) * hz, getattr(a, column) * hz
            assert low - 1 <= row[column] <= high + 1, (column, row[column], low, high)


def test_ulimit_info_against_prlimit(conn):
    if not shutil.which("prlimit"):
        pytest.skip("prlimit is not installed")
    out = sh("prlimit", "--pid", str(os.getpid()), "--raw", "--noheadings", "--output", "RESOURCE,SOFT,HARD")
    expected = {name.lower(): (soft, hard) for name, soft, hard in (line.split() for line in out.splitlines())}
    rows = {r["type"]: (r["soft_limit"], r["hard_limit"]) for r in conn.query("SELECT * FROM ulimit_info")}
    assert "nofile" in rows and "stack" in rows
    for name, limits in rows.items():
        assert limits == expected[name], name


# --- systemd_units -----------------------------------------------------------------------------


def test_systemd_units_against_systemctl(conn):
    if not shutil.which("systemctl"):
        pytest.skip("systemctl is not installed")
    out = sh("systemctl", "list-unit-files", "--no-pager", "--no-legend")
    files = {f[0]: f[1] for f in (line.split() for line in out.splitlines()) if len(f) >= 2}
    expected = {name: state for name, state in files.items() if state != "alias" and "@." not in name}
    rows = {r["id"]: r for r in conn.query("SELECT * FROM systemd_units")}
    assert {name: r["unit_file_state"] for name, r in rows.items()} == expected
    if not unitfiles.systemd_running():
        assert {r["active_state"] for r in rows.values()} <= {"inactive"}


def test_systemd_unit_description_and_object_path(conn):
    rows = conn.query("SELECT * FROM systemd_units WHERE load_state = 'loaded' LIMIT 20")
    if not rows:
        pytest.skip("no unit files on this host")
    for row in rows:
        text = Path(row["fragment_path"]).read_text()
        found = re.findall(r"^Description=(.*)$", text, re.M)
        assert row["description"] == (found[-1].strip() if found else None)
    (row,) = conn.query("SELECT object_path FROM systemd_units WHERE id = ?", (rows[0]["id"],))
    assert row["object_path"].startswith("/org/freedesktop/systemd1/unit/")
    assert unitfiles.bus_path("ssh.service") == "/org/freedesktop/systemd1/unit/ssh_2eservice"


# --- mounts ------------------------------------------------------------------------------------


def _proc_mounts() -> Counter:
    entries = Counter()
    for line in Path("/proc/self/mounts").read_bytes().splitlines():
        f = line.split()
        unescape = [re.sub(rb"\\([0-7]{3})", lambda m: bytes([int(m[1], 8)]), x).decode() for x in f[:3]]
        entries[tuple(unescape)] += 1
    return entries


def test_mounts_match_proc_mounts(conn):
    rows = conn.query("SELECT device, path, type FROM mounts")
    assert Counter((r["device"], r["path"], r["type"]) for r in rows) == _proc_mounts()


def test_mounts_root_blocks_against_df(conn):
    (row,) = conn.query("SELECT * FROM mounts WHERE path = '/' AND type != 'rootfs' LIMIT 1")
    size, avail, itotal = (int(x) for x in sh("df", "-B1", "--output=size,avail,itotal", "/").split()[3:6])
    assert row["blocks"] * row["blocks_size"] == size
    assert abs(row["blocks_available"] * row["blocks_size"] - avail) < 64 * 2**20
    assert row["inodes"] == itotal


@needs_root
def test_mount_point_with_a_space(conn, tmp_path):
    target = tmp_path / "a b"
    target.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "sqtest", str(target)]).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        (row,) = conn.query("SELECT * FROM mounts WHERE path = ?", (str(target),))
        assert row["device"] == "sqtest" and row["type"] == "tmpfs"
        assert row["blocks"] * row["blocks_size"] == 2**20
    finally:
        subprocess.run(["umount", str(target)], check=True)


# --- kernel_modules ----------------------------------------------------------------------------


def test_kernel_modules_against_sys_module(conn):
    rows = conn.query("SELECT * FROM kernel_modules")
    if os.path.exists("/proc/modules"):
        names = [line.split()[0] for line in Path("/proc/modules").read_text().splitlines()]
        assert sorted(r["name"] for r in rows) == sorted(names)
        return
    assert sorted(r["name"] for r in rows) == sorted(os.listdir("/sys/module"))
    for row in rows:
        initstate = Path("/sys/module", row["name"], "initstate")
        assert row["status"] == (initstate.read_text().strip().capitalize() if initstate.exists() else "builtin")


# --- system_controls ---------------------------------------------------------------------------


SYSCTL_KEYS = ("kernel.ostype", "kernel.hostname", "vm.swappiness", "net.ipv4.ip_forward", "fs.file-max")


def test_system_controls_against_sysctl(conn):
    rows = {r["name"]: r for r in conn.query("SELECT * FROM system_controls WHERE subsystem IN ('kernel', 'vm')")}
    for key in SYSCTL_KEYS:
        if shutil.which("sysctl"):
            expected = sh("sysctl", "-n", key).strip()
        else:
            expected = Path("/proc/sys", key.replace(".", "/")).read_text().strip()
        (row,) = conn.query("SELECT * FROM system_controls WHERE name = ?", (key,))
        assert row["current_value"] == expected
        assert row["subsystem"] == key.split(".")[0]
        assert row["type"] == ("int" if re.fullmatch(r"-?\d+", expected) else "string")
        if row["subsystem"] in ("kernel", "vm"):
            assert rows[key]["current_value"] == expected


def test_system_controls_name_reads_one_file():
    assert [r["name"] for r in gen("system_controls", Constraint("name", "=", "kernel.ostype"))] == ["kernel.ostype"]
    assert gen("system_controls", Constraint("name", "=", "kernel.no_such_thing")) == []
    assert gen("system_controls", Constraint("name", "=", "kernel..ostype")) == []
    vm = gen("system_controls", Constraint("subsystem", "=", "vm"))
    assert vm and {r["subsystem"] for r in vm} == {"vm"}


def test_system_controls_cover_sysctl_a(conn):
    if not shutil.which("sysctl"):
        pytest.skip("sysctl is not installed")
    # sysctl -a prints what it can read; unreadable keys (unset stable_secret) go to stderr only.
    out = subprocess.run(["sysctl", "-a"], capture_output=True, text=True, timeout=20).stdout
    listed = {line.partition(" = ")[0] for line in out.splitlines() if " = " in line}
    names = {r["name"] for r in conn.query("SELECT name FROM system_controls")}
    assert listed - names == set()
    for path in ("/proc/sys/vm/compact_memory", "/proc/sys/net/ipv4/route/flush"):
        if os.path.exists(path) and not os.stat(path).st_mode & 0o444:
            assert kernelfs.sysctl_name(path[10:]) not in names  # write-only: no row
