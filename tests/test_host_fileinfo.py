"""host/fileinfo: what the file, hash and suid_bin tables read, against os.stat, hashlib, stat(1) and find(1)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess

import pytest

from streamq.host import fileinfo


def test_describe_follows_links_and_falls_back_on_dangling_ones(tmp_path):
    target = tmp_path / "target"
    target.write_bytes(b"12345")
    os.symlink("target", tmp_path / "link")
    os.symlink("nowhere", tmp_path / "dangling")
    st, is_link, to = fileinfo.describe(os.fsencode(tmp_path / "target"))
    assert (st.st_ino, is_link, to) == (os.stat(target).st_ino, False, None)
    st, is_link, to = fileinfo.describe(os.fsencode(tmp_path / "link"))
    assert (st.st_ino, st.st_size, is_link, to) == (os.stat(target).st_ino, 5, True, "target")
    st, is_link, to = fileinfo.describe(os.fsencode(tmp_path / "dangling"))
    assert (st.st_ino, is_link, to) == (os.lstat(tmp_path / "dangling").st_ino, True, "nowhere")
    assert fileinfo.describe(os.fsencode(tmp_path / "absent")) is None
    assert fileinfo.is_regular(os.fsencode(tmp_path / "link")) and not fileinfo.is_regular(os.fsencode(tmp_path))


def test_digests_match_hashlib_and_unreadable_files_give_none(tmp_path):
    data = os.urandom(3 << 20)  # more than one read chunk
    (tmp_path / "big").write_bytes(data)
    got = fileinfo.digests(os.fsencode(tmp_path / "big"), ["md5", "sha256"])
    assert got == {"md5": hashlib.md5(data).hexdigest(), "sha256": hashlib.sha256(data).hexdigest()}
    assert fileinfo.digests(os.fsencode(tmp_path / "absent"), ["sha1"]) == {"sha1": None}
    assert fileinfo.digests(os.fsencode(tmp_path / "big"), []) == {}


def test_birth_time_agrees_with_stat(tmp_path):
    if shutil.which("stat") is None:
        pytest.skip("coreutils stat is not installed")
    path = tmp_path / "born"
    path.write_text("x")
    expected = int(subprocess.run(["stat", "-c", "%W", str(path)], capture_output=True, text=True).stdout)
    born = fileinfo.birth_time_reader()(os.fsencode(path), os.stat(path))
    assert born == (expected or None)  # %W is 0 where the file system does not record it


def test_suid_files_below_a_root_like_find(tmp_path):
    bin_dir = tmp_path / "usr/bin"
    bin_dir.mkdir(parents=True)
    for name, mode in (("plain", 0o755), ("setuid", 0o4755), ("setgid", 0o2755)):
        (bin_dir / name).write_text("#!/bin/sh\n")
        os.chmod(bin_dir / name, mode)
    os.symlink("setuid", bin_dir / "link-to-setuid")  # links are not followed
    found = {path: st.st_mode & 0o6000 for path, st in fileinfo.suid_files(os.fsencode(tmp_path))}
    assert found == {"/usr/bin/setuid": 0o4000, "/usr/bin/setgid": 0o2000}
    if shutil.which("find"):
        out = subprocess.run(
            ["find", str(bin_dir), "-xdev", "-perm", "/6000", "-type", "f"], capture_output=True, text=True
        ).stdout
        assert {p[len(str(tmp_path)) :] for p in out.split()} == set(found)
