"""Hardware tables against the kernel's own listings, lsblk/blkid, hashlib, and real loop devices."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import subprocess
import uuid

import pytest
from test_host_hwdata import PCI_IDS

from conftest import needs_root
from streamq.host import cpuid, hwdata, procfs
from streamq.tables import devices, firmware

# --- pci_devices ------------------------------------------------------------------------------


def _proc_bus_pci() -> dict[str, dict]:
    """The kernel's older PCI listing (/proc/bus/pci), independent of the sysfs files the table reads."""
    out = {}
    with open("/proc/bus/pci/devices") as f:
        for line in f:
            fields = line.split("\t")
            bus, devfn = int(fields[0][:2], 16), int(fields[0][2:], 16)
            key = f"{bus:02x}:{devfn >> 3:02x}.{devfn & 7:x}"
            with open(f"/proc/bus/pci/{bus:02x}/{devfn >> 3:02x}.{devfn & 7:x}", "rb") as cfg:
                config = cfg.read(64)
            out[key] = {
                "id": fields[1],
                "class": config[0x0B],
                "subclass": config[0x0A],
                "subsys": struct.unpack_from("<HH", config, 0x2C) if len(config) >= 0x30 else None,
                "driver": fields[-1].strip() or None if len(fields) > 17 else None,
            }
    return out


def test_pci_devices_match_proc_bus_pci(conn):
    if not os.path.exists("/proc/bus/pci/devices"):
        pytest.skip("no /proc/bus/pci on this host")
    truth = _proc_bus_pci()
    rows = {r["pci_slot"].split(":", 1)[1]: r for r in conn.query("SELECT * FROM pci_devices")}
    assert set(rows) == set(truth)
    for slot, t in truth.items():
        r = rows[slot]
        assert r["vendor_id"] + r["model_id"][2:] == "0x" + t["id"]
        assert r["pci_class_id"] == f"0x{t['class']:02x}" and r["pci_subclass_id"] == f"0x{t['subclass']:02x}"
        if t["subsys"] is not None and t["class"] != 0x06:  # bridges keep other registers at 0x2c
            assert (r["subsystem_vendor_id"], r["subsystem_model_id"]) == tuple(f"0x{x:04x}" for x in t["subsys"])
        if t["driver"] is not None:
            assert r["driver"] == t["driver"]


def test_pci_devices_match_lspci(conn):
    if shutil.which("lspci") is None:
        pytest.skip("lspci (pciutils) is not installed")
    out = subprocess.run(["lspci", "-mmnD"], capture_output=True, text=True, check=True).stdout
    truth = {}
    for line in out.splitlines():
        f = line.split('"')
        truth[line.split()[0]] = ("0x" + f[3], "0x" + f[5])
    rows = {r["pci_slot"]: (r["vendor_id"], r["model_id"]) for r in conn.query("SELECT * FROM pci_devices")}
    assert rows == truth


def test_pci_row_names_from_ids():
    names = hwdata.parse_ids(PCI_IDS)
    ev = {"PCI_CLASS": "20000", "PCI_ID": "1AF4:1041", "PCI_SUBSYS_ID": "1AF4:1100", "DRIVER": "virtio-pci"}
    ev.update(vendor="1af4", device="1041", subvendor="1af4", subdevice="1100")
    row = devices._pci_row("0000:00:03.0", ev, names)
    assert row["vendor"] == "Red Hat, Inc." and row["model"] == "Virtio 1.0 network device"
    assert (row["pci_class"], row["pci_subclass"]) == ("Network controller", "Ethernet controller")
    assert (row["pci_class_id"], row["pci_subclass_id"]) == ("0x02", "0x00")
    assert row["subsystem_vendor"] == "Red Hat, Inc." and row["subsystem_model"] is None


# --- usb_devices -------------------------------------------------------------------------------


def test_usb_devices_match_sysfs(conn):
    rows = conn.query("SELECT * FROM usb_devices")
    root = "/sys/bus/usb/devices"
    expected = [d for d in os.listdir(root) if os.path.exists(f"{root}/{d}/busnum")] if os.path.isdir(root) else []
    assert len(rows) == len(expected)


def test_usb_rows_on_a_constructed_tree(tmp_path):
    dev = tmp_path / "1-1"
    dev.mkdir()
    attrs = {"busnum": "1", "devnum": "3", "idVendor": "046D", "idProduct": "c52b", "bcdDevice": "1211"}
    attrs.update(manufacturer="Logitech", product="USB Receiver", bDeviceClass="09", bDeviceSubClass="00")
    attrs.update(bDeviceProtocol="01", removable="fixed")
    for name, value in attrs.items():
        (dev / name).write_text(value + "\n")
    (tmp_path / "1-1:1.0").mkdir()  # an interface: no busnum, no row
    rows = list(devices.usb_rows(str(tmp_path), udev_dir=str(tmp_path / "none")))
    assert rows == [
        {
            "usb_address": 1,
            "usb_port": 3,
            "vendor": rows[0]["vendor"],  # usb.ids may name it differently from the device's string
            "vendor_id": "046d",
            "version": "1211",
            "model": rows[0]["model"],
            "model_id": "c52b",
            "serial": None,
            "class": "9",
            "subclass": "0",
            "protocol": "1",
            "removable": 0,
        }
    ]
    assert rows[0]["vendor"] and rows[0]["model"]


