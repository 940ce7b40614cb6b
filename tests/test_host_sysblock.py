"""host/sysblock: the dm-crypt type of a mapping, and of what sits on it, in a tree the test builds."""

from __future__ import annotations

from test_host_blkprobe import luks2_header

from streamq.host import sysblock


def test_crypt_type_of_a_constructed_mapping(tmp_path):
    backing = tmp_path / "backing"
    backing.write_bytes(luks2_header("aes-xts-plain64"))
    (tmp_path / "dm0" / "dm").mkdir(parents=True)
    (tmp_path / "dm0" / "dm" / "uuid").write_text("CRYPT-LUKS2-0b6e2d9f7a574c3c9f2e4d1a9f3b8c11-root\n")
    mapped = sysblock.BlockDevice("dm-0", "/dev/dm-0", "253:0", str(tmp_path / "dm0"))
    parent = sysblock.BlockDevice("sda2", str(backing), "8:2", str(tmp_path / "sda2"))
    assert sysblock.crypt_type(mapped, parent) == "LUKS2-aes-xts-plain64"
    assert sysblock.crypt_type(parent, None) is None
    crypt = {"/dev/dm-0": "LUKS2-aes-xts-plain64"}
    parents = {"/dev/dm-1": mapped, "/dev/dm-0": parent}
    assert sysblock.inherited_crypt("/dev/dm-1", crypt, parents) == "LUKS2-aes-xts-plain64"  # LVM on LUKS
    assert sysblock.inherited_crypt("/dev/sda2", crypt, parents) is None
