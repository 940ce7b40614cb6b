"""host/kernelfs: /proc/mounts and /proc/modules parsers on captured lines, sysctl.d files the test writes."""

from __future__ import annotations

from streamq.host import kernelfs


def test_mount_line_unescape():
    rows = kernelfs.parse_mounts(b"dev /mnt/a\\040b\\134c tmpfs rw 0 0\nshort line\n")
    assert rows == [("dev", "/mnt/a b\\c", "tmpfs", "rw")]


def test_proc_modules_parser():
    data = (
        b"nf_nat 57344 2 nft_chain_nat,xt_MASQUERADE, Live 0xffffffffc0a5e000\n"
        b"crc32_pclmul 16384 0 - Live 0x0000000000000000 (E)\n"
        b"broken line\n"
    )
    assert kernelfs.parse_proc_modules(data) == [
        {
            "name": "nf_nat",
            "size": 57344,
            "used_by": "nft_chain_nat,xt_MASQUERADE",
            "status": "Live",
            "address": "0xffffffffc0a5e000",
        },
        {"name": "crc32_pclmul", "size": 16384, "used_by": "-", "status": "Live", "address": "0x0000000000000000"},
    ]


def test_sysctl_config_files(tmp_path):
    lib, etc = tmp_path / "lib", tmp_path / "etc"
    lib.mkdir()
    etc.mkdir()
    (lib / "10-a.conf").write_text("vm.swappiness = 10\nkernelfs.pid_max=1000\n")
    (lib / "20-b.conf").write_text("net/ipv4/ip_forward = 1\n-kernelfs.x = y\n; comment\n")
    (etc / "10-a.conf").write_text("vm.swappiness = 30\n")  # shadows lib/10-a.conf entirely
    conf = tmp_path / "sysctl.conf"
    conf.write_text("# last word\nnet.ipv4.conf.eth0/100.rp_filter=2\n")
    config = kernelfs.sysctl_config(dirs=(str(etc), str(lib)), conf=str(conf))
    assert config == {
        "vm.swappiness": "30",
        "net.ipv4.ip_forward": "1",
        "kernelfs.x": "y",
        "net.ipv4.conf.eth0/100.rp_filter": "2",
    }
    assert kernelfs.sysctl_relpath("net.ipv4.conf.eth0/100.rp_filter") == "net/ipv4/conf/eth0.100/rp_filter"
