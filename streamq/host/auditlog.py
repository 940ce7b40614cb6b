"""Linux audit records: the netlink control messages, record text, and events.

Each netlink message from the kernel's audit subsystem is one record; its type
is the netlink message type and its payload reads ``audit(SECONDS.MS:SERIAL):
key=value ...``. Records of one event share the serial: a syscall event is
SYSCALL, then CWD, PATH (one per name), PROCTITLE ..., closed by an EOE record.
Records logged outside a syscall (user messages, most LSM records when syscall
auditing is off) come alone and never see an EOE, so an event also closes when
no record has joined it for a short timeout. :class:`Assembler` does that.

Untrusted strings (names, paths, comm, exe) arrive quoted when clean and as
uppercase hex otherwise; :func:`parse_fields` undoes both.
"""

from __future__ import annotations

import re
import struct
from collections import OrderedDict
from typing import NamedTuple

from ..text import decode

NETLINK_AUDIT = 9
AUDIT_NLGRP_READLOG = 1  # the read-only multicast group (needs CAP_AUDIT_READ)
AUDIT_GET, AUDIT_SET = 1000, 1001
AUDIT_STATUS_ENABLED, AUDIT_STATUS_PID, AUDIT_STATUS_BACKLOG_LIMIT = 0x1, 0x4, 0x10
NLMSG_ERROR = 2
NLM_F_REQUEST, NLM_F_ACK = 0x1, 0x4
NLMSG_HDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid
# struct audit_status up to `version`: what every kernel since 3.x sends and accepts.
STATUS = struct.Struct("=9I")  # mask, enabled, failure, pid, rate_limit, backlog_limit, lost, backlog, version

AUDIT_USER = 1005
AUDIT_SYSCALL, AUDIT_PATH, AUDIT_CWD, AUDIT_EOE, AUDIT_SECCOMP = 1300, 1302, 1307, 1320, 1326
USER_AVC, USER_SELINUX_ERR = 1107, 1112
SELINUX_TYPES = {
    1400: "AVC", 1401: "SELINUX_ERR", 1402: "AVC_PATH", 1403: "MAC_POLICY_LOAD", 1404: "MAC_STATUS",
    1405: "MAC_CONFIG_CHANGE", 1406: "MAC_UNLBL_ALLOW", 1407: "MAC_CIPSOV4_ADD", 1408: "MAC_CIPSOV4_DEL",
    1409: "MAC_MAP_ADD", 1410: "MAC_MAP_DEL", 1411: "MAC_IPSEC_ADDSA", 1412: "MAC_IPSEC_DELSA",
    1413: "MAC_IPSEC_ADDSPD", 1414: "MAC_IPSEC_DELSPD", 1415: "MAC_IPSEC_EVENT", 1416: "MAC_UNLBL_STCADD",
    1417: "MAC_UNLBL_STCDEL", 1418: "MAC_CALIPSO_ADD", 1419: "MAC_CALIPSO_DEL",
    USER_AVC: "USER_AVC", USER_SELINUX_ERR: "USER_SELINUX_ERR",
}  # fmt: skip
APPARMOR_TYPES = {
    1500: "APPARMOR", 1501: "APPARMOR_AUDIT", 1502: "APPARMOR_ALLOWED", 1503: "APPARMOR_DENIED",
    1504: "APPARMOR_HINT", 1505: "APPARMOR_STATUS", 1506: "APPARMOR_ERROR", 1507: "APPARMOR_KILL",
}  # fmt: skip

_FIELD = re.compile(r"([A-Za-z_][\w-]*)=(\"[^\"]*\"|'[^']*'|\S*)")
_HEX = re.compile(r"^(?:[0-9A-F]{2})+$")
# Fields the kernel logs with audit_log_untrustedstring: quoted when clean, else hex.
_UNTRUSTED = frozenset({"name", "cwd", "exe", "comm", "proctitle", "key", "path", "old-path", "new-path", "data"})


