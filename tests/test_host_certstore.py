"""host/certstore: which files of a trust store the certificates table reads, in a store the test builds."""

from __future__ import annotations

import os
import time

from streamq.host import certstore


def test_store_paths_skip_hash_links_loops_and_non_files(tmp_path):
    store = tmp_path / "store"
    (store / "nested/deeper").mkdir(parents=True)
    (store / "real.pem").write_text("a certificate\n")
    (store / "nested/deeper/inner.crt").write_text("another\n")
    os.symlink("real.pem", store / "alias.pem")
    os.symlink("real.pem", store / "0123abcd.0")  # c_rehash's link to a file listed anyway: left out
    outside = tmp_path / "outside.pem"
    outside.write_text("outside the store\n")
    os.symlink(outside, store / "89abcdef.1")  # the only way to its target: kept
    os.symlink("loop-b", store / "loop-a")
    os.symlink("loop-a", store / "loop-b")
    os.symlink(".", store / "self")  # a directory loop, walked once
    os.mkfifo(store / "fifo.pem")
    bundle = tmp_path / "bundle.crt"
    bundle.write_text("a bundle\n")
    started = time.monotonic()
    paths = certstore.store_paths([str(store), str(store / "nested")], [str(bundle), str(tmp_path / "absent.crt")])
    assert time.monotonic() - started < 5
    assert paths[0] == str(bundle)
    assert sorted(os.path.relpath(p, store) for p in paths[1:]) == [
        "89abcdef.1",
        "alias.pem",
        "nested/deeper/inner.crt",
        "real.pem",
    ]


def test_read_store_file_refuses_what_is_not_a_regular_file(tmp_path):
    os.mkfifo(tmp_path / "fifo.pem")
    assert certstore.read_store_file(str(tmp_path / "fifo.pem")) is None  # never blocks
    assert certstore.read_store_file(str(tmp_path)) is None
    (tmp_path / "ok.pem").write_bytes(b"bytes")
    assert certstore.read_store_file(str(tmp_path / "ok.pem")) == b"bytes"
