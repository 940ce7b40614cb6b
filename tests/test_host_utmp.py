"""host/utmp: utmp and wtmp records packed by the test, torn and absent files."""

from __future__ import annotations

import struct

from streamq.host import utmp


def test_parse_utmp_packed_records(tmp_path):
    fmt = "<hxxi32s4s32s256shhiII16s20s"  # struct utmp, glibc x86_64
    full_line = b"L" * 32  # a full field has no NUL terminator
    rec = struct.pack(fmt, 7, 42, full_line, b"id", b"bob", b"h\xffst", 0, 0, 9, 1700000000, 5, b"", b"")
    assert len(rec) == 384
    path = tmp_path / "utmp"
    path.write_bytes(rec + rec[:100])  # a torn second record is ignored
    records = list(utmp.read_utmp(str(path)))
    assert len(records) == 1
    r = records[0]
    assert (r.type, r.pid, r.line, r.id, r.user, r.host, r.time, r.usec) == (
        7,
        42,
        "L" * 32,
        "id",
        "bob",
        "h\\xffst",
        1700000000,
        5,
    )
    assert list(utmp.read_utmp(str(tmp_path / "absent"))) == []