# --- acpi_tables / smbios_tables -----------------------------------------------------------------


@needs_root
def test_acpi_tables_match_hashlib(conn):
    truth = {}
    for base, _, files in os.walk("/sys/firmware/acpi/tables"):
        for name in files:
            with open(os.path.join(base, name), "rb") as f:
                data = f.read()
            truth.setdefault(name, set()).add((len(data), hashlib.md5(data).hexdigest()))
    rows = conn.query("SELECT name, size, md5 FROM acpi_tables")
    assert {r["name"] for r in rows} == set(truth)
    for r in rows:
        assert (r["size"], r["md5"]) in truth[r["name"]]


def _smbios_struct(kind: int, handle: int, body: bytes, strings: list[bytes]) -> bytes:
    head = struct.pack("<BBH", kind, 4 + len(body), handle) + body
    return head + (b"\0".join(strings) + b"\0\0" if strings else b"\0\0")


def test_parse_smbios_constructed():
    bios = _smbios_struct(0, 0x0000, bytes([1, 2, 0, 0xF0, 3]), [b"Vendor", b"1.0", b"01/01/2024"])
    system = _smbios_struct(1, 0x0100, bytes([1, 2]), [])
    odd = _smbios_struct(200, 0x0200, b"", [b"x"])
    end = _smbios_struct(127, 0xFEFF, b"", [])
    data = bios + system + odd + end + bytes(16)  # zero padding ends the walk
    rows = list(firmware.smbios_rows(data))
    assert [(r["number"], r["type"], r["handle"]) for r in rows] == [
        (0, 0, 0),
        (1, 1, 0x100),
        (2, 200, 0x200),
        (3, 127, 0xFEFF),
    ]
    assert [r["description"] for r in rows] == ["BIOS Information", "System Information", "Unknown", "End-of-Table"]
    assert [r["header_size"] for r in rows] == [9, 6, 4, 4]
    assert [r["size"] for r in rows] == [len(bios), len(system), len(odd), len(end)]
    assert rows[0]["md5"] == hashlib.md5(bios).hexdigest()
    # A truncated structure (no string terminator) ends the walk instead of raising.
    assert len(list(firmware.smbios_rows(bios + system[:-1]))) == 1


def test_smbios_tables_on_this_host(conn):
    rows = conn.query("SELECT * FROM smbios_tables")
    if not os.access("/sys/firmware/dmi/tables/DMI", os.R_OK):
        assert rows == []
        return
    with open("/sys/firmware/dmi/tables/DMI", "rb") as f:
        data = f.read()
    assert rows and sum(r["size"] for r in rows) <= len(data)
    assert data.startswith(bytes([rows[0]["type"], rows[0]["header_size"]]))


# --- cpuid -------------------------------------------------------------------------------------


def _cpuinfo() -> dict[str, str]:
    info = {}
    with open("/proc/cpuinfo") as f:
        for line in f.read().split("\n\n")[0].splitlines():
            key, _, value = line.partition(":")
            info[key.strip()] = value.strip()
    return info


def test_cpuid_agrees_with_cpuinfo(conn):
    info = _cpuinfo()
    if "flags" not in info:
        pytest.skip("not an x86 processor: no cpuinfo flags")
    rows = {
        r["feature"]: r for r in conn.query("SELECT feature, value, output_register, output_bit, input_eax FROM cpuid")
    }
    assert rows["vendor"]["value"] == info["vendor_id"]
    assert rows["product_name"]["value"] == info["model name"]
    assert rows["family"]["value"] == f"{min(int(info['cpu family']), 15) << 8:04x}"
    flags = set(info["flags"].split())
    for f in cpuid.CPU_FEATURES:
        if f.flag in flags:  # what the kernel enabled the hardware has; the reverse may not hold
            assert rows[f.name]["value"] == "1", f.name
            assert (rows[f.name]["output_register"], rows[f.name]["output_bit"]) == (f.register, f.bit)
    if "hypervisor" in flags and os.access("/dev/cpu/0/cpuid", os.R_OK):
        assert rows["hypervisor_id"]["value"]


# --- block_devices / disk_encryption ----------------------------------------------------------


def test_block_devices_match_lsblk(conn):
    if shutil.which("lsblk") is None:
        pytest.skip("lsblk is not installed")
    out = subprocess.run(["lsblk", "-b", "-J", "-o", "NAME,SIZE"], capture_output=True, text=True, check=True)

    def walk(devs):
        for d in devs:
            yield d
            yield from walk(d.get("children", []))

    truth = {f"/dev/{d['name']}": d["size"] for d in walk(json.loads(out.stdout)["blockdevices"])}
    rows = {r["name"]: r for r in conn.query("SELECT name, size, block_size FROM block_devices")}
    assert truth and set(truth) <= set(rows)
    for name, size in truth.items():
        if name in rows:
            assert rows[name]["size"] * 512 == size, name
    assert all(r["block_size"] in (512, 1024, 2048, 4096) for r in rows.values())