class Record(NamedTuple):
    type: int
    seconds: float  # event time, unix seconds
    serial: int
    raw: str  # the whole record text, "audit(...): ..." (osquery's message column)
    start: int  # where the fields begin in raw

    @property
    def body(self) -> str:
        return self.raw[self.start :]


def is_user_message(kind: int) -> bool:
    return kind == AUDIT_USER or 1100 <= kind <= 1199 or 2100 <= kind <= 2999


def parse_record(kind: int, payload: bytes) -> Record | None:
    """One netlink message's payload; None if it is no audit record (a reply, a malformed one)."""
    if not payload.startswith(b"audit("):
        return None
    end = payload.find(b"):", 6)
    stamp, _, serial = payload[6:end].partition(b":")
    try:
        seconds, number_ = float(stamp), int(serial)
    except ValueError:
        return None
    start = end + 3 if payload[end + 2 : end + 3] == b" " else end + 2
    raw = payload.rstrip(b"\0\n")
    try:
        text = raw.decode()
    except UnicodeDecodeError:
        text = decode(raw)
    return Record(kind, seconds, number_, text, start)


def parse_fields(text: str) -> dict[str, str | None]:
    """key=value pairs of a record; a user message's msg='...' also gives the pairs inside it.

    Quotes are removed, hex-encoded untrusted strings decoded, and ``(null)`` is None.
    Keys seen twice keep their first value (the outer one)."""
    fields: dict[str, str | None] = {}
    for key, raw in _FIELD.findall(text):
        if key in fields:
            continue
        first = raw[:1]
        if first == '"':
            fields[key] = raw[1:-1]
        elif first == "'":
            inner = raw[1:-1]
            fields[key] = inner
            for inner_key, value in parse_fields(inner).items():
                fields.setdefault(inner_key, value)
        elif key in _UNTRUSTED or raw == "(null)":
            fields[key] = _value(key, raw)
        else:
            fields[key] = raw
    return fields


def _value(key: str, raw: str) -> str | None:
    """An untrusted string that was not quoted: hex-encoded, or (null)."""
    if raw == "(null)":
        return None
    if _HEX.match(raw):
        return decode(bytes.fromhex(raw))
    return raw


def number(fields: dict, key: str, base: int = 10) -> int | None:
    """An integer field, None when absent or not a number (``?``, ``(none)``)."""
    raw = fields.get(key)
    if raw is None:
        return None
    try:
        return int(raw, base)
    except ValueError:
        return None


class Assembler:
    """Records -> events (lists of records of one serial), closed by EOE or by ``timeout``
    seconds without a new record. User messages are events of their own at once."""

    def __init__(self, timeout: float = 0.5, max_pending: int = 4096) -> None:
        self.timeout = timeout
        self.max_pending = max_pending
        self._pending: OrderedDict[int, tuple[float, list[Record]]] = OrderedDict()

    def add(self, record: Record, now: float) -> list[list[Record]]:
        done: list[list[Record]] = []
        serial = record.serial
        if record.type == AUDIT_EOE:
            entry = self._pending.pop(serial, None)
            if entry is not None:
                done.append(entry[1])
        elif is_user_message(record.type) and serial not in self._pending:
            done.append([record])
        else:
            entry = self._pending.pop(serial, None)
            records = entry[1] if entry is not None else []
            records.append(record)
            self._pending[serial] = (now, records)  # moved to the end: the most recently touched
            if len(self._pending) > self.max_pending:
                done.append(self._pending.popitem(last=False)[1][1])
        return done

    def expire(self, now: float) -> list[list[Record]]:
        """Events nothing has joined for ``timeout`` seconds, oldest first."""
        done = []
        limit = now - self.timeout
        while self._pending:
            serial, (touched, records) = next(iter(self._pending.items()))
            if touched > limit:
                break
            del self._pending[serial]
            done.append(records)
        return done

    def flush(self) -> list[list[Record]]:
        done = [records for _, records in self._pending.values()]
        self._pending.clear()
        return done

    def __len__(self) -> int:
        return len(self._pending)
