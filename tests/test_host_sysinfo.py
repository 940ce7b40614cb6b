"""host/sysinfo: the parsers of /proc/cmdline, /proc/cpuinfo and /proc/stat on captured bytes."""

from __future__ import annotations

from streamq.host import sysinfo


def test_kernel_cmdline_parser():
    row = sysinfo.parse_kernel_cmdline(b"BOOT_IMAGE=/boot/vmlinuz-6.1 root=UUID=ab-cd ro quiet\n")
    assert row == {"path": "/boot/vmlinuz-6.1", "device": "UUID=ab-cd", "arguments": "ro quiet"}


def test_cpuinfo_parser_blocks():
    blocks = sysinfo.parse_cpuinfo(b"processor\t: 0\nmodel name\t: X: Y\n\nprocessor\t: 1\nflags\t\t:\n")
    assert blocks == [{"processor": "0", "model name": "X: Y"}, {"processor": "1", "flags": ""}]


def test_cpu_time_parser_old_kernel_line():
    rows = sysinfo.parse_cpu_times(b"cpu  1 2 3 4 5 6 7\ncpu3 10 20 30 40 50 60 70\nintr 5\n")
    assert rows == [
        dict(
            core=3, user=10, nice=20, system=30, idle=40, iowait=50, irq=60, softirq=70, steal=0, guest=0, guest_nice=0
        )
    ]
