"""hardware_events from the kernel's uevent socket, triggered through /sys/class/net/lo/uevent."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time

import pytest
from source_harness import running

from conftest import run_cli
from streamq.ring import Rings
from streamq.sources.hardware import HardwareSource, hardware_event_row, parse_uevent_message

LO_UEVENT = "/sys/class/net/lo/uevent"
# A datagram the kernel sent here for `echo change > /sys/class/net/lo/uevent`.
CAPTURED = (
    b"change@/devices/virtual/net/lo\x00ACTION=change\x00DEVPATH=/devices/virtual/net/lo\x00"
    b"SUBSYSTEM=net\x00SYNTH_UUID=0\x00INTERFACE=lo\x00IFINDEX=1\x00SEQNUM=887\x00"
)


def _trigger() -> None:
    try:
        with open(LO_UEVENT, "w") as f:
            f.write("change")
    except PermissionError:
        pytest.skip(f"writing {LO_UEVENT} needs root")
    except OSError as err:
        pytest.skip(f"cannot synthesize a uevent: {err}")


def running_source():
    return running(HardwareSource("hardware_events", {}, Rings()), lambda s: s.status.mode == "netlink")


async def test_lo_change_event():
    async with running_source() as source:
        _trigger()
        deadline = time.monotonic() + 5
        rows: list[dict] = []
        while not rows and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
            rows = [r for _, _, r in source.ring.since(0) if r["path"] == "/sys/devices/virtual/net/lo"]
        assert rows, [r for _, _, r in source.ring.since(0)]
        row = rows[0]
        assert (row["action"], row["type"]) == ("change", "net")
        # The path names lo's directory in sysfs, which /sys/class/net/lo links to.
        assert os.path.realpath("/sys/class/net/lo") == row["path"]
        assert source.status.errors == 0


def test_parse_captured_message():
    env = parse_uevent_message(CAPTURED)
    assert env["ACTION"] == "change" and env["DEVPATH"] == "/devices/virtual/net/lo" and env["IFINDEX"] == "1"
    row = hardware_event_row(env, udev_root="/nonexistent")
    assert row["action"] == "change" and row["path"] == "/sys/devices/virtual/net/lo" and row["type"] == "net"
    assert parse_uevent_message(b"libudev\x00\xfe\xed\xca\xfe" + CAPTURED) is None
    assert parse_uevent_message(b"no separator here") is None


def test_usb_product_and_devnode():
    env = parse_uevent_message(
        b"add@/devices/pci0000:00/0000:00:14.0/usb1/1-2\x00ACTION=add\x00DEVPATH=/devices/pci0000:00/0000:00:14.0/usb1/1-2"
        b"\x00SUBSYSTEM=usb\x00DEVNAME=bus/usb/001/004\x00DEVTYPE=usb_device\x00PRODUCT=46d/c52b/1201\x00"
        b"TYPE=0/0/0\x00DRIVER=usb\x00MAJOR=189\x00MINOR=3\x00SEQNUM=5\x00"
    )
    row = hardware_event_row(env, udev_root="/nonexistent")
    assert row["path"] == "/dev/bus/usb/001/004"
    assert (row["type"], row["driver"], row["vendor_id"], row["model_id"], row["revision"]) == (
        "usb_device",
        "usb",
        "046d",
        "c52b",
        "1201",
    )


def test_cli_follow_change(tmp_path):
    if not os.access(LO_UEVENT, os.W_OK):
        pytest.skip(f"writing {LO_UEVENT} needs root")
    cfg = tmp_path / "streamq.toml"
    cfg.write_text("[sources.hardware]\nenabled = true\n")
    done = threading.Event()

    def trigger():
        while not done.is_set():  # until the CLI's source is up and reports one
            with open(LO_UEVENT, "w") as f:
                f.write("change")
            done.wait(0.3)

    thread = threading.Thread(target=trigger, daemon=True)
    thread.start()
    try:
        sql = "SELECT action, path, type FROM hardware_events WHERE action = 'change' AND path LIKE '%/lo'"
        result = run_cli("query", "--follow", "--json", "--count", "1", "--timeout", "10", "-c", str(cfg), sql)
    finally:
        done.set()
        thread.join()
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert rows == [{"action": "change", "path": "/sys/devices/virtual/net/lo", "type": "net"}]
