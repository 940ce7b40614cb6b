"""utmp and wtmp: glibc's login records, read with struct instead of getutxent.

getutxent keeps process-wide state behind a lock and can only read one file
at a time; a struct reader over the bytes is pure, so tests feed it records
they pack themselves.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import NamedTuple

from ..text import decode

UTMP = "/var/run/utmp"
WTMP = "/var/log/wtmp"

# struct utmp on Linux/glibc (x86_64 and the other 64-bit ABIs keep 32-bit times
# here for compatibility): type, pid, line, id, user, host, exit status,
# session, tv_sec, tv_usec, addr_v6, reserved. 384 bytes.
_RECORD = struct.Struct("<hxxi32s4s32s256shhiII16s20s")
RECORD_SIZE = _RECORD.size

# ut_type values from <utmp.h>.
EMPTY, RUN_LVL, BOOT_TIME, NEW_TIME, OLD_TIME = 0, 1, 2, 3, 4
INIT_PROCESS, LOGIN_PROCESS, USER_PROCESS, DEAD_PROCESS, ACCOUNTING = 5, 6, 7, 8, 9


class Record(NamedTuple):
    type: int
    pid: int
    line: str | None
    id: str | None
    user: str | None
    host: str | None
    time: int
    usec: int


def _text(field: bytes) -> str | None:
    # Fixed-size C strings: NUL-padded, and not NUL-terminated when full.
    value = field.split(b"\0", 1)[0]
    return decode(value) if value else None


def parse_utmp(data: bytes) -> Iterator[Record]:
    """Every whole record of a utmp/wtmp image; a torn last record is ignored."""
    end = len(data) - len(data) % RECORD_SIZE
    for fields in _RECORD.iter_unpack(memoryview(data)[:end]):
        ut_type, pid, line, ut_id, user, host, _term, _exit, _session, sec, usec, _addr, _res = fields
        yield Record(ut_type, pid, _text(line), _text(ut_id), _text(user), _text(host), sec, usec)


def read_utmp(path: str) -> Iterator[Record]:
    """Records of the file at ``path``; a missing or unreadable file has none."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return
    yield from parse_utmp(data)
