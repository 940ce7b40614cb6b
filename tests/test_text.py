"""Paths that are not UTF-8: printed unambiguously, and the printed text finds that file and only it."""

from __future__ import annotations

import hashlib
import os
import random

from conftest import query_json
from streamq.text import decode, decode_path, encode_path


def test_decode_path_round_trips_every_byte_string():
    rng = random.Random(7)
    alphabet = [b"\\", b"x", b"e", b"9", b"\xe9", b"\xc3\xa9", b"/", b"a", b"\xff"]
    samples = [b"".join(rng.choice(alphabet) for _ in range(rng.randrange(12))) for _ in range(3000)]
    samples += [bytes([b]) for b in range(1, 256)]
    for raw in samples:
        assert encode_path(decode_path(raw)) == raw, raw
        assert encode_path(decode_path(os.fsdecode(raw))) == raw, raw
    assert decode_path(b"caf\xe9.txt") == "caf\\xe9.txt"
    assert decode_path(b"caf\\xe9.txt") == "caf\\\\xe9.txt"
    assert decode(b"grep \\d") == "grep \\d"  # content keeps its backslashes


def test_a_decoy_named_like_an_escape_cannot_hide_the_real_file(tmp_path):
    real, decoy = os.fsencode(tmp_path) + b"/caf\xe9.txt", os.fsencode(tmp_path) + b"/caf\\xe9.txt"
    for path, data in ((real, b"real"), (decoy, b"decoy!")):
        with open(path, "wb") as f:
            f.write(data)
    truth = {}
    for path in (real, decoy):
        with open(path, "rb") as f:
            truth[os.stat(path).st_ino] = (os.stat(path).st_size, hashlib.sha256(f.read()).hexdigest())

    rows = query_json(
        f"SELECT path, inode, size, sha256 FROM file JOIN hash USING (path) WHERE file.directory = '{tmp_path}'"
    )
    assert {r["inode"]: (r["size"], r["sha256"]) for r in rows} == truth
    printed = {r["path"] for r in rows}
    assert printed == {f"{tmp_path}/caf\\xe9.txt", f"{tmp_path}/caf\\\\xe9.txt"}
    for row in rows:  # the printed path finds that file, and only that file
        quoted = row["path"].replace("'", "''")
        again = query_json(f"SELECT inode, sha256 FROM file JOIN hash USING (path) WHERE path = '{quoted}'")
        assert again == [{"inode": row["inode"], "sha256": row["sha256"]}]