def _blkid(dev: str) -> dict[str, str]:
    out = subprocess.run(["blkid", "-p", "-o", "export", dev], capture_output=True, text=True).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


@pytest.fixture
def loop_image(tmp_path):
    """Attach image files to loop devices (root and losetup needed); detached afterwards."""
    if os.geteuid() != 0 or shutil.which("losetup") is None:
        pytest.skip("needs root and losetup")
    attached: list[str] = []

    def attach(path, *flags):
        result = subprocess.run(["losetup", "-f", "--show", *flags, str(path)], capture_output=True, text=True)
        if result.returncode != 0:
            pytest.skip(f"losetup failed: {result.stderr.strip()}")
        attached.append(result.stdout.strip())
        return attached[-1]

    yield attach
    for dev in attached:
        subprocess.run(["losetup", "-d", dev], check=False)


def test_block_devices_probe_ext4_like_blkid(conn, loop_image, tmp_path):
    if shutil.which("mkfs.ext4") is None:
        pytest.skip("mkfs.ext4 is not installed")
    image = tmp_path / "fs.img"
    image.write_bytes(b"")
    os.truncate(image, 8 << 20)
    fs_uuid = str(uuid.uuid4())
    subprocess.run(["mkfs.ext4", "-q", "-U", fs_uuid, "-L", "streamq-t", str(image)], check=True)
    dev = loop_image(image)
    rows = conn.query("SELECT * FROM block_devices WHERE name = ?", (dev,))
    assert len(rows) == 1
    row, truth = rows[0], _blkid(dev)
    assert (row["type"], row["uuid"], row["label"]) == (truth["TYPE"], truth["UUID"], truth["LABEL"])
    assert (row["uuid"], row["label"], row["size"]) == (fs_uuid, "streamq-t", (8 << 20) // 512)
    enc = conn.query("SELECT * FROM disk_encryption WHERE name = ?", (dev,))
    assert enc == [{"name": dev, "uuid": fs_uuid, "encrypted": 0, "type": None, "encryption_status": "not encrypted"}]


def test_block_devices_probe_swap_like_blkid(conn, loop_image, tmp_path):
    if shutil.which("mkswap") is None:
        pytest.skip("mkswap is not installed")
    image = tmp_path / "swap.img"
    image.write_bytes(b"")
    os.truncate(image, 4 << 20)
    subprocess.run(["mkswap", "-L", "sq-swap", str(image)], check=True, capture_output=True)
    dev = loop_image(image)
    row = conn.query("SELECT type, uuid, label FROM block_devices WHERE name = ?", (dev,))[0]
    truth = _blkid(dev)
    assert (row["type"], row["uuid"], row["label"]) == (truth["TYPE"], truth["UUID"], "sq-swap")


def test_block_devices_partition_parent(conn, loop_image, tmp_path):
    image = tmp_path / "disk.img"
    mbr = bytearray(512)
    mbr[446:462] = struct.pack("<B3sB3sII", 0, b"\0\0\0", 0x83, b"\0\0\0", 2048, 4096)
    mbr[510:512] = b"\x55\xaa"
    image.write_bytes(bytes(mbr))
    os.truncate(image, 4 << 20)
    dev = loop_image(image, "-P")
    part = os.path.basename(dev) + "p1"
    if not os.path.exists(f"/sys/class/block/{part}"):
        # Kernels without the MBR parser ignore -P; partx adds the partition through BLKPG instead.
        if shutil.which("partx") is None:
            pytest.skip("the kernel did not scan the partition table and partx is not installed")
        subprocess.run(["partx", "-a", dev], check=True, capture_output=True)
    assert os.path.exists(f"/sys/class/block/{part}")
    row = conn.query("SELECT * FROM block_devices WHERE name = ?", (f"/dev/{part}",))[0]
    assert (row["parent"], row["size"], row["block_size"], row["type"]) == (dev, 4096, 512, None)
    whole = conn.query("SELECT type, parent FROM block_devices WHERE name = ?", (dev,))[0]
    assert whole == {"type": None, "parent": None}  # a partition table is not a filesystem


def test_disk_encryption_covers_every_block_device(conn):
    names = {r["name"] for r in conn.query("SELECT name FROM block_devices")}
    rows = conn.query("SELECT * FROM disk_encryption")
    assert {r["name"] for r in rows} == names
    for r in rows:
        assert r["encrypted"] in (0, 1)
        assert r["encryption_status"] == ("encrypted" if r["encrypted"] else "not encrypted")
        crypt = (procfs.read_text(f"/sys/class/block/{os.path.basename(r['name'])}/dm/uuid") or "").startswith("CRYPT-")
        assert not crypt or r["encrypted"] == 1


def test_pack_queries_run(conn):
    for sql in (
        "select * from acpi_tables;",
        "select feature, value, output_register, output_bit, input_eax from cpuid;",
        "select * from smbios_tables;",
        "select * from pci_devices;",
        "select * from usb_devices;",
        "select * from block_devices where type = 'Virtual Interface';",
        "select * from disk_encryption;",
    ):
        assert isinstance(conn.query(sql), list)
